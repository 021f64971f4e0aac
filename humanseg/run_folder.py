"""The folder of one training run, and the only writer of it (see docs/ARCHITECTURE.md, "Training run folder"):
``config.json`` (options, dataset, device), ``history.json`` (one row per step and validation), ``curves.png``,
``last.pt`` (everything needed to resume) and ``best.pt`` (the best model so far). Every file is written to a
temporary name and renamed, so the app or a resumed run never reads half a file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from humanseg.checkpoint import save_checkpoint
from humanseg.files import atomic_path, atomic_write
from humanseg.models import SegModel


class RunFolder:
    """Writes a run's files into ``root`` and remembers the names it wrote (``written``), so a caller can report
    or check what this process produced."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.last = self.root / "last.pt"
        self.best = self.root / "best.pt"
        self.written: set[str] = set()

    def write_config(self, info: dict[str, Any]) -> None:
        """``config.json``: what the run was started with (train and model config, dataset, device)."""
        self._write_text("config.json", json.dumps(info, indent=1))

    def write_history(self, history: Sequence[dict[str, Any]], title: str) -> None:
        """``history.json`` and the ``curves.png`` drawn from it."""
        from humanseg.plots import training_curves  # matplotlib: only once there is something to draw

        self._write_text("history.json", json.dumps(list(history), indent=1))
        self.written.add("curves.png")
        with atomic_path(self.root / "curves.png") as tmp:
            training_curves(history, tmp, title=title)

    def save(self, path: Path, model: SegModel, **fields: Any) -> Path:
        """A checkpoint at ``path`` (``last`` or ``best``); ``fields`` as :func:`humanseg.checkpoint.save_checkpoint`
        takes them."""
        self.written.add(path.name)
        return save_checkpoint(path, model, **fields)

    def _write_text(self, name: str, text: str) -> None:
        self.written.add(name)
        atomic_write(self.root / name, text)
