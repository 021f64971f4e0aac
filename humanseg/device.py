"""Which torch device to run on, decided in one place: CUDA when present unless the user says otherwise."""

from __future__ import annotations

import torch


def choose_device(want: str | torch.device | None = None) -> torch.device:
    """``None``: the first CUDA GPU when torch sees one, else the CPU; otherwise ``want`` itself (``"cpu"``,
    ``"cuda"``, ``"cuda:1"`` ...). Asking for CUDA on a machine without it raises ``ValueError`` with the fix."""
    if want is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(want)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(want)!r} was asked for but torch sees no CUDA GPU; use device 'cpu' or None")
    return device
