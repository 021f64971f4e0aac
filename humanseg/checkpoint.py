"""Self-describing checkpoints: a file rebuilds its model with nothing else.

A checkpoint is a ``torch.save`` dict of plain types and tensors only, so it loads with
``torch.load(weights_only=True)`` (no code runs while unpickling):

=================  ======================================================================================
key                content
=================  ======================================================================================
format             ``"humanseg-checkpoint/1"``
model_config       ``ModelConfig.to_dict()`` (architecture, width, inputs, classes, input size)
model_state        the network's ``state_dict`` (CPU tensors)
train_config       ``TrainConfig.to_dict()`` or None
step, epoch        optimizer steps done; epoch the next step belongs to
elapsed_s          wall-clock seconds of training so far (time budgets continue across resumes)
optimizer          optimizer ``state_dict`` (``last.pt`` only; None in ``best.pt``)
scheduler          learning-rate schedule state (dict of numbers)
rng                torch / CUDA / numpy / python RNG states (numpy's key array as an int64 tensor)
data_order         how the batch order is derived: {"seed", "epoch", "batch_in_epoch", "world_size"}
best_score         best validation score so far (higher is better) and ``best_metric`` its name
dataset_id         the training dataset manifest's ``id``
plate              the site plate as a ``uint8`` H x W x 3 tensor when the model takes one, else None
working_scale      network px per frame px of the site (:mod:`humanseg.scale`) from the dataset, or None (absent in
                   older files: the whole frame is resized to the input, as before)
history            training history rows (dicts with step, loss, lr, val_f ...)
=================  ======================================================================================

Files are written to a temporary file in the same folder and renamed over the target
(:func:`humanseg.files.atomic_path`), so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from humanseg import __version__
from humanseg.files import atomic_path
from humanseg.models import ModelConfig, SegModel, build_model

FORMAT = "humanseg-checkpoint/1"


@dataclass
class CheckpointInfo:
    """What a checkpoint says besides the weights (``raw`` keeps the whole dict for resuming)."""

    path: Path
    model_config: ModelConfig
    train_config: dict[str, Any] | None
    step: int
    epoch: int
    best_score: float | None
    best_metric: str | None
    dataset_id: str | None
    plate: np.ndarray | None
    working_scale: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def save_checkpoint(
    path: str | Path,
    model: SegModel,
    *,
    train_config: dict[str, Any] | None = None,
    step: int = 0,
    epoch: int = 0,
    elapsed_s: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
    data_order: dict[str, Any] | None = None,
    best_score: float | None = None,
    best_metric: str | None = None,
    dataset_id: str | None = None,
    plate: np.ndarray | None = None,
    history: list[dict[str, Any]] | None = None,
    working_scale: float | None = None,
) -> Path:
    """Write a checkpoint atomically; return its path. ``model`` is the bare network (not a DDP wrapper)."""
    path = Path(path)
    if plate is not None:
        plate = np.asarray(plate)
        if plate.dtype != np.uint8 or plate.ndim != 3 or plate.shape[2] != 3:
            raise ValueError(f"plate must be RGB uint8 H x W x 3, got {plate.shape} {plate.dtype}")
    if working_scale is not None and not working_scale > 0:
        raise ValueError(f"working_scale must be > 0 (network px per frame px) or None, got {working_scale!r}")
    state = {
        "format": FORMAT,
        "humanseg_version": __version__,
        "model_config": model.config.to_dict(),
        "model_state": {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()},
        "train_config": train_config,
        "step": int(step),
        "epoch": int(epoch),
        "elapsed_s": float(elapsed_s),
        "optimizer": _cpu(optimizer.state_dict()) if optimizer is not None else None,
        "scheduler": scheduler,
        "rng": rng,
        "data_order": data_order,
        "best_score": None if best_score is None else float(best_score),
        "best_metric": best_metric,
        "dataset_id": dataset_id,
        "plate": torch.from_numpy(np.ascontiguousarray(plate)) if plate is not None else None,
        "history": history or [],
        "working_scale": None if working_scale is None else float(working_scale),
    }
    # Streamed to the temporary file (no second copy in memory) and on the disk before the rename.
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict (CPU tensors), loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}; train one with `python -m humanseg train`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path} is not a readable humanseg checkpoint ({reason}); it is truncated or another kind of file: "
            "give a best.pt or last.pt written by `python -m humanseg train`"
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not a humanseg checkpoint (format {found!r}, expected {FORMAT!r})")
    return state


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> tuple[SegModel, CheckpointInfo]:
    """Rebuild the model from the file alone; returns (model in eval mode on ``device`` or CPU, info)."""
    state = read_checkpoint(path)
    config = ModelConfig.from_dict(state["model_config"])
    model = build_model(config)
    model.load_state_dict(state["model_state"])
    model.eval()
    if device is not None:
        model.to(device)
    plate = state.get("plate")
    info = CheckpointInfo(
        path=Path(path),
        model_config=config,
        train_config=state.get("train_config"),
        step=int(state.get("step", 0)),
        epoch=int(state.get("epoch", 0)),
        best_score=state.get("best_score"),
        best_metric=state.get("best_metric"),
        dataset_id=state.get("dataset_id"),
        plate=plate.numpy() if plate is not None else None,
        working_scale=state.get("working_scale"),
        history=list(state.get("history") or []),
        raw=state,
    )
    return model, info


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states of torch, CUDA, numpy and python, as weights_only-safe types."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def _cpu(obj: Any) -> Any:
    # Optimizer states live on the training device; checkpoints hold CPU tensors so they load anywhere.
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu")
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def slim_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Write a small copy of ``src`` for shipping a model (e.g. the committed demo model): the weights in
    float16 (they load back into the float32 network), no optimizer, scheduler or RNG state (it cannot be
    resumed, only used). Everything needed to rebuild and run the model (config, plate, dataset id) stays."""
    state = read_checkpoint(src)
    state["model_state"] = {
        k: (v.half() if v.is_floating_point() else v) for k, v in state["model_state"].items()
    }
    for key in ("optimizer", "scheduler", "rng", "data_order"):
        state[key] = None
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        torch.save(state, tmp)
    return dst
