"""Checkpoints rebuild their model from the file alone, load with weights_only, and are written atomically."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from humanseg.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
    slim_checkpoint,
)
from humanseg.models import ModelConfig, build_model


def _trained_looking_model(inputs: str = "frame") -> torch.nn.Module:
    torch.manual_seed(1)
    model = build_model(ModelConfig("segnet", width=0.0625, inputs=inputs, input_size=(48, 64)))
    model.train()
    with torch.no_grad():  # move BN running statistics away from their defaults
        model(torch.rand(4, model.in_channels, 48, 64))
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    model = _trained_looking_model("frame+plate+diff")
    plate = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    path = save_checkpoint(
        tmp_path / "run" / "last.pt", model, train_config={"model": "x"}, step=7, epoch=1, optimizer=optimizer,
        best_score=0.5, best_metric="composite_iou", dataset_id="abc", plate=plate, history=[{"step": 1, "loss": 0.3}],
    )  # fmt: skip
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind

    loaded, info = load_checkpoint(path)
    x = torch.rand(2, 9, 48, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert not loaded.training
    assert info.model_config == model.config
    assert (info.step, info.epoch, info.best_score, info.best_metric) == (7, 1, 0.5, "composite_iou")
    assert info.dataset_id == "abc" and info.train_config == {"model": "x"}
    assert info.plate.dtype == np.uint8 and np.array_equal(info.plate, plate)
    assert info.history == [{"step": 1, "loss": 0.3}]


def test_loads_with_weights_only(tmp_path):
    model = _trained_looking_model()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 3, 48, 64)).sum().backward()
    optimizer.step()  # optimizer state with tensors and betas tuples
    path = save_checkpoint(tmp_path / "a.pt", model, optimizer=optimizer, rng=capture_rng_state())
    state = torch.load(path, map_location="cpu", weights_only=True)  # raises if anything unsafe was pickled
    assert state["format"] == "humanseg-checkpoint/1"
    assert state["model_config"]["arch"] == "segnet"
    assert state["optimizer"]["state"]


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="humanseg train"):
        read_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable humanseg checkpoint"):
        read_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="not a humanseg checkpoint"):
        read_checkpoint(other)
    with pytest.raises(ValueError, match="uint8"):
        save_checkpoint(tmp_path / "b.pt", _trained_looking_model(), plate=np.zeros((4, 4, 3), np.float32))


def test_rng_state_round_trip():
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]


def test_slim_checkpoint_is_smaller_and_predicts_the_same(tmp_path):
    model = _trained_looking_model("frame+plate+diff")
    plate = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(torch.rand(1, 9, 48, 64)).mean()
    loss.backward()
    optimizer.step()  # populate the optimizer state that a slim copy drops
    full = save_checkpoint(tmp_path / "last.pt", model, optimizer=optimizer, plate=plate, dataset_id="abc")
    slim = slim_checkpoint(full, tmp_path / "demo" / "best.pt")
    assert slim.stat().st_size < 0.5 * full.stat().st_size
    loaded, info = load_checkpoint(slim)
    assert info.dataset_id == "abc" and np.array_equal(info.plate, plate) and info.raw["optimizer"] is None
    assert next(loaded.parameters()).dtype == torch.float32  # float16 weights load into the float32 network
    x = torch.rand(2, 9, 48, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.predict(x), model.predict(x), atol=2e-2)
