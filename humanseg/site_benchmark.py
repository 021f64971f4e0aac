"""The one-command site benchmark: build a site dataset, train a model on it, score it against the baselines.

For each labelled sequence of a fixed camera (CDnet layout), with actor silhouettes taken only from other footage:

1. the site plate: the sequence's ``empty_bg*.jpg`` when present, else estimated from its own input frames
   with the people a generic segmenter finds left out (``dataset_builder.backgrounds.estimate_plates``,
   ``plate_people``; the ground truth is never looked at);
2. a composite dataset of that plate and the actors' silhouettes (``dataset_builder.build.build_dataset``);
3. a model trained on it for at most the time budget (``humanseg.train.train``; composite validation only, so
   the sequence's ground truth never chooses the checkpoint);
4. the trained model (with plate completion for plate models, see ``humanseg.segmenters.segnet``) and the
   baselines scored on the sequence's real frames with the CDnet protocol
   (``humanseg.evaluate.evaluate_sequence``), plus the F-measure on the frames where a person stands still.

Silhouettes are cut from each ``--actors`` source once (method ``masks``) into ``OUT/actors/<name>/``. A source
that is the sequence itself is refused; with several sequences, a source that is one of the other sequences is
allowed (leave-one-out).

Outputs in ``OUT``: ``results.json`` (``{sequence: {method: metrics}}``; a baseline that could not run has
``status: "skipped"`` and a ``reason``), ``run.json`` (settings, sources, timings, versions; ``complete`` is false
while later sequences are still running, as the outputs are rewritten after each sequence), ``report.md``,
``f_measure.png`` and per sequence ``<seq>/montage.png``, ``<seq>/plate.png``, ``<seq>/dataset/``,
``<seq>/train/`` (``best.pt``, ``last.pt``, curves) and ``<seq>/masks/<method>/``.

"Standing still" frames come from the ground truth: frame t counts when it has foreground and the foreground
mask at the labelled frame nearest to t - 2 s overlaps it with IoU >= 0.8 (see :func:`still_frames`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from humanseg import metrics
from humanseg.evaluate import format_cell
from humanseg.video import SequenceItem, load_sequence, read_image, read_label

#: Baselines run by default, in table order.
DEFAULT_BASELINES: tuple[str, ...] = ("mog2", "knn", "gsoc", "plate-diff", "mediapipe")
#: Composites built per sequence by default.
DEFAULT_COUNT = 1500
#: Default composites are at most this tall (pixels): training resizes to the model's input size anyway.
DEFAULT_MAX_HEIGHT = 480
#: Frame rate assumed for image-folder sequences when locating the frame 2 s earlier.
DEFAULT_FPS = 25.0
# Person segmenter that keeps people out of an estimated plate (MediaPipe finds standing, near people well).
DEFAULT_PLATE_PEOPLE = "mediapipe"
#: A person "stands still" at frame t when the GT foreground IoU with the frame STILL_SECONDS earlier >= STILL_IOU.
STILL_SECONDS = 2.0
STILL_IOU = 0.8
#: Share of the composites held out for validation (the last ones; it picks best.pt, never the real footage).
VAL_FRACTION = 0.1
SKIP_FIRST_CHOICES = {"auto": None, "yes": True, "no": False}

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ settings


@dataclass
class SiteBenchmarkConfig:
    """Settings of one benchmark run (units in the comments); saved in ``run.json``."""

    sequences: list[Path]  # labelled sequence folders (CDnet layout) of fixed cameras
    actors: list[Path]  # actor sources with masks (DAVIS or CDnet layout)
    out: Path  # output folder
    minutes: float  # training time budget per sequence, minutes (building and scoring come on top)
    model: str | None = None  # model preset; None = humanseg.train.TrainConfig's default
    count: int = DEFAULT_COUNT  # composites per sequence
    size: tuple[int, int] | None = None  # composite (height, width) px; None = the plate's, capped at 480 rows
    seed: int = 0  # dataset, model init and batch order
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    skip_first: bool | None = None  # drop the first scored frame; None = the evaluator's automatic rule
    fps: float = DEFAULT_FPS  # frame rate for the still-person rule (image folders carry none)
    # Person height vs feet row in composite pixels, "ROW:HEIGHT,ROW:HEIGHT"; None = dataset_builder's generic
    # surveillance view. Never fitted: the silhouettes come from other cameras, whose geometry is not the site's.
    perspective: str | None = None
    # Registry segmenter that marks people in the frames an estimated plate is made from (a person standing
    # still for most of the clip stays in a plain median); None = motion masking only. Unused for a given plate.
    plate_people: str | None = DEFAULT_PLATE_PEOPLE
    montage_frames: int = 4  # rows of the montage
    workers: int = field(default_factory=lambda: max(1, min(8, os.cpu_count() or 1)))  # dataset build processes
    device: str | None = None  # training/inference device: "cpu", "cuda" or None (CUDA when available)
    overwrite: bool = False  # replace the outputs of an earlier run in ``out``

    def __post_init__(self) -> None:
        self.sequences = [Path(s) for s in self.sequences]
        self.actors = [Path(a) for a in self.actors]
        self.out = Path(self.out)
        self.baselines = tuple(dict.fromkeys(self.baselines))
        if self.size is not None:
            self.size = (int(self.size[0]), int(self.size[1]))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting (paths are checked by :func:`plan_actor_sources`)."""
        from humanseg.models import get_preset
        from humanseg.segmenters import REGISTRY
        from humanseg.train import TrainConfig

        if not self.sequences:
            raise ValueError("give at least one sequence folder (SEQ_DIR)")
        if not self.actors:
            raise ValueError("give at least one actor source with --actors (a DAVIS or CDnet folder with masks)")
        resolved = [s.resolve() for s in self.sequences]
        repeated = sorted({str(s) for s in self.sequences if resolved.count(s.resolve()) > 1})
        if repeated:
            raise ValueError(f"sequence(s) given more than once: {', '.join(repeated)}; give each SEQ_DIR once")
        if not (isinstance(self.minutes, (int, float)) and math.isfinite(self.minutes) and self.minutes > 0):
            raise ValueError(f"--minutes must be a positive number of minutes, got {self.minutes!r}")
        if self.model is not None:
            get_preset(self.model)  # ValueError listing the presets
        if not isinstance(self.count, int) or self.count < 2:
            raise ValueError(f"--count must be an integer >= 2 (a train and a val sample at least), got {self.count!r}")
        batch = TrainConfig().batch_size
        n_train = self.count - int(round(self.count * VAL_FRACTION))
        if n_train < batch:
            least = next(n for n in range(batch, 10 * batch) if n - int(round(n * VAL_FRACTION)) >= batch)
            raise ValueError(
                f"--count {self.count} leaves {n_train} training composites, fewer than the training batch of "
                f"{batch}; use --count {least} or more"
            )
        if self.size is not None and min(self.size) < 16:
            raise ValueError(f"--size {self.size[0]}x{self.size[1]} is too small: use at least 16x16 (HxW)")
        unknown = [b for b in self.baselines if b not in REGISTRY or b == "segnet"]
        if unknown:
            valid = ", ".join(n for n in REGISTRY if n != "segnet")
            raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; valid: {valid} (the site model always runs)")
        if not self.fps > 0:
            raise ValueError(f"--fps must be > 0, got {self.fps}")
        if self.montage_frames < 1:
            raise ValueError(f"montage_frames must be >= 1, got {self.montage_frames}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.plate_people is not None and (self.plate_people not in REGISTRY or self.plate_people == "segnet"):
            valid = ", ".join(n for n in REGISTRY if n != "segnet")
            raise ValueError(f"unknown --plate-people {self.plate_people!r}; valid: {valid}, or none")
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or None (automatic), got {self.device!r}")

    def model_preset(self) -> str:
        """The preset trained: ``model`` or the training default."""
        from humanseg.models import DEFAULT_PRESET

        return self.model if self.model is not None else DEFAULT_PRESET

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sequences"] = [str(s) for s in self.sequences]
        d["actors"] = [str(a) for a in self.actors]
        d["out"] = str(self.out)
        d["size"] = list(self.size) if self.size is not None else None
        d["baselines"] = list(self.baselines)
        d["model"] = self.model_preset()
        return d


def parse_size(text: str) -> tuple[int, int]:
    """``"240x320"`` -> (240, 320) as (height, width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"bad size {text!r}: expected HxW in pixels, e.g. 240x320") from None
    return h, w


def parse_skip_first(text: str) -> bool | None:
    """``auto`` -> None (the evaluator decides), ``yes`` -> True, ``no`` -> False."""
    try:
        return SKIP_FIRST_CHOICES[text.lower()]
    except KeyError:
        raise ValueError(f"--skip-first must be one of {', '.join(SKIP_FIRST_CHOICES)}, got {text!r}") from None


# ------------------------------------------------------------------------------------------------ sources


def _unique_names(paths: Sequence[Path]) -> list[str]:
    """Folder names for output subfolders; equal names get their parent's name (then a counter) prepended."""
    names = [p.resolve().name or "source" for p in paths]
    for i, p in enumerate(paths):
        if names.count(names[i]) > 1:
            names[i] = f"{p.resolve().parent.name}-{p.resolve().name}"
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def plan_actor_sources(sequences: Sequence[Path], actors: Sequence[Path]) -> dict[Path, list[Path]]:
    """For each sequence, the actor sources it may use: all of them except the sequence itself.

    Sources are compared by resolved path. A source that is another benchmarked sequence is fine (leave-one-out);
    a sequence left without any source raises ``ValueError`` naming it and the source that was dropped.
    Missing folders raise ``FileNotFoundError``.
    """
    for path in [*sequences, *actors]:
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: folder not found")
    resolved_actors = [(Path(a), Path(a).resolve()) for a in actors]
    plan: dict[Path, list[Path]] = {}
    for seq in sequences:
        own = Path(seq).resolve()
        usable = [a for a, r in resolved_actors if r != own]
        if not usable:
            dropped = ", ".join(str(a) for a, r in resolved_actors if r == own)
            raise ValueError(
                f"actor source {dropped} is the sequence {seq} itself: silhouettes from the benchmarked footage "
                "would leak its people into training. Give --actors from other footage (e.g. DAVIS clips), or "
                "benchmark several sequences at once so each uses the others"
            )
        plan[Path(seq)] = usable
    return plan


def _check_actor_source(path: Path) -> None:
    """Fail early (before minutes of work) on a source without masks."""
    seq = load_sequence(path)  # VideoError names a folder that is not a labelled sequence
    if not any(it.label is not None for it in seq.items):
        where = "groundtruth/" if seq.layout == "cdnet" else "Annotations/"
        raise ValueError(f"actor source {path} has no masks in {where}; actor sources need per-frame person masks")


def site_plate(seq_dir: str | Path, out_path: str | Path, people: str | None = None) -> dict[str, Any]:
    """Write the site plate of a sequence to ``out_path`` (PNG) and say where it came from.

    The sequence's first ``empty_bg*`` image when present (``"given"``), else the motion-masked temporal median
    of its input frames (``"estimated"``; ground truth is not read), with the pixels the registry segmenter
    ``people`` marks as people left out. Returns ``{"path", "source", "detail"}``.
    """
    from dataset_builder.backgrounds import encode_png, estimate_plates, people_masker

    seq = load_sequence(seq_dir)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if seq.empty_backgrounds:
        src = seq.empty_backgrounds[0]
        plate = read_image(src)
        w, h = seq.size
        if plate.shape[:2] != (h, w):
            raise ValueError(
                f"{src}: empty-scene image is {plate.shape[1]}x{plate.shape[0]} but the frames of {seq.root} are "
                f"{w}x{h}; give an empty_bg image of the frame size"
            )
        source, detail = "given", str(src)
    else:
        # estimate_plates on a CDnet folder reads input/ only.
        masker = people_masker(people) if people is not None else None
        plate = estimate_plates(seq.root / "input", 1, people=masker)[0]
        source, detail = "estimated", f"temporal median of the input frames of {seq.root}" + (
            f", people marked by {people} left out" if people is not None else ""
        )
    out_path.write_bytes(encode_png(plate))
    return {"path": str(out_path), "source": source, "detail": detail}


def default_size(plate_hw: tuple[int, int], max_height: int = DEFAULT_MAX_HEIGHT) -> tuple[int, int]:
    """Composite size for a plate of (height, width): the plate's own, scaled down to ``max_height`` rows
    (aspect kept, even sizes) when taller."""
    h, w = plate_hw
    if h <= max_height:
        return h, w
    scale = max_height / h
    return max_height, max(16, int(round(w * scale / 2)) * 2)


# ------------------------------------------------------------------------------------------------ still people


def still_frames(
    seq_dir: str | Path,
    items: Sequence[SequenceItem] | None = None,
    *,
    fps: float = DEFAULT_FPS,
    seconds: float = STILL_SECONDS,
    min_iou: float = STILL_IOU,
) -> list[int]:
    """Frame numbers (among ``items``, default the scored frames) where a person has not moved for ``seconds``.

    Frame t qualifies when its ground-truth foreground (label 255, inside the ROI) is not empty and its IoU with
    the foreground of the reference frame is >= ``min_iou``. The reference is the frame of ``items`` whose number
    is nearest to t - seconds x fps, accepted only if it lies within half the typical spacing of the labelled
    frames (at least 1 frame) from that target, so subsampled sequences work and short clips simply have none.
    """
    seq = load_sequence(seq_dir)
    items = list(seq.scored_items() if items is None else items)
    if len(items) < 2:
        return []
    numbers = np.array([it.number for it in items])
    lag = seconds * fps
    spacing = float(np.median(np.diff(numbers)))
    tolerance = max(1.0, spacing / 2)
    cache: dict[int, np.ndarray] = {}

    def foreground(i: int) -> np.ndarray:
        if i not in cache:
            fg = read_label(items[i].label) == metrics.POSITIVE
            cache[i] = fg & seq.roi if seq.roi is not None else fg
        return cache[i]

    still = []
    for i, item in enumerate(items):
        target = item.number - lag
        j = int(np.argmin(np.abs(numbers - target)))
        if abs(numbers[j] - target) > tolerance or numbers[j] >= item.number:
            continue
        now, before = foreground(i), foreground(j)
        if not now.any():
            continue
        union = np.count_nonzero(now | before)
        if np.count_nonzero(now & before) / union >= min_iou:
            still.append(item.number)
    return still


def frame_confusions(
    seq_dir: str | Path, items: Sequence[SequenceItem], mask_dir: str | Path
) -> dict[int, metrics.Confusion]:
    """Per-frame confusion counts of the masks the evaluator saved (``save_masks=``) against the ground truth.

    Masks are named like the ground-truth files (with a ``.png`` suffix); the sequence's ROI applies.
    """
    seq = load_sequence(seq_dir)
    mask_dir = Path(mask_dir)
    out = {}
    for item in items:
        path = mask_dir / Path(item.label.name).with_suffix(".png")
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no saved mask for frame {item.number}; evaluate with save_masks={mask_dir}"
            )
        pred = read_label(path) > 127
        out[item.number] = metrics.confusion(pred, read_label(item.label), seq.roi)
    return out


def _pooled(counts: Iterable[metrics.Confusion]) -> metrics.Confusion:
    total = metrics.Confusion()
    for c in counts:
        total = total + c
    return total


# ------------------------------------------------------------------------------------------------ baselines


def baseline_unavailable(name: str, fetch: Callable[..., Any] | None = None, log: Log = _stderr) -> str | None:
    """Why baseline ``name`` cannot run here (its downloadable model is missing and fetching it failed), or
    None when it can. Models known to ``humanseg.model_files`` are fetched into the cache when missing
    (``fetch`` defaults to ``model_files.fetch_model``)."""
    from humanseg import model_files

    if name not in model_files.MODELS:
        return None
    if model_files.cached_path(name).is_file():
        return None
    fetch = fetch or model_files.fetch_model
    log(f"{name}: model not cached, fetching it (python -m humanseg models fetch {name})")
    try:
        fetch(name, log=log)
    except Exception as err:  # any fetch failure means: record the baseline as skipped, go on with the rest
        return f"model file missing and could not be fetched ({err}); run `python -m humanseg models fetch {name}`"
    if not model_files.cached_path(name).is_file():
        return f"model file missing after fetching; run `python -m humanseg models fetch {name}`"
    return None


# ------------------------------------------------------------------------------------------------ the run


class _Stages:
    """One tqdm bar over the stages of the whole run (stderr)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="site benchmark", unit="stage", file=sys.stderr, position=0)

    def start(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def write(self, text: str) -> bool:
        if self.bar is None:
            return False
        self.bar.write(text, file=sys.stderr)
        return True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _callback_bar(enabled: bool, desc: str, unit: str) -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
    """(progress(done, total), close) for a nested tqdm bar, or no-ops."""
    if not enabled:
        return (lambda done, total: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, leave=False, position=1)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def _method_name(preset: str) -> str:
    return f"site-{preset}"


_OWNED_FILES = ("results.json", "run.json", "report.md", "f_measure.png")


def _prepare_out(config: SiteBenchmarkConfig, seq_names: list[str]) -> None:
    out = config.out
    owned = [out / n for n in _OWNED_FILES] + [out / "actors"] + [out / n for n in seq_names]
    existing = [p for p in owned if p.exists()]
    if existing and not config.overwrite:
        raise ValueError(
            f"{out} already holds benchmark outputs ({', '.join(p.name for p in existing[:4])}); use a new --out "
            "folder, or pass --overwrite to replace them"
        )
    for p in existing:  # only what this command writes; other files in the folder are left alone
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def run_site_benchmark(
    config: SiteBenchmarkConfig,
    *,
    progress: bool = True,
    log: Log = _stderr,
    fetch: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark (see the module docstring); returns ``{"results": ..., "run": ...}``, the contents
    of ``results.json`` and ``run.json``, after writing every output file.

    ``progress``: one tqdm bar on stderr over all stages (actor extraction, and per sequence: building, training,
    each method's evaluation), with nested bars for the long stages. ``log``: where notes go (default stderr).
    ``fetch``: the model fetcher for baselines with downloadable models (tests pass a fake).
    """
    from dataset_builder.build import build_dataset
    from dataset_builder.perspective import PerspectiveModel
    from dataset_builder.silhouettes import extract_silhouettes
    from humanseg.evaluate import resolve_skip_first
    from humanseg.train import TrainConfig

    t_run = time.perf_counter()
    config.validate()
    plan = plan_actor_sources(config.sequences, config.actors)
    seqs = {s: load_sequence(s) for s in config.sequences}  # fail early on a broken folder
    for s, seq in seqs.items():
        if seq.layout != "cdnet":
            raise ValueError(
                f"{s}: the site benchmark needs a fixed-camera sequence in CDnet layout (input/, groundtruth/)"
            )
    used_actors = list(dict.fromkeys(a for usable in plan.values() for a in usable))
    for a in used_actors:
        _check_actor_source(a)
    seq_names = dict(zip(config.sequences, _unique_names(config.sequences), strict=True))
    actor_names = dict(zip(used_actors, _unique_names(used_actors), strict=True))
    _prepare_out(config, list(seq_names.values()))
    preset = config.model_preset()
    model_method = _method_name(preset)
    methods = [model_method, *config.baselines]

    stages = _Stages(len(used_actors) + len(config.sequences) * (2 + len(methods)), progress)
    say = lambda text: stages.write(text) or log(text)  # noqa: E731 (print above the bar when there is one)
    timings: dict[str, Any] = {"actors": {}, "sequences": {}}
    results: dict[str, dict[str, Any]] = {}
    seq_meta: dict[str, Any] = {}
    unavailable: dict[str, str | None] = {}
    actor_meta: dict[str, Any] = {}
    versions = _versions()

    def write_outputs(complete: bool) -> dict[str, Any]:
        timings["total_s"] = round(time.perf_counter() - t_run, 2)
        run = {
            "format": "humanseg-site-benchmark/1",
            "complete": complete,  # False while sequences are still to come (outputs are rewritten after each)
            "settings": config.to_dict(),
            "model_method": model_method,
            "methods": methods,
            "actors": actor_meta,
            "sequences": seq_meta,
            "skipped": {m: r for m, r in unavailable.items() if r is not None and m in config.baselines},
            "timings": timings,
            "versions": versions,
        }
        return _write_outputs(config, results, run)

    try:
        # --- baselines that need a downloadable model: fetch (or give up on) it before the long work ------
        for method in config.baselines:
            unavailable[method] = baseline_unavailable(method, fetch, say)
            if unavailable[method] is not None:
                say(f"{method} will be skipped: {unavailable[method]}")

        # --- silhouettes, once per source -----------------------------------------------------------------
        actor_dirs: dict[Path, Path] = {}
        for a in used_actors:
            name = actor_names[a]
            stages.start(f"silhouettes {name}")
            t0 = time.perf_counter()
            update, close = _callback_bar(progress, f"silhouettes {name}", "frame")
            try:
                found = extract_silhouettes(a, "masks", config.out / "actors" / name, progress=update)
            except ValueError as err:
                # A source whose people are all cut by the frame border (e.g. CaVignal's legs) gives no usable
                # silhouette: leave it out rather than lose the whole run; refuse below if nothing is left.
                say(f"actors {name}: skipped ({err})")
                actor_meta[name] = {"path": str(a.resolve()), "silhouettes": 0, "skipped": str(err)}
                stages.done()
                continue
            finally:
                close()
            actor_dirs[a] = config.out / "actors" / name
            timings["actors"][name] = round(time.perf_counter() - t0, 2)
            actor_meta[name] = {"path": str(a.resolve()), "silhouettes": len(found), "folder": str(actor_dirs[a])}
            say(f"actors {name}: {len(found)} silhouettes from {a}")
            stages.done()

        for seq_dir in config.sequences:
            name = seq_names[seq_dir]
            seq = seqs[seq_dir]
            work = config.out / name
            t_seq: dict[str, Any] = {}
            usable = [a for a in plan[seq_dir] if a in actor_dirs]
            if not usable:
                raise ValueError(
                    f"{seq_dir}: none of its actor sources gave a silhouette "
                    f"({', '.join(actor_names[a] for a in plan[seq_dir])}); give --actors with whole people in view"
                )
            sources = [actor_names[a] for a in usable]
            dropped = [str(a) for a in config.actors if a.resolve() == seq_dir.resolve()]
            say(
                f"{name}: actor sources {', '.join(sources)}"
                + (f" (left out: itself, {', '.join(dropped)})" if dropped else "")
            )

            # --- plate + dataset --------------------------------------------------------------------------
            stages.start(f"{name}: build")
            t0 = time.perf_counter()
            people = config.plate_people if not seq.empty_backgrounds else None
            if people is not None:
                if people not in unavailable:
                    unavailable[people] = baseline_unavailable(people, fetch, say)
                if unavailable[people] is not None:
                    say(f"{name}: plate estimated without {people} ({unavailable[people]})")
                    people = None
            plate = site_plate(seq_dir, work / "plate.png", people=people)
            if people is None and config.plate_people is not None and plate["source"] == "estimated":
                plate["detail"] += f" ({config.plate_people} unavailable: motion masking only)"
            t_seq["plate_s"] = round(time.perf_counter() - t0, 2)
            say(f"{name}: plate {plate['source']} ({plate['detail']})")
            size = config.size or default_size((seq.size[1], seq.size[0]))
            # An explicit perspective: "auto" would fit silhouettes whose source frames have the plate's size,
            # which here are other cameras' people (e.g. a leave-one-out sequence of the same resolution).
            perspective = config.perspective or PerspectiveModel.default(size[0])
            t0 = time.perf_counter()
            update, close = _callback_bar(progress, f"{name} composites", "img")
            try:
                manifest = build_dataset(
                    [work / "plate.png"], [actor_dirs[a] for a in usable], work / "dataset", config.count,
                    size=size, seed=config.seed, perspective=perspective, val_fraction=VAL_FRACTION, workers=config.workers,
                    progress=update,
                )  # fmt: skip
            finally:
                close()
            t_seq["build_s"] = round(time.perf_counter() - t0, 2)
            stages.done()

            # --- training ---------------------------------------------------------------------------------
            stages.start(f"{name}: train {preset}")
            t0 = time.perf_counter()
            train_cfg = TrainConfig(model=preset, minutes=float(config.minutes), seed=config.seed, device=config.device)
            train_info = _train(train_cfg, work / "dataset", work / "train", progress, f"{name} train", say)
            t_seq["train_s"] = round(time.perf_counter() - t0, 2)
            stages.done()

            # --- evaluation -------------------------------------------------------------------------------
            skip = resolve_skip_first(seq, config.skip_first)
            scored = seq.scored_items(skip_first=skip)
            still = still_frames(seq_dir, scored, fps=config.fps)
            still_items = [it for it in scored if it.number in set(still)]
            rows: dict[str, Any] = {}
            t_seq["eval_s"] = {}
            for method in methods:
                stages.start(f"{name}: {method}")
                t0 = time.perf_counter()
                if unavailable.get(method) is not None:
                    rows[method] = {"status": "skipped", "reason": unavailable[method], "f_measure": None}
                else:
                    rows[method] = _evaluate(
                        seq_dir, method, model_method, train_info["checkpoint"], work / "plate.png", skip,
                        work / "masks" / method, still_items, progress, config.device,
                    )  # fmt: skip
                t_seq["eval_s"][method] = round(time.perf_counter() - t0, 2)
                stages.done()
            results[name] = rows

            # --- montage ----------------------------------------------------------------------------------
            ran = [m for m in methods if rows[m].get("status") == "ok"]
            montage(seq_dir, scored, {m: work / "masks" / m for m in ran}, work / "montage.png",
                    rows=config.montage_frames)  # fmt: skip
            timings["sequences"][name] = t_seq
            seq_meta[name] = {
                "path": str(seq_dir.resolve()),
                "frame_wh": list(seq.size),
                "plate": plate,
                "actor_sources": sources,
                "actor_sources_left_out": dropped,
                "dataset": {
                    "path": str(manifest.parent),
                    "size": list(size),
                    "count": config.count,
                    "perspective": json.loads(manifest.read_text())["params"]["perspective"],
                },
                "train": train_info,
                "skip_first": skip,
                "scored_frames": len(scored),
                "still_frames": still,
            }
            if len(config.sequences) > 1:
                write_outputs(complete=False)  # a crash in a later sequence keeps the finished ones
    finally:
        stages.close()

    return write_outputs(complete=True)


def _write_outputs(config: SiteBenchmarkConfig, results: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """results.json, run.json, f_measure.png and report.md from what has been scored so far."""
    from humanseg.plots import bar_chart

    _write_json(config.out / "results.json", results)
    _write_json(config.out / "run.json", run)
    if results:
        chart_values = {s: {m: r["f_measure"] for m, r in rows.items() if r.get("f_measure") is not None}
                        for s, rows in results.items()}  # fmt: skip
        bar_chart(
            chart_values, config.out / "f_measure.png", title="F-measure per sequence and method", ylabel="F-measure"
        )
        (config.out / "report.md").write_text(report_markdown(results, run))
    return {"results": results, "run": run}


def _train(config: Any, dataset: Path, out: Path, progress: bool, desc: str, say: Log) -> dict[str, Any]:
    """Train to the budget; returns the checkpoint used for scoring and what training reported."""
    from humanseg.train import train

    bar = None
    if progress:
        from tqdm import tqdm

        budget = int(round(config.minutes * 60))
        bar = tqdm(total=budget, desc=desc, unit="s", file=sys.stderr, leave=False, position=1,
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s {postfix}")  # fmt: skip
    last: Any = None
    device = ""
    best_val: float | None = None
    try:
        for event in train(config, dataset, out, progress=progress):
            last = event
            device = event.device or device
            if event.kind == "val" and event.val_f is not None:
                best_val = max(best_val or 0.0, float(event.val_f))
            if bar is not None:
                bar.update(min(int(event.elapsed_s), bar.total) - bar.n)
                if event.loss is not None:
                    bar.set_postfix_str(f"step {event.step} loss {event.loss:.3f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    checkpoint = out / "best.pt"
    if not checkpoint.is_file():
        checkpoint = out / "last.pt"
    if not checkpoint.is_file():
        raise RuntimeError(f"training into {out} finished without writing best.pt or last.pt")
    info = {
        "checkpoint": str(checkpoint),
        "steps": last.step if last is not None else 0,
        "epochs": round(last.epoch, 3) if last is not None else 0.0,
        "elapsed_s": round(last.elapsed_s, 2) if last is not None else 0.0,
        "device": device,
        "stopped": last.message if last is not None else "",
        "best_val_f": best_val,
    }
    say(f"{out.parent.name}: trained {info['steps']} steps ({info['epochs']} epochs) in {info['elapsed_s']} s on "
        f"{device}; {info['stopped']}")  # fmt: skip
    return info


def _evaluate(
    seq_dir: Path,
    method: str,
    model_method: str,
    checkpoint: str,
    plate: Path,
    skip: bool,
    mask_dir: Path,
    still_items: list[SequenceItem],
    progress: bool,
    device: str | None,
) -> dict[str, Any]:
    from humanseg.evaluate import evaluate_sequence
    from humanseg.segmenters import accepted_options, create_segmenter

    if method == model_method:
        seg = create_segmenter("segnet", checkpoint=checkpoint, device=device)
    else:
        seg = create_segmenter(method, plate=str(plate) if "plate" in accepted_options(method) else None)
    try:
        row = evaluate_sequence(seq_dir, seg, skip_first=skip, save_masks=mask_dir, progress=progress)
    finally:
        seg.close()
    row["segmenter"] = method
    if method == model_method:
        row["checkpoint"] = checkpoint
    elif "plate" in accepted_options(method):
        row["plate"] = str(plate)
    counts = frame_confusions(seq_dir, still_items, mask_dir)
    still = metrics.scores(_pooled(counts.values())) if counts else None
    row["still_f_measure"] = still["f_measure"] if still else None
    row["still_frames"] = len(counts)
    row["status"] = "ok"
    return row


# ------------------------------------------------------------------------------------------------ pictures


def label_image(label: np.ndarray, roi: np.ndarray | None = None) -> np.ndarray:
    """A ground-truth label as RGB: person white, shadow dark grey, unscored (unknown, outside ROI) mid grey."""
    out = np.zeros((*label.shape, 3), np.uint8)
    out[label == 255] = 255
    out[label == 50] = 60
    unscored = (label == 85) | (label == 170)
    if roi is not None:
        unscored |= ~roi
    out[unscored] = 128
    return out


def montage(
    seq_dir: str | Path,
    items: Sequence[SequenceItem],
    mask_dirs: dict[str, Path],
    out_path: str | Path,
    *,
    rows: int = 4,
    tile_width: int = 256,
    min_tile_width: int = 160,
) -> Path:
    """A PNG of ``rows`` frames (evenly spread over those with ground-truth foreground): columns frame | ground
    truth | each method's saved mask, captioned with the method and its F-measure on that frame. Tiles are
    ``min_tile_width``..``tile_width`` pixels wide."""
    import cv2

    from humanseg.render import grid, mask_image

    seq = load_sequence(seq_dir)
    items = list(items)
    with_person = [it for it in items if (read_label(it.label) == metrics.POSITIVE).any()]
    pool = with_person or items
    picks = [pool[i] for i in np.unique(np.linspace(0, len(pool) - 1, min(rows, len(pool))).round().astype(int))]
    tiles, captions = [], []
    for item in picks:
        frame, label = seq.read(item)
        h, w = frame.shape[:2]
        # grid resizes every tile to the first one's size: big frames shrink, tiny ones grow so captions fit.
        width = min(max(w, min_tile_width), tile_width)
        if width != w:
            size = (width, max(1, round(h * width / w)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if width < w else cv2.INTER_NEAREST)
        tiles += [frame, label_image(label, seq.roi)]
        captions += [f"frame {item.number}", "ground truth"]
        for method, folder in mask_dirs.items():
            pred = read_label(Path(folder) / Path(item.label.name).with_suffix(".png")) > 127
            f = metrics.scores(metrics.confusion(pred, label, seq.roi))["f_measure"]
            tiles.append(mask_image(pred))
            captions.append(f"{method} F={f:.2f}")
    image = grid(tiles, captions, columns=2 + len(mask_dirs))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(image).save(out_path)
    return out_path


# ------------------------------------------------------------------------------------------------ report

_COLUMNS = (
    ("f_measure", "F-measure", "{:.3f}"),
    ("iou", "IoU", "{:.3f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("still_f_measure", "still F", "{:.3f}"),
    ("flicker", "flicker", "{:.4f}"),
    ("ms_per_frame", "ms/frame", "{:.1f}"),
)


def _table(rows: dict[str, dict[str, Any]], extra: Callable[[str, dict[str, Any]], str] | None = None) -> list[str]:
    head = ["method"] + [t for _, t, _ in _COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(_COLUMNS)]
    best = _winner(rows)
    for method, r in rows.items():
        label = f"**{method}**" if method == best else method
        if r.get("status") == "skipped":
            lines.append(f"| {label} | skipped: {r.get('reason', '')} |" + " |" * (len(_COLUMNS) - 1))
            continue
        cells = [format_cell(r.get(k), f) for k, _, f in _COLUMNS]
        if extra is not None:
            cells[4] = extra(method, r)
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return lines


def _winner(rows: dict[str, dict[str, Any]]) -> str | None:
    ran = {m: r["f_measure"] for m, r in rows.items() if r.get("f_measure") is not None}
    return max(ran, key=ran.get) if ran else None


def mean_over_sequences(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method, the mean of each table metric over the sequences where it ran (``sequences`` = how many)."""
    methods = list(dict.fromkeys(m for rows in results.values() for m in rows))
    out = {}
    for m in methods:
        ran = [rows[m] for rows in results.values() if m in rows and rows[m].get("status") == "ok"]
        row: dict[str, Any] = {"status": "ok" if ran else "skipped", "sequences": len(ran)}
        if not ran:
            row["reason"] = "did not run on any sequence"
        for key, _, _ in _COLUMNS:
            vals = [r[key] for r in ran if r.get(key) is not None]
            row[key] = float(np.mean(vals)) if vals else None
        row["still_frames"] = sum(r.get("still_frames") or 0 for r in ran)
        out[m] = row
    return out


def report_markdown(results: dict[str, dict[str, Any]], run: dict[str, Any]) -> str:
    """The human-readable report: settings, a table per sequence with its winner, the mean over sequences."""
    from humanseg.models import get_preset

    s = run["settings"]
    t = run["timings"]
    size = f"{s['size'][0]}x{s['size'][1]}" if s.get("size") else "plate size (at most 480 rows)"
    skip = {None: "auto", True: "yes", False: "no"}[s["skip_first"]]
    lines = [
        "# Site benchmark",
        "",
        f"Site model `{run['model_method']}` (preset `{s['model']}`), trained per sequence on composites of the "
        "site plate and actor silhouettes from other footage, against generic baselines, scored on the real "
        "frames with the CDnet protocol (F-measure etc. from pixel counts summed over the scored frames).",
        "",
        "## Settings",
        "",
        "| setting | value |",
        "|---|---|",
        f"| training budget | {s['minutes']:g} min per sequence (dataset building and scoring come on top) |",
        f"| model preset | {s['model']} |",
        "| site model output | "
        + ("network + plate completion (plate-difference blobs it covers for at least a quarter are added) |"
           if get_preset(s["model"]).needs_plate else "network |"),  # fmt: skip
        "| estimated plates | temporal median of the input frames, "
        + (f"people marked by {s['plate_people']} left out |" if s.get("plate_people") else "motion masking only |"),
        f"| composites | {s['count']} per sequence, size {size}, seed {s['seed']} |",
        f"| perspective | {s['perspective'] or 'generic surveillance view (dataset_builder default)'} |",
        f"| baselines | {', '.join(s['baselines']) or 'none'} |",
        f"| skip first scored frame | {skip} |",
        f"| still person | GT foreground IoU >= {STILL_IOU} with the frame {STILL_SECONDS:g} s earlier "
        f"at {s['fps']:g} fps |",
        "| actor sources | "
        + ", ".join(f"{n} ({a['silhouettes']} silhouettes)" for n, a in run["actors"].items())
        + " |",
        f"| device | {run['versions'].get('device', '')} |",
        f"| total time | {t['total_s'] / 60:.1f} min |",
        "",
        "Columns: F-measure, IoU, precision, recall over all scored frames; *still F*: F-measure on the frames "
        "where a person has not moved for 2 s (frame count in brackets); *flicker*: mean mask change on pixels "
        "whose input did not change (lower is steadier); ms/frame: segmentation time only. Bold: the best "
        "F-measure.",
        "",
    ]
    for name, rows in results.items():
        meta = run["sequences"][name]
        tt = t["sequences"][name]
        winner = _winner(rows)
        lines += [
            f"## {name}",
            "",
            f"- footage: `{meta['path']}` ({meta['frame_wh'][0]}x{meta['frame_wh'][1]}), {meta['scored_frames']} scored "
            f"frames (first skipped: {'yes' if meta['skip_first'] else 'no'}), {len(meta['still_frames'])} with a "
            "still person",
            f"- plate: {meta['plate']['source']} ({meta['plate']['detail']})",
            f"- actor sources: {', '.join(meta['actor_sources'])}"
            + (f" (left out, being this sequence: {', '.join(meta['actor_sources_left_out'])})"
               if meta["actor_sources_left_out"] else ""),
            f"- training: {meta['train']['steps']} steps, {meta['train']['epochs']} epochs in "
            f"{meta['train']['elapsed_s']:.0f} s on {meta['train']['device']}",
            f"- time: plate {tt['plate_s']:.1f} s, dataset {tt['build_s']:.1f} s, training {tt['train_s']:.1f} s, "
            f"scoring {sum(tt['eval_s'].values()):.1f} s",
            "",
            *_table(rows, lambda m, r: f"{format_cell(r.get('still_f_measure'), '{:.3f}')} ({r.get('still_frames', 0)})"),
            "",
            f"Winner: **{winner}** (F-measure {rows[winner]['f_measure']:.3f})." if winner else "No method ran.",
            "",
            f"![montage of {name}]({name}/montage.png)",
            "",
        ]  # fmt: skip
    if len(results) > 1:
        means = mean_over_sequences(results)
        lines += [
            f"## Mean over {len(results)} sequences",
            "",
            *_table(means, lambda m, r: f"{format_cell(r.get('still_f_measure'), '{:.3f}')} ({r.get('still_frames', 0)})"),
            "",
            "Winners per sequence: " + ", ".join(f"{n}: {_winner(rows)}" for n, rows in results.items()) + ".",
            "",
        ]
    lines += ["![F-measure per sequence and method](f_measure.png)", ""]
    if run["skipped"]:
        lines += ["## Skipped baselines", ""] + [f"- {m}: {why}" for m, why in run["skipped"].items()] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ helpers


def _versions() -> dict[str, str]:
    import cv2
    import torch

    from humanseg import __version__

    out = {
        "humanseg": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "cpus": str(os.cpu_count()),
        "device": f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu",
    }
    try:
        from importlib.metadata import version

        out["mediapipe"] = version("mediapipe")
    except Exception:  # not installed: leave it out
        pass
    return out


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


__all__ = [
    "DEFAULT_BASELINES",
    "SiteBenchmarkConfig",
    "baseline_unavailable",
    "default_size",
    "frame_confusions",
    "label_image",
    "mean_over_sequences",
    "montage",
    "parse_size",
    "parse_skip_first",
    "plan_actor_sources",
    "report_markdown",
    "run_site_benchmark",
    "site_plate",
    "still_frames",
]
