"""The one-command site benchmark: build a site dataset, train a model on it, score it against the baselines.

For each labelled sequence of a fixed camera (CDnet layout), with actor silhouettes taken from other footage
(``--actors``) and/or harvested from the sequence's own input frames with its plate (``--site-actors``, the app's
path; never its ground truth):

1. the site plate: the sequence's ``empty_bg*.jpg`` when present, else estimated from its own input frames
   with the people a generic segmenter finds left out (``dataset_builder.backgrounds.estimate_plates``,
   ``plate_people``; the ground truth is never looked at);
2. the site's scale (unless ``--no-site-scale``): person height and perspective fitted from plate-difference blobs
   of its input frames (``humanseg.site.fit_clip_scale``, the rule the app uses too), giving the working scale
   (``humanseg.scale``); where the network then runs on tiles, the composites are windows of the model's input
   size of the plate at that scale;
3. a composite dataset of that plate and the actors' silhouettes (``dataset_builder.build.build_dataset``);
4. a model trained on it for at most the time budget (``humanseg.train.train``; composite validation only, so
   the sequence's ground truth never chooses the checkpoint);
5. the trained model (with plate completion for plate models, see ``humanseg.segmenters.segnet``) and the
   baselines scored on the sequence's real frames with the CDnet protocol
   (``humanseg.evaluate.evaluate_sequence``), plus the F-measure on the frames where a person stands still.

Silhouettes are cut from each ``--actors`` source once (method ``masks``) into ``OUT/actors/<name>/``. A source
that is the sequence itself is refused; with several sequences, a source that is one of the other sequences is
allowed (leave-one-out). ``--site-actors`` silhouettes go to ``OUT/<seq>/site-actors/`` (method ``plate``).

Outputs in ``OUT``: ``results.json`` (``{sequence: {method: metrics}}``; a baseline that could not run has
``status: "skipped"`` and a ``reason``), ``run.json`` (settings, sources, timings, versions; ``complete`` is false
while later sequences are still running, as the outputs are rewritten after each sequence), ``report.md``,
``f_measure.png`` and per sequence ``<seq>/montage.png``, ``<seq>/plate.png``, ``<seq>/dataset/``,
``<seq>/train/`` (``best.pt``, ``last.pt``, curves) and ``<seq>/masks/<method>/``.

"Standing still" frames come from the ground truth: frame t counts when it has foreground and the foreground
mask at the labelled frame nearest to t - 2 s overlaps it with IoU >= 0.8 (see
:func:`humanseg.evaluate.still_frames`); its F-measure pools the evaluator's per-frame counts of those frames.

The parts live by job: the plate in ``dataset_builder.backgrounds.site_plate``, the still-person rule in
``humanseg.evaluate``, the montage in ``humanseg.render``, the report files in ``humanseg.site_report``, the
command line in ``humanseg.cli.site_benchmark``; this module holds the settings and runs the stages in order.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from humanseg import metrics
from humanseg.evaluate import DEFAULT_FPS, evaluate_sequence, resolve_skip_first, still_frames
from humanseg.maintained_plate import DEFAULT_UPDATE_S
from humanseg.progress import bar
from humanseg.render import MontageRow, montage, montage_picks
from humanseg.segmenters import REGISTRY, Segmenter, capabilities, create_segmenter
from humanseg.site_report import OUTPUT_FILES, versions, write_outputs
from humanseg.sizes import parse_size
from humanseg.video import Sequence as LabelledSequence
from humanseg.video import SequenceItem, load_sequence

if TYPE_CHECKING:
    from humanseg.site import CompositeScale

#: Baselines run by default, in table order.
DEFAULT_BASELINES: tuple[str, ...] = ("mog2", "knn", "gsoc", "plate-diff", "mediapipe")
#: Composites built per sequence by default.
DEFAULT_COUNT = 1500
#: Default composites are at most this tall (pixels): training resizes to the model's input size anyway.
DEFAULT_MAX_HEIGHT = 480
# Person segmenter that keeps people out of an estimated plate (MediaPipe finds standing, near people well).
DEFAULT_PLATE_PEOPLE = "mediapipe"
#: Share of the composites held out for validation (the last ones; it picks best.pt, never the real footage).
VAL_FRACTION = 0.1

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def baseline_names() -> list[str]:
    """Registry backends that can run as a baseline: every one but the trained site model, in registry order."""
    return [n for n in REGISTRY if not capabilities(n).trained]


# ------------------------------------------------------------------------------------------------ settings


@dataclass
class SiteBenchmarkConfig:
    """Settings of one benchmark run (units in the comments); saved in ``run.json``."""

    sequences: list[Path]  # labelled sequence folders (CDnet layout) of fixed cameras
    actors: list[Path]  # actor sources with masks (DAVIS or CDnet layout); may be empty with site_actors
    out: Path  # output folder
    minutes: float  # training time budget per sequence, minutes (building and scoring come on top)
    model: str | None = None  # model preset; None = humanseg.train.TrainConfig's default
    count: int = DEFAULT_COUNT  # composites per sequence
    size: tuple[int, int] | None = None  # composite (height, width) px; None = the plate's, capped at 480 rows
    seed: int = 0  # dataset, model init and batch order
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    skip_first: bool | None = None  # drop the first scored frame; None = the evaluator's automatic rule
    fps: float = DEFAULT_FPS  # frame rate for the still-person rule and the plate update (image folders carry none)
    # The site model and plate-diff compare with the plate as captured (True) or one that follows the site
    # (humanseg.maintained_plate), updated with the time constant plate_update_s seconds (0 = light only).
    fixed_plate: bool = False
    plate_update_s: float = DEFAULT_UPDATE_S
    # Person height vs feet row, "ROW:HEIGHT,ROW:HEIGHT" (composite pixels; frame pixels when tiled); None = the
    # site's own, fitted from plate-difference blobs of its input frames (site_scale), else dataset_builder's
    # generic surveillance view. Never fitted to actor silhouettes: those come from other cameras.
    perspective: str | None = None
    # Fit each sequence's person height from its own input frames and plate (humanseg.site.fit_clip_scale): its
    # perspective, its working scale, and input-sized windowed composites when the network runs on tiles.
    site_scale: bool = True
    # Also harvest actor silhouettes from each sequence's own input frames with its plate (the app's default
    # path; never its ground truth), beside the --actors sources.
    site_actors: bool = False
    # CompositeConfig fields set for this run (dataset_builder.composite.parse_overrides): one training lever
    # changed on its own, e.g. {"border_cut_fraction": 0.0}; empty = the builder's defaults.
    composite: dict[str, Any] = field(default_factory=dict)
    # Registry segmenter that marks people in the frames an estimated plate is made from (a person standing
    # still for most of the clip stays in a plain median); None = motion masking only. Unused for a given plate.
    plate_people: str | None = DEFAULT_PLATE_PEOPLE
    montage_frames: int = 4  # rows of the montage
    workers: int = field(default_factory=lambda: max(1, min(8, os.cpu_count() or 1)))  # dataset build processes
    device: str | None = None  # training/inference device: "cpu", "cuda" or None (CUDA when available)
    drift: bool = False  # also score the drift probe (humanseg.drift) with maintained and fixed plates; run.json
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
        from humanseg.train import TrainConfig

        if not self.sequences:
            raise ValueError("give at least one sequence folder (SEQ_DIR)")
        if not self.actors and not self.site_actors:
            raise ValueError(
                "give at least one actor source with --actors (a DAVIS or CDnet folder with masks), or --site-actors "
                "to harvest silhouettes from each sequence's own frames"
            )
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
        if self.size is not None:
            parse_size(self.size, minimum=16)  # ValueError naming the size and the least one
        baselines = baseline_names()
        unknown = [b for b in self.baselines if b not in baselines]
        if unknown:
            raise ValueError(
                f"unknown baseline(s) {', '.join(unknown)}; valid: {', '.join(baselines)} (the site model always runs)"
            )
        if not self.fps > 0:
            raise ValueError(f"--fps must be > 0, got {self.fps}")
        if not self.plate_update_s >= 0:
            raise ValueError(f"--plate-update-s must be >= 0 seconds, got {self.plate_update_s}")
        if self.montage_frames < 1:
            raise ValueError(f"montage_frames must be >= 1, got {self.montage_frames}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.plate_people is not None and self.plate_people not in baselines:
            raise ValueError(f"unknown --plate-people {self.plate_people!r}; valid: {', '.join(baselines)}, or none")
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or None (automatic), got {self.device!r}")
        self.composite_config()  # ValueError naming an unknown field or a value out of its range

    def composite_config(self) -> Any:
        """The builder's :class:`~dataset_builder.composite.CompositeConfig` with this run's ``composite`` fields."""
        from dataset_builder.composite import CompositeConfig

        names = {f.name for f in fields(CompositeConfig)}
        unknown = sorted(set(self.composite) - names)
        if unknown:
            raise ValueError(f"unknown composite setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return replace(CompositeConfig(), **self.composite)

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


def plan_actor_sources(
    sequences: Sequence[Path], actors: Sequence[Path], *, site_actors: bool = False
) -> dict[Path, list[Path]]:
    """For each sequence, the actor sources it may use: all of them except the sequence itself.

    Sources are compared by resolved path. A source that is another benchmarked sequence is fine (leave-one-out);
    a sequence left without any source raises ``ValueError`` naming it and the source that was dropped, unless
    ``site_actors`` (its own harvested silhouettes are then its actors). Missing folders raise
    ``FileNotFoundError``.
    """
    for path in [*sequences, *actors]:
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: folder not found")
    resolved_actors = [(Path(a), Path(a).resolve()) for a in actors]
    plan: dict[Path, list[Path]] = {}
    for seq in sequences:
        own = Path(seq).resolve()
        usable = [a for a, r in resolved_actors if r != own]
        if not usable and not site_actors:
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


def default_size(plate_hw: tuple[int, int], max_height: int = DEFAULT_MAX_HEIGHT) -> tuple[int, int]:
    """Composite size for a plate of (height, width): the plate's own, scaled down to ``max_height`` rows
    (aspect kept, even sizes) when taller."""
    h, w = plate_hw
    if h <= max_height:
        return h, w
    scale = max_height / h
    return max_height, max(16, int(round(w * scale / 2)) * 2)


# ------------------------------------------------------------------------------------------------ baselines


def baseline_unavailable(name: str, fetch: Callable[..., Any] | None = None, log: Log = _stderr) -> str | None:
    """Why baseline ``name`` cannot run here (its downloadable model is missing and fetching it failed), or
    None when it can. Models known to ``humanseg.model_files`` are fetched into the cache when missing
    (``fetch`` defaults to ``model_files.fetch_model``)."""
    from humanseg import model_files

    if name not in model_files.MODELS:
        from humanseg.segmenters import get_class

        # Backends whose model file the user supplies (never downloaded) say themselves why they cannot run.
        check = getattr(get_class(name), "unavailable_reason", None)
        return check() if check is not None else None
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


class _Console:
    """One bar over the stages of the whole run (stderr) and the notes: printed above the bars when they are shown,
    else given to ``log``. The long stages add their own bars (``progress=console.enabled``)."""

    def __init__(self, total: int, enabled: bool, log: Log) -> None:
        self.enabled = enabled
        self.log = log
        self.stages = bar(total=total, desc="site benchmark", unit="stage", enabled=enabled, position=0)

    def say(self, text: str) -> None:
        if self.enabled:
            self.stages.write(text, file=sys.stderr)
        else:
            self.log(text)

    def start(self, text: str) -> None:
        self.stages.set_postfix_str(text, refresh=False)  # shown at the next redraw, not one line per stage

    def done(self) -> None:
        self.stages.update(1)


@dataclass
class _Record:
    """What ``results.json`` and ``run.json`` are made of, filled in stage by stage."""

    config: SiteBenchmarkConfig
    model_method: str
    methods: list[str]
    started: float  # time.perf_counter() at the start of the run
    versions: dict[str, str] = field(default_factory=versions)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    sequences: dict[str, Any] = field(default_factory=dict)
    actors: dict[str, Any] = field(default_factory=dict)
    unavailable: dict[str, str | None] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=lambda: {"actors": {}, "sequences": {}})

    def write(self, complete: bool) -> dict[str, Any]:
        """Write the output files; ``complete`` is False while sequences are still to come."""
        self.timings["total_s"] = round(time.perf_counter() - self.started, 2)
        run = {
            "format": "humanseg-site-benchmark/1",
            "complete": complete,
            "settings": self.config.to_dict(),
            "model_method": self.model_method,
            "methods": self.methods,
            "actors": self.actors,
            "sequences": self.sequences,
            "skipped": {m: r for m, r in self.unavailable.items() if r is not None and m in self.config.baselines},
            "timings": self.timings,
            "versions": self.versions,
        }
        return write_outputs(self.config.out, self.results, run)


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
    started = time.perf_counter()
    config.validate()
    plan = plan_actor_sources(config.sequences, config.actors, site_actors=config.site_actors)
    seqs = _load_sequences(config.sequences)
    used_actors = list(dict.fromkeys(a for usable in plan.values() for a in usable))
    for a in used_actors:
        _check_actor_source(a)
    seq_names = dict(zip(config.sequences, _unique_names(config.sequences), strict=True))
    actor_names = dict(zip(used_actors, _unique_names(used_actors), strict=True))
    _prepare_out(config, list(seq_names.values()))
    from humanseg.segmenters.segnet import site_label

    model_method = site_label(config.model_preset())
    record = _Record(config, model_method, [model_method, *config.baselines], started=started)
    console = _Console(len(used_actors) + len(config.sequences) * (2 + len(record.methods)), progress, log)
    with console.stages:
        # Baselines that need a downloadable model: fetch it (or give up on it) before the long work.
        for method in config.baselines:
            record.unavailable[method] = baseline_unavailable(method, fetch, console.say)
            if record.unavailable[method] is not None:
                console.say(f"{method} will be skipped: {record.unavailable[method]}")
        actor_dirs = _cut_silhouettes(config, used_actors, actor_names, record, console)
        for seq_dir in config.sequences:
            usable = [a for a in plan[seq_dir] if a in actor_dirs]
            if not usable and not config.site_actors:
                raise ValueError(
                    f"{seq_dir}: none of its actor sources gave a silhouette "
                    f"({', '.join(actor_names[a] for a in plan[seq_dir])}); give --actors with whole people in view"
                )
            sources = {actor_names[a]: actor_dirs[a] for a in usable}
            _benchmark_sequence(config, seq_dir, seqs[seq_dir], seq_names[seq_dir], sources, record, console, fetch)
            if len(config.sequences) > 1:
                record.write(complete=False)  # a crash in a later sequence keeps the finished ones
    return record.write(complete=True)


def _load_sequences(paths: Sequence[Path]) -> dict[Path, LabelledSequence]:
    """Every sequence loaded up front, so a broken folder fails before any work."""
    seqs = {s: load_sequence(s) for s in paths}
    for s, seq in seqs.items():
        if seq.layout != "cdnet":
            raise ValueError(
                f"{s}: the site benchmark needs a fixed-camera sequence in CDnet layout (input/, groundtruth/)"
            )
    return seqs


def _prepare_out(config: SiteBenchmarkConfig, seq_names: list[str]) -> None:
    out = config.out
    owned = [out / n for n in OUTPUT_FILES] + [out / "actors"] + [out / n for n in seq_names]
    existing = [p for p in owned if p.exists()]
    if existing and not config.overwrite:
        raise ValueError(
            f"{out} already holds benchmark outputs ({', '.join(p.name for p in existing[:4])}); use a new --out "
            "folder, or pass --overwrite to replace them"
        )
    for p in existing:  # only what this command writes; other files in the folder are left alone
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _cut_silhouettes(
    config: SiteBenchmarkConfig, actors: list[Path], names: dict[Path, str], record: _Record, console: _Console
) -> dict[Path, Path]:
    """Silhouettes of every actor source, once each, into ``OUT/actors/<name>/``; returns the folders made."""
    from dataset_builder.silhouettes import extract_silhouettes

    folders: dict[Path, Path] = {}
    for a in actors:
        name = names[a]
        console.start(f"silhouettes {name}")
        t0 = time.perf_counter()
        try:
            found = extract_silhouettes(a, "masks", config.out / "actors" / name, progress=console.enabled)
        except ValueError as err:
            # A source whose people are all cut by the frame border (e.g. CaVignal's legs) gives no usable
            # silhouette: leave it out rather than lose the whole run; the sequence refuses if nothing is left.
            console.say(f"actors {name}: skipped ({err})")
            record.actors[name] = {"path": str(a.resolve()), "silhouettes": 0, "skipped": str(err)}
            console.done()
            continue
        folders[a] = config.out / "actors" / name
        record.timings["actors"][name] = round(time.perf_counter() - t0, 2)
        record.actors[name] = {"path": str(a.resolve()), "silhouettes": len(found), "folder": str(folders[a])}
        console.say(f"actors {name}: {len(found)} silhouettes from {a}")
        console.done()
    return folders


def _benchmark_sequence(
    config: SiteBenchmarkConfig,
    seq_dir: Path,
    seq: LabelledSequence,
    name: str,
    sources: dict[str, Path],
    record: _Record,
    console: _Console,
    fetch: Callable[..., Any] | None,
) -> None:
    """Plate, composites, training, scoring and montage of one sequence, recorded in ``record``."""
    work = config.out / name
    dropped = [str(a) for a in config.actors if a.resolve() == seq_dir.resolve()]
    console.say(
        f"{name}: actor sources {', '.join(sources) or 'none from --actors'}"
        + (" and its own frames (--site-actors)" if config.site_actors else "")
        + (f" (left out: itself, {', '.join(dropped)})" if dropped else "")
    )
    timing: dict[str, Any] = {}

    console.start(f"{name}: build")
    t0 = time.perf_counter()
    plate = _plate(config, seq_dir, seq, work / "plate.png", record, console, fetch)
    timing["plate_s"] = round(time.perf_counter() - t0, 2)
    if config.site_actors:
        t0 = time.perf_counter()
        sources = sources | _harvest_site_actors(config, seq_dir, work, name, bool(sources), record, console)
        timing["site_actors_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    scale = _site_scale(config, seq_dir, work / "plate.png", name, console)
    timing["scale_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    dataset = _build(config, seq, work, list(sources.values()), scale, console)
    timing["build_s"] = round(time.perf_counter() - t0, 2)
    console.done()

    console.start(f"{name}: train {config.model_preset()}")
    t0 = time.perf_counter()
    train_info = _train(config, work / "dataset", work / "train", console)
    timing["train_s"] = round(time.perf_counter() - t0, 2)
    console.done()

    skip = resolve_skip_first(seq, config.skip_first)
    scored = seq.scored_items(skip_first=skip)
    still = still_frames(seq_dir, scored, fps=config.fps)
    picks = montage_picks(scored, config.montage_frames)
    rows: dict[str, Any] = {}
    masks: dict[str, dict[int, tuple[np.ndarray, float]]] = {}
    timing["eval_s"] = {}
    for method in record.methods:
        console.start(f"{name}: {method}")
        t0 = time.perf_counter()
        if record.unavailable.get(method) is not None:
            rows[method] = {"status": "skipped", "reason": record.unavailable[method], "f_measure": None}
        else:
            made = _segmenter(method, record.model_method, train_info["checkpoint"], work / "plate.png", config)
            rows[method], masks[method] = _score(
                seq_dir, made, skip, work / "masks" / method, still, [it.number for it in picks], console.enabled
            )
        timing["eval_s"][method] = round(time.perf_counter() - t0, 2)
        console.done()
    record.results[name] = rows
    drift = (
        _drift(config, seq_dir, seq, work, record, train_info["checkpoint"], skip, console) if config.drift else None
    )

    _save_montage(seq, picks, rows, masks, work / "montage.png")
    record.timings["sequences"][name] = timing
    record.sequences[name] = {
        "path": str(seq_dir.resolve()),
        "frame_wh": list(seq.size),
        "plate": plate,
        "actor_sources": list(sources),
        "actor_sources_left_out": dropped,
        "scale": scale.to_dict() if scale is not None else None,
        "scale_note": scale.describe() if scale is not None else "off (--no-site-scale): composites as before",
        "dataset": dataset,
        "train": train_info,
        "skip_first": skip,
        "scored_frames": len(scored),
        "still_frames": still,
    } | ({"drift": drift} if drift is not None else {})


#: The drift probe's methods: (label, registry name, follow_plate), the site model's label filled in per run.
DRIFT_METHODS = (("{site}", "segnet", True), ("{site} fixed plate", "segnet", False),
                 ("plate-diff", "plate-diff", True), ("plate-diff fixed plate", "plate-diff", False), ("mog2", "mog2", None))  # fmt: skip


def _drift(
    config: SiteBenchmarkConfig,
    seq_dir: Path,
    seq: LabelledSequence,
    work: Path,
    record: _Record,
    checkpoint: str,
    skip: bool,
    console: _Console,
) -> dict[str, Any]:
    """:func:`drift_probe` with the run's settings."""
    return drift_probe(seq_dir, seq, work, checkpoint, record.model_method, fps=config.fps,
                       plate_update_s=config.plate_update_s, device=config.device, skip_first=skip,
                       progress=console.enabled, say=console.say)  # fmt: skip


def drift_probe(
    seq_dir: Path,
    seq: LabelledSequence,
    work: Path,
    checkpoint: str,
    site_method: str,
    *,
    fps: float = DEFAULT_FPS,
    plate_update_s: float = DEFAULT_UPDATE_S,
    device: str | None = None,
    skip_first: bool | None = None,
    progress: bool = False,
    say: Log = _stderr,
) -> dict[str, Any]:
    """F of the drift variants (:mod:`humanseg.drift`; the plate as captured, the truth unchanged) for the site
    model (``checkpoint``, labelled ``site_method``) and plate-diff (plate ``work/plate.png``) with maintained and
    fixed plates, and MOG2; for the moved object also the seconds (at ``fps``) until it is last marked after it
    appears. The drifted copies are made in ``work/drift`` and removed. Not stages of the benchmark's overall bar
    (its count is the same with and without --drift); each scoring has its own bar. ``bench/drift_of_run.py``
    calls it on the checkpoints of a finished run."""
    from humanseg.drift import VARIANTS, drifted_sequence

    out: dict[str, Any] = {}
    for variant in VARIANTS:
        folder, start, where = drifted_sequence(seq_dir, work / "drift" / variant, variant)
        rows: dict[str, Any] = {}
        for label, name, follow in DRIFT_METHODS:
            label = label.format(site=site_method)
            options = {} if follow is None else _plate_options(follow, plate_update_s, fps)
            if name == "segnet":
                seg = create_segmenter(name, checkpoint=checkpoint, device=device, **options)
            elif capabilities(name).takes_plate:
                seg = create_segmenter(name, plate=str(work / "plate.png"), **options)
            else:
                seg = create_segmenter(name)
            numbers = [it.number for it in seq.items] if variant == "moved" else []
            try:
                result = evaluate_sequence(folder, seg, skip_first=skip_first, keep_masks=numbers, progress=progress)
            finally:
                seg.close()
            row: dict[str, Any] = {"f_measure": result["f_measure"]}
            if variant == "moved":
                marked = [n for n in sorted(result.masks) if n >= start and result.masks[n][where].mean() > 0.01]
                row["moved_marked_until_s"] = round((marked[-1] - start) / fps, 2) if marked else 0.0
            rows[label] = row
        out[variant] = rows
        shutil.rmtree(folder, ignore_errors=True)
        say(f"{work.name}: drift {variant}: " + ", ".join(f"{m} F {r['f_measure']:.3f}" for m, r in rows.items()))
    return out


def _plate(
    config: SiteBenchmarkConfig,
    seq_dir: Path,
    seq: LabelledSequence,
    out_path: Path,
    record: _Record,
    console: _Console,
    fetch: Callable[..., Any] | None,
) -> dict[str, str]:
    """The site plate (``dataset_builder.backgrounds.site_plate``), estimated without ``plate_people`` when that
    segmenter's model cannot be had."""
    from dataset_builder.backgrounds import site_plate

    people = config.plate_people if not seq.empty_backgrounds else None
    if people is not None:
        if people not in record.unavailable:
            record.unavailable[people] = baseline_unavailable(people, fetch, console.say)
        if record.unavailable[people] is not None:
            console.say(f"{out_path.parent.name}: plate estimated without {people} ({record.unavailable[people]})")
            people = None
    plate = site_plate(seq_dir, out_path, people=people)
    if people is None and config.plate_people is not None and plate["source"] == "estimated":
        plate["detail"] += f" ({config.plate_people} unavailable: motion masking only)"
    console.say(f"{out_path.parent.name}: plate {plate['source']} ({plate['detail']})")
    return plate


def _harvest_site_actors(
    config: SiteBenchmarkConfig,
    seq_dir: Path,
    work: Path,
    name: str,
    others: bool,
    record: _Record,
    console: _Console,
) -> dict[str, Path]:
    """Silhouettes harvested from the sequence's own input frames with its plate (method ``plate``, as the app
    does for a user without masks) into ``work/site-actors``; ``{"site:<name>": folder}``, or nothing when none
    was found and ``others`` (other actor sources) remain. The ground truth is never read: the plate method sees
    only ``input/``."""
    from dataset_builder.silhouettes import extract_silhouettes

    label = f"site:{name}"
    folder = work / "site-actors"
    entry: dict[str, Any] = {"path": str(seq_dir.resolve()), "method": "plate", "plate": str(work / "plate.png")}
    try:
        found = extract_silhouettes(seq_dir, "plate", folder, plate=work / "plate.png", progress=console.enabled)
    except ValueError as err:
        if not others:
            raise ValueError(
                f"{seq_dir}: --site-actors found no whole person in its frames with its plate ({err}); add --actors "
                "from other footage"
            ) from err
        record.actors[label] = entry | {"silhouettes": 0, "skipped": str(err)}
        console.say(f"actors {label}: skipped ({err})")
        return {}
    record.actors[label] = entry | {"silhouettes": len(found), "folder": str(folder)}
    console.say(f"actors {label}: {len(found)} silhouettes harvested from its own frames with its plate")
    return {label: folder}


def _site_scale(
    config: SiteBenchmarkConfig, seq_dir: Path, plate: Path, name: str, console: _Console
) -> CompositeScale | None:
    """The sequence's :class:`humanseg.site.CompositeScale` from its input frames (never its ground truth) and
    plate, or None with ``--no-site-scale``."""
    if not config.site_scale:
        return None
    from humanseg.models import get_preset
    from humanseg.site import fit_clip_scale
    from humanseg.video import read_image

    scale = fit_clip_scale(seq_dir, read_image(plate), get_preset(config.model_preset()).input_size)
    console.say(f"{name}: {scale.describe()}")
    return scale


def _build(
    config: SiteBenchmarkConfig,
    seq: LabelledSequence,
    work: Path,
    silhouettes: list[Path],
    scale: CompositeScale | None,
    console: _Console,
) -> dict[str, Any]:
    """Composites of the plate and the silhouettes into ``work/dataset`` at the site's scale (``scale``, a
    :class:`humanseg.site.CompositeScale`, or None: as before the site scale); returns what run.json says."""
    from dataset_builder.build import build_dataset
    from dataset_builder.perspective import PerspectiveModel

    default = default_size((seq.size[1], seq.size[0]))
    size = scale.size(config.size, default) if scale is not None else config.size or default
    # Never "auto": that fits silhouettes whose source frames have the plate's size, which here may be other
    # cameras' people (a leave-one-out sequence of the same resolution). The site's own fit comes from its plate.
    perspective = scale.perspective(config.perspective) if scale is not None else config.perspective
    manifest = build_dataset(
        [work / "plate.png"], silhouettes, work / "dataset", config.count, size=size, seed=config.seed,
        perspective=perspective or PerspectiveModel.default(size[0]), val_fraction=VAL_FRACTION,
        working_scale=scale.build_scale(size) if scale is not None else None, workers=config.workers,
        config=config.composite_config(), progress=console.enabled,
    )  # fmt: skip
    written = json.loads(manifest.read_text())
    return {
        "path": str(manifest.parent),
        "size": list(size),
        "count": config.count,
        "perspective": written["params"]["perspective"],
        "working_scale": written.get("working_scale"),
        "tiled": written.get("tiled", False),
    }


def _train(config: SiteBenchmarkConfig, dataset: Path, out: Path, console: _Console) -> dict[str, Any]:
    """Train to the budget; returns the checkpoint used for scoring and what training reported."""
    from humanseg.train import TrainConfig, train

    train_config = TrainConfig(
        model=config.model_preset(), minutes=float(config.minutes), seed=config.seed, device=config.device
    )
    budget = int(round(config.minutes * 60))
    seconds = bar(total=budget, desc=f"{out.parent.name} train", unit="s", enabled=console.enabled, leave=False,
                  position=1, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s {postfix}")  # fmt: skip
    last: Any = None
    device = ""
    best_val: float | None = None
    with seconds:
        for event in train(train_config, dataset, out, progress=console.enabled):
            last = event
            device = event.device or device
            if event.kind == "val" and event.val_f is not None:
                best_val = max(best_val or 0.0, float(event.val_f))
            seconds.update(min(int(event.elapsed_s), budget) - seconds.n)
            if event.loss is not None:
                seconds.set_postfix_str(f"step {event.step} loss {event.loss:.3f}", refresh=False)
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
    console.say(f"{out.parent.name}: trained {info['steps']} steps ({info['epochs']} epochs) in "
                f"{info['elapsed_s']} s on {device}; {info['stopped']}")  # fmt: skip
    return info


def _plate_options(follow: bool, plate_update_s: float, fps: float) -> dict[str, Any]:
    """The options of a plate method: whether its plate ``follow``s the site, its update time in seconds, counted
    at the footage's frame rate ``fps``."""
    return {"follow_plate": follow, "plate_update_s": plate_update_s, "fps": fps}


def _segmenter(
    method: str, model_method: str, checkpoint: str, plate: Path, config: SiteBenchmarkConfig
) -> tuple[Segmenter, dict[str, str]]:
    """The site model (labelled ``model_method``) or a baseline, given the site plate when it takes one, and the
    file it was given, for its results row. Plate methods follow the site unless ``config.fixed_plate``."""
    options = _plate_options(not config.fixed_plate, config.plate_update_s, config.fps)
    if method == model_method:
        seg = create_segmenter("segnet", checkpoint=checkpoint, device=config.device, **options)
        seg.label = model_method
        return seg, {"checkpoint": checkpoint}
    if capabilities(method).takes_plate:
        return create_segmenter(method, plate=str(plate), **options), {"plate": str(plate)}
    return create_segmenter(method), {}


def _score(
    seq_dir: Path,
    made: tuple[Segmenter, dict[str, str]],
    skip: bool,
    mask_dir: Path,
    still: list[int],
    picks: list[int],
    progress: bool,
) -> tuple[dict[str, Any], dict[int, tuple[np.ndarray, float]]]:
    """One method's results row (the evaluator's, the file the segmenter was given, the still-person F) and its
    masks of the montage frames with their F-measure. The masks are also saved, one PNG per scored frame."""
    seg, given = made
    try:
        result = evaluate_sequence(
            seq_dir, seg, skip_first=skip, save_masks=mask_dir, keep_masks=picks, progress=progress
        )
    finally:
        seg.close()
    row = dict(result) | given
    row["still_f_measure"] = metrics.scores(result.pooled(still))["f_measure"] if still else None
    row["still_frames"] = len(still)
    row["status"] = "ok"
    masks = {n: (result.masks[n], metrics.scores(c)["f_measure"]) for n, c in result.frames if n in result.masks}
    return row, masks


def _save_montage(
    seq: LabelledSequence,
    picks: list[SequenceItem],
    rows: dict[str, Any],
    masks: dict[str, dict[int, tuple[np.ndarray, float]]],
    out_path: Path,
) -> None:
    """``montage.png``: the picked frames with the ground truth and each method that ran."""
    ran = [m for m, r in rows.items() if r.get("status") == "ok"]
    lines = []
    for item in picks:
        frame, label = seq.read(item)
        lines.append(MontageRow(item.number, frame, label, {m: masks[m][item.number] for m in ran}))
    Image.fromarray(montage(lines, seq.roi)).save(out_path)
