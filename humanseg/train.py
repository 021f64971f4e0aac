"""Training: a dataset folder in, checkpoints and curves out, progress as a stream of events.

>>> for event in train(TrainConfig(model="segnet-fast", minutes=5), "DATASET", "runs/site1"):
...     print(event.describe())

The loop, top to bottom: load the dataset into memory; build the model (seeded); each step draws the next batch
(a pure function of seed, epoch and step, so resumed and multi-process runs see the same batches), augments it
in torch, takes one optimizer step at the learning rate of the schedule; every ``val_every`` steps (default:
once per epoch) scores the composite val split and any real labelled sequences, and saves ``last.pt`` (and
``best.pt`` when the score improved). The run stops at the epoch limit, the time budget or a stop request,
whichever comes first, and always leaves ``last.pt``, ``best.pt``, ``history.json`` and ``curves.png`` in the
run folder.

Devices: CUDA when present (bf16 autocast, channels_last, cudnn.benchmark, data kept on the GPU), else the CPU
with all cores. Several processes: launch with ``torchrun --nproc-per-node N -m humanseg train ...``; each
process trains on its shard of every epoch (DistributedDataParallel, gloo on CPU, nccl on GPU) with
``batch_size`` images per process; only rank 0 validates and writes files.

Beside this module: the dataset and its augmentation in ``humanseg.trainset``, the scores taken at each
validation in ``humanseg.validation``, the run folder's files in ``humanseg.run_folder`` and the torchrun
process group in ``humanseg.distributed``.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from humanseg.checkpoint import capture_rng_state, read_checkpoint, restore_rng_state
from humanseg.checks import check_output_dir
from humanseg.device import choose_device
from humanseg.distributed import Distributed
from humanseg.files import remove_stale_temps
from humanseg.models import DEFAULT_PRESET, ModelConfig, build_model, compose_input, get_preset
from humanseg.run_folder import RunFolder
from humanseg.trainset import AUGMENTATIONS, TrainSet, augment_batch, class_weights, load_dataset
from humanseg.validation import validate_composites, validate_sequences

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("onecycle", "cosine", "constant")
LOSSES = ("ce+dice", "ce", "weighted-ce")
CLASS_WEIGHTINGS = ("median-frequency", "inverse-frequency")

#: Named recipes: field overrides applied before the user's own options.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    # The paper's recipe: Adam at a fixed 1e-5, class-weighted cross-entropy, flips and +-30 degree rotations.
    "paper": {
        "optimizer": "adam",
        "lr": 1e-5,
        "weight_decay": 0.0,
        "schedule": "constant",
        "loss": "weighted-ce",
        "class_weighting": "median-frequency",
        "augment": "paper",
    },
}

#: The longest time budget accepted, in minutes (one year): anything longer is a typo or "no limit".
MAX_MINUTES = 525_600

#: Options that may change when a run is resumed (they do not change what a step computes).
RESUME_OVERRIDABLE = frozenset({"minutes", "epochs", "val_every", "workers", "device", "threads"})


@dataclass
class TrainConfig:
    """Training options; units in the comments. ``TrainConfig.from_recipe("paper", minutes=30)`` for recipes."""

    model: str = DEFAULT_PRESET  # preset name in humanseg.models.PRESETS
    size: tuple[int, int] | None = None  # (height, width) in pixels; None = the preset's input size
    batch_size: int = 8  # images per optimizer step, per process
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 1e-4  # decoupled weight decay (adamw); L2 penalty (adam)
    optimizer: str = "adamw"  # adamw | adam
    schedule: str = "onecycle"  # onecycle | cosine | constant, over the run's progress (steps or time)
    loss: str = "ce+dice"  # ce+dice | ce | weighted-ce
    class_weighting: str = "median-frequency"  # weighted-ce only: median-frequency | inverse-frequency
    augment: str = "default"  # default (flips, scale/shift, colour, blur, noise) | paper (flips, +-30 deg) | none
    minutes: float | None = 10.0  # wall-clock budget in minutes (validation included); None = no limit
    epochs: int | None = None  # passes over the training split; None = no limit
    seed: int = 0  # model init, batch order and augmentation
    val_every: int | None = None  # optimizer steps between validations; None = once per epoch
    workers: int = 0  # background threads preparing batches ahead of the step (0 = in the loop)
    plate: str | None = None  # plate stored with plate models: a file name in DATASET/plates; None = the first
    device: str | None = None  # "cpu" or "cuda"; None = CUDA when available
    threads: int | None = None  # CPU threads for torch; None = $OMP_NUM_THREADS if set, else all cores
    recipe: str = "default"  # the recipe these options started from (informational)

    def __post_init__(self) -> None:
        if self.size is not None:
            self.size = (int(self.size[0]), int(self.size[1]))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad option and its valid values."""
        get_preset(self.model)
        choices = {
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
            "loss": LOSSES,
            "class_weighting": CLASS_WEIGHTINGS,
            "augment": AUGMENTATIONS,
            "recipe": tuple(RECIPES),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        if self.minutes is None and self.epochs is None:
            raise ValueError("give a time budget (minutes) or a number of epochs, or both; both are None")
        if self.minutes is not None and not 0 < self.minutes <= MAX_MINUTES:
            # inf, NaN and 1e308 are refused rather than read as "no limit": a budget is a promise to stop, and
            # an epoch count alone is the way to say "no time limit".
            raise ValueError(
                f"minutes must be a number > 0 and at most {MAX_MINUTES} (one year), got {self.minutes}; "
                "for no time limit, give a number of epochs and no minutes"
            )
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.val_every is not None and self.val_every < 1:
            raise ValueError(f"val_every must be >= 1 step (or None for once per epoch), got {self.val_every}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or None for all cores), got {self.threads}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or None (automatic), got {self.device!r}")
        if self.size is not None and min(self.size) < 1:
            raise ValueError(f"size must be (height, width) in pixels, got {self.size}")

    @classmethod
    def from_recipe(cls, recipe: str = "default", **overrides: Any) -> TrainConfig:
        """The recipe's options, then ``overrides`` (options explicitly chosen by the user) on top."""
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; valid: {', '.join(RECIPES)}")
        return cls(**{**RECIPES[recipe], **overrides, "recipe": recipe})

    def model_config(self) -> ModelConfig:
        """The preset's config with the training size as its input size."""
        preset = get_preset(self.model)
        return preset.replace(input_size=self.size) if self.size is not None else preset

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size) if self.size is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown train config keys {unknown}; known: {sorted(known)}")
        return cls(**{**d, "size": tuple(d["size"]) if d.get("size") else None})

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig(**{**asdict(self), **changes})


@dataclass
class TrainEvent:
    """One progress report. ``kind``: ``start``, ``step``, ``val``, ``checkpoint`` or ``done``.

    ``epoch`` counts epochs done as a float (2.5 = half way through the third); ``total_steps`` is exact with an
    epoch limit, estimated from the speed so far with a time budget (None until known); ``images_per_s`` counts
    all processes; ``metrics`` holds validation scores: ``composite_loss``, ``composite_iou``, ``composite_f``
    (and precision/recall) on the composite val split, ``real_f`` (mean) and ``f/<sequence>`` on real sequences,
    and ``val_f``, the headline F-measure (``real_f`` when real sequences are given, else ``composite_f``), also
    in the ``val_f`` field and in ``history.json``; ``path`` is the file written (checkpoint, done: ``best.pt``);
    ``message`` says why a run stopped, or notes.
    """

    kind: str
    step: int = 0
    epoch: float = 0.0
    total_steps: int | None = None
    elapsed_s: float = 0.0
    device: str = ""
    loss: float | None = None
    lr: float | None = None
    images_per_s: float | None = None
    val_f: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    path: str | None = None
    message: str = ""
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """This event as one line of a training log (the app's log, the CLI's validation lines)."""
        if self.kind == "start":
            m = self.metrics
            text = (
                f"start on {self.device}: {m.get('train_samples')} training / {m.get('val_samples')} validation "
                f"images, {m.get('steps_per_epoch')} steps per epoch"
            )
            return text + (f" ({self.message})" if self.message else "")
        if self.kind == "step":
            ips = f", {self.images_per_s:.1f} images/s" if self.images_per_s else ""
            return f"step {self.step} (epoch {self.epoch:.2f}): loss {self.loss:.4f}, lr {self.lr:.2e}{ips}"
        if self.kind == "val":
            shown = ", ".join(f"{k} {v:.3f}" for k, v in self.metrics.items() if isinstance(v, (int, float)))
            return f"validation at step {self.step}: {shown}"
        if self.kind == "checkpoint":
            return f"saved {Path(self.path or '').name} ({self.message})"
        if self.kind == "done":
            return f"done at step {self.step}: {self.message}; model: {self.path}"
        raise ValueError(f"unknown training event kind {self.kind!r}; valid: start, step, val, checkpoint, done")


# ----------------------------------------------------------------------------------------------- schedule


def lr_at(config: TrainConfig, progress: float) -> float:
    """Learning rate at ``progress`` in [0, 1] of the run.

    ``onecycle``: cosine warm-up from lr/25 to lr over the first 25%, then cosine down to lr/25/1e4 (the
    defaults of ``torch.optim.lr_scheduler.OneCycleLR``); ``cosine``: linear warm-up from lr/25 over 5%, then cosine to 0;
    ``constant``: lr.
    """
    p = min(max(progress, 0.0), 1.0)
    lr = config.lr
    if config.schedule == "constant":
        return lr
    if config.schedule == "cosine":
        warm = 0.05
        if p < warm:
            return lr / 25 + (lr - lr / 25) * p / warm
        return lr * 0.5 * (1 + math.cos(math.pi * (p - warm) / (1 - warm)))
    warm, start, end = 0.25, lr / 25, lr / 25 / 1e4
    if p < warm:
        return start + (lr - start) * 0.5 * (1 - math.cos(math.pi * p / warm))
    return end + (lr - end) * 0.5 * (1 + math.cos(math.pi * (p - warm) / (1 - warm)))


# ----------------------------------------------------------------------------------------------- processes


def _pick_device(config: TrainConfig, dist: Distributed) -> tuple[torch.device, str]:
    if choose_device(config.device).type == "cuda":
        device = torch.device("cuda", dist.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels once
        text = f"{device} ({torch.cuda.get_device_name(device)}, bf16 autocast)"
    else:
        device = torch.device("cpu")
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        elif dist.world == 1 and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(os.cpu_count() or 1)  # all cores, unless the user limited them
        n = torch.get_num_threads()
        text = f"cpu ({n} thread{'s' if n > 1 else ''})"
    if dist.world > 1:
        text += f" x {dist.world} processes"
    return device, text


def _seed_of(*parts: int) -> int:
    # A well-mixed 63-bit seed from several integers (seed, epoch, step, rank ...).
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


# ----------------------------------------------------------------------------------------------- data


class _Batches:
    """The batch of every step as a pure function of (seed, step): epoch order from a generator seeded with
    (seed, epoch), shard ``rank::world`` (padded like DistributedSampler), augmentation generator seeded with
    (seed, step, rank)."""

    def __init__(
        self,
        data: TrainSet,
        train_idx: torch.Tensor,
        config: TrainConfig,
        dist: Distributed,
        device: torch.device,
        needs_plate: bool,
    ) -> None:
        self.data, self.train_idx, self.config, self.dist = data, train_idx, config, dist
        self.device, self.needs_plate = device, needs_plate
        n = len(train_idx)
        self.per_rank = math.ceil(n / dist.world)
        self.steps_per_epoch = self.per_rank // config.batch_size
        if self.steps_per_epoch == 0:
            most = max(1, self.per_rank)
            raise ValueError(
                f"batch size {config.batch_size} is larger than the {self.per_rank} training samples per process "
                f"({n} samples, {dist.world} process(es)); use --batch-size {most} or less, or a bigger dataset"
            )
        self._lock = threading.Lock()
        self._orders: dict[int, torch.Tensor] = {}

    def order(self, epoch: int) -> torch.Tensor:
        """This rank's sample indices for ``epoch``."""
        with self._lock:
            if epoch not in self._orders:
                g = torch.Generator().manual_seed(_seed_of(self.config.seed, epoch, 0xDA7A))
                perm = self.train_idx[torch.randperm(len(self.train_idx), generator=g)]
                pad = self.per_rank * self.dist.world - len(perm)
                if pad:
                    perm = torch.cat([perm, perm[:pad]])
                self._orders = {epoch: perm[self.dist.rank :: self.dist.world]}
            return self._orders[epoch]

    def indices(self, step: int) -> torch.Tensor:
        epoch, k = divmod(step, self.steps_per_epoch)
        bs = self.config.batch_size
        return self.order(epoch)[k * bs : (k + 1) * bs]

    def make(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(network input [B, C, H, W] float, target [B, H, W] int64) for ``step``, on the device."""
        idx = self.indices(step).to(self.data.images.device)
        plates = self.data.plates[self.data.plate_index[idx]] if self.needs_plate else None
        g = torch.Generator(device=self.device).manual_seed(_seed_of(self.config.seed, step, self.dist.rank))
        frames, target, plate = augment_batch(
            self.data.images[idx].to(self.device, non_blocking=True),
            self.data.masks[idx].to(self.device, non_blocking=True),
            plates.to(self.device, non_blocking=True) if plates is not None else None,
            self.config.augment,
            g,
        )
        return compose_input(frames, plate, self.config.model_config().inputs), target


class _Prefetch:
    """Prepares the batches of the next ``workers`` steps in threads (torch ops release the GIL)."""

    def __init__(self, batches: _Batches, workers: int) -> None:
        self.batches = batches
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") if workers else None
        self.futures: dict[int, Future] = {}

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pool is None:
            return self.batches.make(step)
        for s in range(step, step + self.workers + 1):
            if s not in self.futures:
                self.futures[s] = self.pool.submit(self.batches.make, s)
        return self.futures.pop(step).result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _Loss:
    def __init__(self, kind: str, weights: torch.Tensor | None = None) -> None:
        self.kind, self.weights = kind, weights

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        ce = F.cross_entropy(logits, target, weight=self.weights if self.kind == "weighted-ce" else None)
        if self.kind != "ce+dice":
            return ce
        # Soft Dice on the person class over the whole batch: scale-free, so small people still count.
        p = torch.softmax(logits, dim=1)[:, 1]
        t = target.float()
        dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
        return ce + dice


# ----------------------------------------------------------------------------------------------- the loop


def train(
    config: TrainConfig,
    dataset_dir: str | Path,
    out_dir: str | Path,
    val_sequences: Sequence[str | Path] = (),
    resume: bool = False,
    stop: threading.Event | None = None,
    progress: bool = True,
) -> Iterator[TrainEvent]:
    """Train, yielding :class:`TrainEvent` s; see the module docstring.

    ``val_sequences``: labelled real sequences (CDnet/SBI/DAVIS layout) scored every validation; when given,
    ``best.pt`` is chosen by their mean F-measure, else by IoU on the composite val split (else by training
    loss). ``resume``: continue ``out_dir/last.pt`` exactly where it stopped (the options must match the saved
    ones except ``minutes``, ``epochs``, ``val_every``, ``workers``, ``device``). ``stop``: set it to end the run
    after the current step; ``last.pt`` is saved and a ``done`` event follows. ``progress``: a bar on stderr
    while the dataset loads (rank 0 only); the events are the progress of training itself.
    """
    config.validate()
    dist = Distributed.from_env()
    threads_before = torch.get_num_threads()
    out_dir = Path(out_dir)
    check_output_dir(out_dir)
    existed = out_dir.exists()
    run: TrainingRun | None = None
    try:
        with dist.process_group(cuda=choose_device(config.device).type == "cuda"):
            run = TrainingRun(config, dataset_dir, out_dir, val_sequences, resume, stop, dist, progress)
            yield from run.events()
    except Exception:
        if not resume and dist.main:
            _remove_failed_run(out_dir, run.folder.written if run is not None else set(), existed)
        raise
    finally:
        torch.set_num_threads(threads_before)  # the thread count is process-wide: leave it as found


def _remove_failed_run(out_dir: Path, written: set[str], existed: bool) -> None:
    """A new run that failed before its first checkpoint leaves nothing behind (no dead run folder)."""
    if (out_dir / "last.pt").exists():
        return  # it trained: keep what it saved, it can be resumed
    for name in written:
        (out_dir / name).unlink(missing_ok=True)
    if not existed and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def _check_val_sequence(root: Path) -> None:
    """Refuse a validation sequence that would fail at the first validation: unreadable, or without labels."""
    from humanseg.video import load_sequence

    seq = load_sequence(root)  # checks every frame's and mask's size from the file headers
    if not seq.scored_items():
        raise ValueError(
            f"validation sequence {root} has no labelled frame to score (inside its temporal ROI); "
            "add ground-truth masks, or leave it out of --val"
        )


class TrainingRun:
    """One training run: setup (dataset, model, optimizer, resumed state) in ``__init__``, the loop in
    :meth:`events`; :func:`train` makes one and drives it. After the loop ``model`` holds the trained network
    (also on every process of a multi-process run) and ``folder`` the run folder's writer."""

    def __init__(
        self,
        config: TrainConfig,
        dataset_dir: str | Path,
        out_dir: str | Path,
        val_sequences: Sequence[str | Path] = (),
        resume: bool = False,
        stop: threading.Event | None = None,
        dist: Distributed | None = None,
        progress: bool = True,
    ) -> None:
        self.t_start = time.perf_counter()
        dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
        self.config, self.dataset_dir, self.folder = config, dataset_dir, RunFolder(out_dir)
        self.val_sequences, self.stop = [Path(s) for s in val_sequences], stop
        self.dist = dist = dist or Distributed.from_env()
        for seq in self.val_sequences:
            if not seq.is_dir():
                raise FileNotFoundError(f"validation sequence folder not found: {seq}")
            _check_val_sequence(seq)  # every item, before step 1: a bad mask must not cost an epoch
        if dist.main:
            remove_stale_temps(out_dir)  # a killed run's half-written checkpoint
        last = self.folder.last
        saved: dict[str, Any] | None = None
        if resume:
            saved = read_checkpoint(last)  # FileNotFoundError names the file
            _check_resumable(config, saved, last)
        elif last.exists():
            raise ValueError(
                f"{out_dir} already holds a training run ({last.name}); resume it with --resume, "
                "or train into another --out folder"
            )
        self.saved = saved

        self.device, self.device_text = _pick_device(config, dist)
        self.cuda = self.device.type == "cuda"
        # channels_last: the layout cuDNN tensor cores and oneDNN prefer (on CPU the gain is small, see bench/).
        self.channels_last = True
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2**32)

        self.model_config = config.model_config()
        data = load_dataset(dataset_dir, size=self.model_config.input_size, progress=progress and dist.main)
        if saved is not None and saved.get("dataset_id") != data.id:
            raise ValueError(
                f"{last} was trained on dataset id {saved.get('dataset_id')!r}, but {dataset_dir} has "
                f"id {data.id!r}; resume with the original dataset, or start a new run folder"
            )
        if self.model_config.needs_plate and len(data.plates) == 0:
            raise ValueError(
                f"model {config.model!r} takes the site plate, but {dataset_dir} has no plates/; "
                "use a frame-only model or rebuild the dataset with its plates"
            )
        self.plate = data.plate_array(config.plate) if self.model_config.needs_plate else None
        # The site's working scale the composites were made at (None for datasets without one): the checkpoint
        # carries it so the segmenter sees frames at the scale the network was trained at.
        scale = data.manifest.get("working_scale")
        self.working_scale = None if scale is None else float(scale)
        self.train_idx, self.val_idx = data.indices("train"), data.indices("val")
        if len(self.train_idx) == 0:
            raise ValueError(f"{dataset_dir} has no training samples (split 'train'); rebuild it with a train split")
        weights = None
        if config.loss == "weighted-ce":
            weights = class_weights(data.masks[self.train_idx], config.class_weighting).to(self.device)
        self.loss_fn = _Loss(config.loss, weights)
        if self.cuda and data.images.numel() * 2 < 4 * 2**30:
            # Small enough to live on the GPU: batches are gathered and augmented there without host copies.
            data.images, data.masks = data.images.to(self.device), data.masks.to(self.device)
            data.plates, data.plate_index = data.plates.to(self.device), data.plate_index.to(self.device)
        self.data = data
        self.batches = _Batches(data, self.train_idx, config, dist, self.device, self.model_config.needs_plate)
        self.spe = self.batches.steps_per_epoch
        self.total_by_epochs = config.epochs * self.spe if config.epochs is not None else None
        self.budget_s = config.minutes * 60.0 if config.minutes is not None else None
        self.val_every = config.val_every or self.spe

        model = build_model(self.model_config).to(self.device)
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        opt_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

        self.step, self.history = 0, []
        self.best_score: float | None = None
        self.best_metric = "real_f" if val_sequences else ("composite_iou" if len(self.val_idx) else "-train_loss")
        if saved is not None:
            self.model.load_state_dict(saved["model_state"])
            self.optimizer.load_state_dict(saved["optimizer"])
            restore_rng_state(saved["rng"])
            self.step = int(saved["step"])
            self.history = list(saved.get("history") or [])
            # A score of another metric (e.g. the run gained --val sequences) cannot be compared: start afresh.
            same_metric = saved.get("best_metric") == self.best_metric
            self.best_score = saved.get("best_score") if same_metric else None
            self.t_start -= float(saved["elapsed_s"])  # time budgets span resumes
        self.ddp: torch.nn.Module = self.model
        if dist.world > 1:
            ids = [self.device.index] if self.cuda else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.recent_losses: list[float] = []
        self.last_saved_step = -1

    # -- small helpers

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def progress(self) -> float:
        """Fraction of the run done: by steps with an epoch limit, by time with a budget, the larger of both."""
        p = 0.0
        if self.total_by_epochs:
            p = self.step / self.total_by_epochs
        if self.budget_s is not None:
            p = max(p, self.elapsed() / self.budget_s)
        return p

    def event(self, kind: str, **kw: Any) -> TrainEvent:
        total = self.total_by_epochs
        if self.budget_s is not None and self.step > 0:
            by_time = int(self.step * self.budget_s / max(self.elapsed(), 1e-9))
            total = by_time if total is None else min(total, by_time)
        return TrainEvent(
            kind, step=self.step, epoch=self.step / self.spe, total_steps=total, elapsed_s=self.elapsed(),
            device=self.device_text, rank=self.dist.rank, **kw,
        )  # fmt: skip

    # -- the loop

    def events(self) -> Iterator[TrainEvent]:
        config, dist = self.config, self.dist
        if dist.main:
            run_info = {
                "train_config": config.to_dict(),
                "model_config": self.model_config.to_dict(),
                "dataset": str(self.dataset_dir),
                "dataset_id": self.data.id,
                "val_sequences": [str(s) for s in self.val_sequences],
                "device": self.device_text,
            }
            self.folder.write_config(run_info)
        note = ""
        if self.saved is not None:
            note = f"resumed at step {self.step}"
            old_world = (self.saved.get("data_order") or {}).get("world_size", 1)
            if old_world != dist.world:
                note += f"; process count changed from {old_world} to {dist.world}, so the batch order differs"
        counts = {"train_samples": len(self.train_idx), "val_samples": len(self.val_idx), "steps_per_epoch": self.spe}
        yield self.event("start", message=note, metrics=counts)

        prefetch = _Prefetch(self.batches, config.workers)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else contextlib.nullcontext()
        control = torch.zeros(2, dtype=torch.float64, device=self.device)
        ips: float | None = None
        last_val_step = self.step
        t_prev = time.perf_counter()
        self.model.train()
        try:
            while True:
                # Rank 0 decides whether to go on and where the schedule stands; the other ranks follow.
                code = 0
                if self.total_by_epochs is not None and self.step >= self.total_by_epochs:
                    code = 1
                elif self.budget_s is not None and self.elapsed() >= self.budget_s:
                    code = 2
                elif self.stop is not None and self.stop.is_set():
                    code = 3
                control[0], control[1] = code, self.progress()
                if dist.world > 1:
                    torch.distributed.broadcast(control, src=0)
                code, prog = int(control[0]), float(control[1])
                if code:
                    break
                lr = lr_at(config, prog)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                x, target = prefetch.get(self.step)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast:
                    logits = self.ddp(x)
                loss = self.loss_fn(logits, target)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.step += 1

                loss_value = float(loss.detach())
                now = time.perf_counter()
                inst = config.batch_size * dist.world / max(now - t_prev, 1e-9)
                ips = inst if ips is None else 0.9 * ips + 0.1 * inst
                t_prev = now
                self.recent_losses = (self.recent_losses + [loss_value])[-50:]
                self.history.append({"step": self.step, "epoch": self.step / self.spe, "loss": loss_value, "lr": lr})
                yield self.event("step", loss=loss_value, lr=lr, images_per_s=ips)

                if self.step % self.val_every == 0:
                    last_val_step = self.step
                    yield from self.validate_and_save()
                    t_prev = time.perf_counter()  # validation time is not training speed
        finally:
            prefetch.close()

        if code == 2 and self.step == 0:
            # An untrained best.pt would look like a result: write nothing (train() removes config.json).
            raise ValueError(
                f"the time budget of {config.minutes:g} minutes ran out before the first training step (setting "
                f"up took {self.elapsed():.1f} s); give --minutes 1 or more, or --epochs"
            )
        reason = {1: "epoch limit reached", 2: "time budget used", 3: "stopped on request"}[code]
        if code != 3 and self.step != last_val_step:
            yield from self.validate_and_save()
        if dist.main and self.last_saved_step != self.step:
            # Stopped on request (no validation, to finish quickly): last.pt must still be this exact state.
            self.save(self.folder.last, full=True)
            self.write_history()
        if dist.main and not self.folder.best.exists():
            self.save(self.folder.best, full=False)  # never validated: the final model is the best we have
        yield self.event("done", message=reason, path=str(self.folder.best), val_f=self._last_val_f())

    def _last_val_f(self) -> float | None:
        for row in reversed(self.history):
            if row.get("val_f") is not None:
                return row["val_f"]
        return None

    def validate_and_save(self) -> Iterator[TrainEvent]:
        """Score the model (rank 0 only), record it, save last.pt and, if it improved, best.pt."""
        if not self.dist.main:
            return
        metrics: dict[str, float] = {}
        if len(self.val_idx):
            metrics.update(
                validate_composites(
                    self.model, self.data, self.val_idx, self.loss_fn, self.device, self.channels_last,
                    2 * self.config.batch_size,
                )
            )  # fmt: skip
        if self.val_sequences:
            metrics.update(validate_sequences(self.model, self.val_sequences, self.plate, self.working_scale))
        if self.best_metric == "-train_loss":
            metrics["-train_loss"] = -float(np.mean(self.recent_losses)) if self.recent_losses else -math.inf
        score = metrics[self.best_metric]
        # The headline F-measure: on real frames when there are any, else on the composite val split.
        val_f = metrics.get("real_f", metrics.get("composite_f"))
        metrics["val_f"] = val_f
        self.history.append({"step": self.step, "epoch": self.step / self.spe, **metrics})
        yield self.event("val", val_f=val_f, metrics=metrics)
        improved = self.best_score is None or score > self.best_score
        if improved:
            self.best_score = score
        yield self.event("checkpoint", path=str(self.save(self.folder.last, full=True)), message="last")
        if improved:
            path = self.save(self.folder.best, full=False)
            yield self.event("checkpoint", path=str(path), message=f"best ({self.best_metric} {score:.4f})")
        self.write_history()

    def save(self, path: Path, full: bool) -> Path:
        """``full``: everything needed to resume (last.pt); else weights and metadata only (best.pt)."""
        spe = self.spe
        if path == self.folder.last:
            self.last_saved_step = self.step
        return self.folder.save(
            path,
            self.model,
            train_config=self.config.to_dict(),
            step=self.step,
            epoch=self.step // spe,
            elapsed_s=self.elapsed(),
            optimizer=self.optimizer if full else None,
            # The schedule is a pure function of progress (steps, or time for budgets); saved for reference.
            scheduler={
                "schedule": self.config.schedule, "progress": self.progress(),
                "lr": lr_at(self.config, self.progress()), "total_steps": self.total_by_epochs,
                "budget_s": self.budget_s,
            },
            rng=capture_rng_state() if full else None,
            # The batch of step s is derived from (seed, s // steps_per_epoch, s % steps_per_epoch, rank).
            data_order={
                "seed": self.config.seed, "epoch": self.step // spe, "batch_in_epoch": self.step % spe,
                "steps_per_epoch": spe, "world_size": self.dist.world,
            },
            best_score=self.best_score,
            best_metric=self.best_metric,
            dataset_id=self.data.id,
            plate=self.plate,
            history=self.history,
            working_scale=self.working_scale,
        )  # fmt: skip

    def write_history(self) -> None:
        self.folder.write_history(self.history, title=f"{self.config.model} on {self.dataset_dir.name}")


def run_training(
    config: TrainConfig,
    dataset_dir: str | Path,
    out_dir: str | Path,
    val_sequences: Sequence[str | Path] = (),
    resume: bool = False,
    stop: threading.Event | None = None,
) -> TrainEvent:
    """Run :func:`train` to the end without progress output; return the ``done`` event."""
    done = None
    for ev in train(config, dataset_dir, out_dir, val_sequences, resume=resume, stop=stop, progress=False):
        if ev.kind == "done":
            done = ev
    if done is None:  # train() always ends with a done event unless it raised
        raise RuntimeError("training ended without a done event")
    return done


def resume_config(
    run_dir: str | Path, *, more_minutes: float = 0, more_epochs: int = 0, **options: Any
) -> TrainConfig:
    """The TrainConfig to resume ``run_dir/last.pt`` with: the saved options, ``options`` on top (absolute values,
    e.g. the CLI's ``--epochs 4``), and the budgets extended by ``more_minutes`` / ``more_epochs`` past what the
    run has done (the app's "N more"; budgets count from the run's start, so they are added to it)."""
    state = read_checkpoint(Path(run_dir) / "last.pt")
    if not state.get("train_config"):
        raise ValueError(f"{run_dir}/last.pt has no saved training options; it cannot be resumed, start a new run")
    if more_minutes > 0:
        options["minutes"] = float(state.get("elapsed_s", 0.0)) / 60.0 + more_minutes
    if more_epochs > 0:
        options["epochs"] = int(state.get("epoch", 0)) + more_epochs
    return TrainConfig.from_dict(state["train_config"]).replace(**options)


def _check_resumable(config: TrainConfig, saved: dict[str, Any], path: Path) -> None:
    old = TrainConfig.from_dict(saved.get("train_config") or {}).to_dict()
    new = config.to_dict()
    diff = [k for k in new if k not in RESUME_OVERRIDABLE and new[k] != old.get(k)]
    if diff:
        detail = ", ".join(f"{k}: saved {old.get(k)!r}, given {new[k]!r}" for k in diff)
        raise ValueError(
            f"cannot resume {path}: options differ from the saved run ({detail}); only "
            f"{', '.join(sorted(RESUME_OVERRIDABLE))} may change when resuming"
        )
