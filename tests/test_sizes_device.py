"""HxW parsing and the device choice, each defined once in core."""

from __future__ import annotations

import pytest
import torch

from humanseg.device import choose_device
from humanseg.sizes import parse_size


def test_parse_size():
    assert parse_size("240x320") == (240, 320) and parse_size("240X320") == (240, 320)
    assert parse_size((48, 64)) == (48, 64)
    for bad in ("240", "240by320", "1x2x3", "ax3"):
        with pytest.raises(ValueError, match=r"HxW \(HEIGHTxWIDTH\).*240x320"):
            parse_size(bad)
    with pytest.raises(ValueError, match="at least 16x16"):
        parse_size("8x320", minimum=16)
    with pytest.raises(ValueError, match="at least 1x1"):
        parse_size("0x5")


def test_choose_device(monkeypatch):
    assert choose_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA GPU; use device 'cpu'"):
        choose_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device() == torch.device("cuda") and choose_device("cuda:1") == torch.device("cuda", 1)
