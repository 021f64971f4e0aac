"""The app's training run, without a user interface: one background thread, its log file, and what it shows.

:class:`TrainingJob` runs ``humanseg.train.train`` in a thread, so closing the browser does not stop a training
and a page opened later follows it; one training runs at a time. The run's log (each event's
``TrainEvent.describe()``, step lines thinned out) is kept beside its checkpoints as ``app-log.txt``, so
:func:`last_run` shows a finished run after a restart. :func:`start_training` and :func:`resume_training`
apply the site rules (a finished dataset, a budget, validation clips) before anything starts.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from humanseg import workspace as ws

RUN_LOG = "app-log.txt"
MAX_PLOT_POINTS = 300  # loss points drawn; longer runs are averaged in bins
# Exceptions whose message is written for the user (library contract: they name the value and the fix).
USER_ERRORS = (ValueError, OSError, ImportError, KeyError)


class TrainingBusy(RuntimeError):
    """A training was asked to start while another one runs (one at a time)."""


def device_text() -> str:
    """Which device training and the trained models use here."""
    import torch

    from humanseg.device import choose_device

    if choose_device().type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(0)} (CUDA)"
    return f"CPU ({os.cpu_count() or 1} cores; no CUDA GPU found)"


def curves_frame(rows: Iterable[dict]) -> Any:
    """A long-format table (step, value, curve) for a line plot from training rows with ``step`` and ``loss``
    and/or ``val_f`` (training events or a run's history.json); losses are bin-averaged to stay light."""
    import pandas as pd

    rows = list(rows)
    losses = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    out = []
    bin_size = max(1, -(-len(losses) // MAX_PLOT_POINTS))
    for i in range(0, len(losses), bin_size):
        chunk = losses[i : i + bin_size]
        out.append({"step": chunk[-1][0], "value": sum(v for _, v in chunk) / len(chunk), "curve": "training loss"})
    out += [
        {"step": r["step"], "value": r["val_f"], "curve": "validation F"} for r in rows if r.get("val_f") is not None
    ]
    return pd.DataFrame(out, columns=["step", "value", "curve"])


def last_run(site: ws.Site) -> tuple[str, Any, str, str | None]:
    """Status, curves, log and best checkpoint of the site's most recent training run (from its files)."""
    runs = [r for r in site.runs() if (r / "history.json").is_file()]
    if not runs:
        return f"No training yet for site {site.name}. Trains on: {device_text()}.", curves_frame([]), "", None
    run = max(runs, key=lambda r: (r / "history.json").stat().st_mtime)
    history = json.loads((run / "history.json").read_text())
    last = history[-1] if history else {}
    vals = [r["val_f"] for r in history if r.get("val_f") is not None]
    parts = [f"Last run **{run.name}**", f"step {last.get('step', 0)}, epoch {float(last.get('epoch', 0)):.2f}"]
    if vals:
        parts.append(f"validation F {vals[-1]:.3f} (best {max(vals):.3f})")
    if (run / "last.pt").is_file():
        parts.append("resumable")
    log = (run / RUN_LOG).read_text() if (run / RUN_LOG).is_file() else ""
    best = run / "best.pt"
    return " | ".join(parts), curves_frame(history), log, str(best) if best.is_file() else None


class TrainingJob:
    """The single training run of a process. ``stop_event`` is the library's stop request."""

    LOG_EVERY_S = 5.0  # seconds between step lines in the log (every validation and checkpoint is logged)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.events: list[Any] = []
        self.log: list[str] = []
        self.error: str | None = None
        self.run_dir: Path | None = None
        self.title = ""
        self._last_log = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, make_events: Callable[[threading.Event], Iterator[Any]], run_dir: Path, title: str) -> None:
        """Start ``make_events(stop_event)`` (a ``humanseg.train.train`` iterator) unless a run is going."""
        with self._lock:
            if self.running:
                raise TrainingBusy(
                    f"A training is already running ({self.title}). One training runs at a time: stop it with "
                    "'Stop' or wait until it ends, then start again."
                )
            self.stop_event = threading.Event()
            self.events, self.log, self.error = [], [], None
            self.run_dir, self.title, self._last_log = run_dir, title, 0.0
            iterator = make_events(self.stop_event)
            self._thread = threading.Thread(target=self._consume, args=(iterator,), name="humanseg-train", daemon=True)
            self._thread.start()

    def stop(self) -> str:
        """Ask the running training to stop after its current step (last.pt is saved; it can be resumed)."""
        if not self.running:
            return "No training is running."
        self.stop_event.set()
        return "Stopping after the current step; last.pt will be saved and the run can be resumed."

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _consume(self, iterator: Iterator[Any]) -> None:
        try:
            for event in iterator:
                self.events.append(event)
                if self._logged(event):
                    line = event.describe()
                    self.log.append(line)
                    self._save_log(line)
        except USER_ERRORS as err:
            self.error = str(err)
            self.log.append(f"error: {err}")
            self._drop_dead_run()
        except Exception as err:  # a bug: keep the app serving, show it, and log the traceback
            traceback.print_exc()
            self.error = f"{type(err).__name__}: {err}"
            self.log.append(f"error: {self.error}")
            self._drop_dead_run()

    def _drop_dead_run(self) -> None:
        """A run that failed before its first checkpoint leaves no folder in the run list (only its log was in it);
        one with a last.pt is kept, it can be resumed."""
        if self.run_dir is not None and self.run_dir.is_dir() and not (self.run_dir / "last.pt").exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _logged(self, event: Any) -> bool:
        """Every event goes to the log except step events, one per LOG_EVERY_S (and the first)."""
        if event.kind != "step":
            return True
        now = time.monotonic()
        if now - self._last_log < self.LOG_EVERY_S and event.step > 1:
            return False
        self._last_log = now
        return True

    def _save_log(self, line: str) -> None:
        # Kept beside the checkpoints, so the Train tab can show a finished run's log after a restart.
        if self.run_dir is not None and self.run_dir.is_dir():
            with open(self.run_dir / RUN_LOG, "a") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {line}\n")

    # -- what a page shows

    def status(self) -> str:
        if not self.events and self.error is None:
            return "Starting..." if self.running else "No training yet."
        last = self.events[-1] if self.events else None
        if self.error is not None:
            return f"**Training failed** ({self.title}): {self.error}"
        parts = [f"**{self.title}**"]
        if last is not None:
            parts.append(f"device: {last.device}")
            total = f" of ~{last.total_steps}" if last.total_steps else ""
            parts.append(f"step {last.step}{total}, epoch {last.epoch:.2f}, {last.elapsed_s / 60:.1f} min")
            losses = [e.loss for e in self.events if e.kind == "step" and e.loss is not None]
            if losses:
                parts.append(f"loss {losses[-1]:.4f}")
            vals = [e.val_f for e in self.events if e.kind == "val" and e.val_f is not None]
            if vals:
                parts.append(f"validation F {vals[-1]:.3f} (best {max(vals):.3f})")
            if last.kind == "done":
                parts.append(f"finished: {last.message}")
            elif self.stop_event.is_set():
                parts.append("stopping...")
        return " | ".join(parts)

    def curves(self) -> Any:
        """Loss per step and validation F per validation, for a line plot."""
        rows = [{"step": e.step, "loss": e.loss} for e in self.events if e.kind == "step"]
        rows += [{"step": e.step, "val_f": e.val_f} for e in self.events if e.kind == "val"]
        return curves_frame(rows)

    def checkpoint(self) -> str | None:
        if self.run_dir is None:
            return None
        best = self.run_dir / "best.pt"
        return str(best) if best.is_file() and not self.running else None

    def outputs(self) -> tuple[str, Any, str, str | None]:
        """Status, curves, the log's last 400 lines and the best checkpoint once the run has ended."""
        return self.status(), self.curves(), "\n".join(self.log[-400:]), self.checkpoint()

    def fraction(self) -> tuple[int, int | None] | None:
        """(step, total steps) of the last event, for a progress bar."""
        last = self.events[-1] if self.events else None
        if last is None:
            return None
        return last.step, last.total_steps


def start_training(
    job: TrainingJob,
    site: ws.Site,
    dataset_name: str | None,
    preset: str,
    *,
    minutes: float = 0,
    epochs: int = 0,
    batch_size: int = 8,
    val_sequences: list[Path] | Callable[[], list[Path]] = (),
) -> Path:
    """Start training ``preset`` on a finished dataset of the site in a new run folder; returns it.

    ``minutes`` and/or ``epochs`` (0: none) bound the run. ``val_sequences`` may be a callable, called only once
    the options are known to be good (it may unpack an upload)."""
    from humanseg.train import TrainConfig, train

    if not dataset_name:
        raise ValueError("No dataset picked: build one in the 'Site and dataset' tab first.")
    dataset = site.datasets_dir / ws.check_name(dataset_name, "dataset name")
    if not (dataset / "manifest.json").is_file():
        raise ValueError(f"Dataset {dataset_name!r} is not a finished dataset of site {site.name}; build it first.")
    if minutes <= 0 and epochs <= 0:
        raise ValueError("Set a time budget (minutes) or a number of epochs, or both.")
    config = TrainConfig(
        model=preset,
        minutes=minutes if minutes > 0 else None,
        epochs=epochs if epochs > 0 else None,
        batch_size=batch_size,
    )
    config.validate()  # a bad option is reported before anything starts
    if job.running:
        raise TrainingBusy(f"A training is already running ({job.title}); stop it or wait until it ends.")
    seqs = val_sequences() if callable(val_sequences) else list(val_sequences)
    run_dir = ws.unique_path(site.runs_dir, ws.timestamp_name(preset))
    job.start(
        lambda stop: train(config, dataset, run_dir, seqs, resume=False, stop=stop),
        run_dir,
        f"{preset} on {site.name}/{dataset.name} -> runs/{run_dir.name}",
    )
    return run_dir


def resume_training(
    job: TrainingJob, site: ws.Site, run_name: str | None, *, minutes: float = 0, epochs: int = 0
) -> Path:
    """Continue a stopped run of the site from its last.pt for ``minutes`` more and/or ``epochs`` more."""
    from humanseg.checkpoint import read_checkpoint
    from humanseg.train import resume_config, train

    if not run_name:
        raise ValueError("No run picked: choose a stopped run of this site under 'Resume'.")
    run_dir = site.runs_dir / ws.check_name(run_name, "run name")
    step = read_checkpoint(run_dir / "last.pt").get("step", 0)
    info_path = run_dir / "config.json"
    if not info_path.is_file():
        raise ValueError(f"Run {run_name} has no saved training options (config.json); it cannot be resumed.")
    if minutes <= 0 and epochs <= 0:
        raise ValueError("Set how much longer to train: minutes and/or epochs more.")
    # An unset budget stays unset (None) rather than the saved one: "N more" of one kind bounds the run alone.
    config = resume_config(
        run_dir,
        more_minutes=minutes,
        more_epochs=epochs,
        **({} if minutes > 0 else {"minutes": None}),
        **({} if epochs > 0 else {"epochs": None}),
    )
    config.validate()
    info = json.loads(info_path.read_text())
    dataset = Path(info["dataset"])
    val_seqs = [Path(s) for s in info.get("val_sequences", [])]
    job.start(
        lambda stop: train(config, dataset, run_dir, val_seqs, resume=True, stop=stop),
        run_dir,
        f"{config.model} on {site.name}/{dataset.name} -> runs/{run_dir.name} (resumed at step {step})",
    )
    return run_dir
