"""Run segmenters over a video: mask videos, overlay videos, a captioned side-by-side video and PNG zips, and on
request an anonymised video and people counts with an occupancy heatmap per method.

A pipeline of three stages that overlap: frames are decoded once (:func:`humanseg.video.open_frames`) in one
thread, every segmenter runs on them in a second (:func:`segment_frames`: trained models get batches, stateful
backends frames in order, each timed per method), and the outputs are composed and written frame by frame in the
caller's thread. Decoding (PyAV), encoding (libx264), OpenCV and torch release the GIL, so the stages run in
parallel; the queues between them are bounded, so memory stays flat however long the clip. An error in any stage
reaches the caller, and every thread has ended when the call returns or raises. The CLI
(`python -m humanseg segment`) and the app call the same functions here; :mod:`humanseg.footage` runs them over
whole folders of clips.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from humanseg import metrics
from humanseg.anonymise import anonymise_frame, check_style, has_plate, segmenter_plate
from humanseg.files import atomic_path
from humanseg.maintained_plate import DEFAULT_UPDATE_S
from humanseg.occupancy import HeightAt, OccupancyAccumulator, StatsFiles, write_stats
from humanseg.render import grid, mask_image, overlay
from humanseg.stages import QUEUE_ITEMS, ThreadedStage
from humanseg.timing import WarmMean
from humanseg.video import (
    H264Writer,
    PngMaskWriter,
    VideoError,
    open_frames,
    read_image,
    read_label,
    zip_folder,
)

ProgressFn = Callable[[int, "int | None"], None]


class SegmenterLike(Protocol):
    """What this module needs of a segmenter (see humanseg.segmenters.Segmenter)."""

    name: str

    def segment(self, frame: np.ndarray) -> np.ndarray: ...


@dataclass
class SegmentedFrame:
    """One frame with each method's probability mask (float32 H x W) and the time it took (ms); with
    ``plates`` asked of :func:`segment_frames`, each method's empty scene as it was when it segmented this frame
    (plate-diff's running median moves on while later stages work on earlier frames)."""

    index: int
    frame: np.ndarray
    probs: dict[str, np.ndarray]
    ms: dict[str, float]
    plates: dict[str, np.ndarray | None] = field(default_factory=dict)


@dataclass
class MethodOutput:
    """Files and speed of one method. ``ms_per_frame`` is the mean segment() time, first (warm-up) frame excluded.

    ``anonymised_video``: the clip with this method's people hidden (when asked for); ``stats``: its counts CSV,
    count chart and occupancy heatmap (``stats=True``); ``mean_count``/``max_count``: people per frame, when
    counted (``stats=True``, and always for clips of :mod:`humanseg.footage`). ``plate_captured``/``plate_end``:
    for a method whose plate follows the site, PNGs of the captured plate and of the plate as it stood after the
    clip's last frame (the light and moved objects it absorbed).
    """

    name: str
    mask_video: Path
    overlay_video: Path | None
    masks_zip: Path | None
    ms_per_frame: float
    frames: int
    anonymised_video: Path | None = None
    stats: StatsFiles | None = None
    mean_count: float | None = None
    max_count: int | None = None
    plate_captured: Path | None = None
    plate_end: Path | None = None


@dataclass
class SegmentResult:
    """What :func:`segment_video` wrote. ``seconds`` is the wall time of the whole run (reading + writing too)."""

    source: Path
    out_dir: Path
    frames: int
    fps: float
    size: tuple[int, int]  # (width, height) of the input frames
    side_by_side: Path | None
    methods: dict[str, MethodOutput] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        """Input frames processed per wall-clock second (all methods and all writing included)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def safe_filename(name: str) -> str:
    """A method name as a file-name stem (anything but letters, digits, '.', '_' and '-' becomes '_')."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return stem or "method"


@dataclass(frozen=True)
class PlateFollowing:
    """How methods with a plate (plate-diff given one, plate models) treat it over a clip: ``follow`` the site
    (light compensation and a slow update, :mod:`humanseg.maintained_plate`) or keep it as captured (``False``);
    ``update_s``: the update's time constant in seconds (0 = light compensation only), counted at the clip's own
    frame rate."""

    follow: bool = True
    update_s: float = DEFAULT_UPDATE_S

    def __post_init__(self) -> None:
        if self.update_s < 0:
            raise ValueError(f"the plate update time must be >= 0 seconds, got {self.update_s}")

    def options(self) -> dict[str, Any]:
        """The keyword arguments of the plate segmenters (plate-diff, segnet) that say this."""
        return {"follow_plate": self.follow, "plate_update_s": self.update_s}


def _options_for(
    name: str, plate: np.ndarray | None, checkpoint: str | Path | None, following: PlateFollowing | None = None
) -> dict[str, Any]:
    """Only the options backend ``name`` takes, read from its capability flags: `--plate` given for a plate-diff
    vs mog2 comparison must not make mog2 fail. Unknown names fall through to ``create_segmenter``, whose error
    lists the valid ones."""
    from humanseg.segmenters import REGISTRY, capabilities

    if name not in REGISTRY:
        return {}
    caps = capabilities(name)
    kwargs: dict[str, Any] = {}
    if plate is not None and caps.takes_plate:
        kwargs["plate"] = plate
    if checkpoint is not None and caps.takes_checkpoint:
        kwargs["checkpoint"] = checkpoint
    if following is not None and caps.takes_plate:
        kwargs |= following.options()
    return kwargs


def resolve_segmenters(
    segmenters: str | SegmenterLike | Iterable[str | SegmenterLike],
    *,
    plate: str | Path | np.ndarray | None = None,
    checkpoint: str | Path | None = None,
    plate_used_elsewhere: bool = False,
    following: PlateFollowing | None = None,
) -> list[SegmenterLike]:
    """Registry names and/or ready segmenter instances -> instances (names built with ``create_segmenter``).

    ``plate`` (an image path or RGB array of the empty scene) and ``checkpoint`` are handed only to backends
    whose class says it takes them (``takes_plate``, ``takes_checkpoint``). A plate or checkpoint that no
    requested backend uses is an error, not silently ignored, unless ``plate_used_elsewhere`` (an output uses
    the plate itself: the anonymised video's ``erase`` style). ``following``: how the plate methods built here
    treat their plate (default: each backend's own default, which follows the site).
    """
    items = [segmenters] if isinstance(segmenters, str) or hasattr(segmenters, "segment") else list(segmenters)
    if not items:
        raise ValueError("no segmenter given; name at least one (e.g. mog2)")
    plate_arr = read_image(plate) if isinstance(plate, (str, Path)) else plate
    out: list[SegmenterLike] = []
    used_plate = used_ckpt = False
    names = [i for i in items if isinstance(i, str)]
    try:
        for item in items:
            if isinstance(item, str):
                from humanseg.segmenters import create_segmenter

                kwargs = _options_for(item, plate_arr, checkpoint, following)
                used_plate |= "plate" in kwargs
                used_ckpt |= "checkpoint" in kwargs
                out.append(create_segmenter(item, **kwargs))
            elif hasattr(item, "segment") and hasattr(item, "name"):
                out.append(item)
            else:
                raise ValueError(f"expected a segmenter name or an object with .name and .segment(frame), got {item!r}")
        if names and plate is not None and not used_plate and not plate_used_elsewhere:
            raise ValueError(f"a plate was given but none of {names} uses one; drop --plate or add e.g. plate-diff")
        if names and checkpoint is not None and not used_ckpt:
            raise ValueError(f"a checkpoint was given but none of {names} uses one; drop --checkpoint or add segnet")
    except BaseException:
        _close_created(items, out)
        raise
    return out


def _close_created(spec: object, segs: Sequence[SegmenterLike]) -> None:
    """Close the segmenters this module built from names (model sessions); instances the caller passed stay open."""
    given = [spec] if isinstance(spec, str) or hasattr(spec, "segment") else list(spec)  # type: ignore[call-overload]
    given_ids = {id(x) for x in given if not isinstance(x, str)}
    for seg in segs:
        if id(seg) not in given_ids and hasattr(seg, "close"):
            seg.close()


def label_of(segmenter: SegmenterLike) -> str:
    """The name a segmenter has in tables, captions and file names: its ``label`` (e.g. ``site:site/run``
    for a site model), else its ``name``."""
    return str(getattr(segmenter, "label", None) or segmenter.name)


def unique_names(segmenters: Sequence[SegmenterLike]) -> list[str]:
    """Method labels, suffixed _2, _3 ... where the same backend appears more than once."""
    seen: dict[str, int] = {}
    names = []
    for seg in segmenters:
        base = label_of(seg)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def _as_prob(mask: np.ndarray, frame: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.shape != frame.shape[:2]:
        raise ValueError(
            f"segmenter {name!r} returned a mask of shape {m.shape} for a frame of shape {frame.shape[:2]}; "
            "masks must be H x W like the frame"
        )
    if m.dtype == np.bool_:
        return m.astype(np.float32)
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    return np.clip(m, 0.0, 1.0).astype(np.float32, copy=False)


def batch_size_of(segmenter: SegmenterLike) -> int:
    """Frames per call for ``segmenter``: its ``batch_size`` when its class says it ``batches`` (trained models:
    one network call per chunk), else 1."""
    if not getattr(segmenter, "batches", False):
        return 1
    return max(1, int(getattr(segmenter, "batch_size", 1)))


def _chunks(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _run_one(
    seg: SegmenterLike, chunk: list[np.ndarray], plates: bool
) -> tuple[list[np.ndarray], list[float], list[np.ndarray | None]]:
    """``seg``'s masks for ``chunk``, the milliseconds each took and (``plates``) its empty scene after each: a
    batching segmenter gets the chunk in one ``segment_batch`` call (each frame charged an equal share; its plate
    is fixed), any other one frame at a time, in order."""
    size = (chunk[0].shape[1], chunk[0].shape[0])
    if len(chunk) > 1 and batch_size_of(seg) > 1:
        t0 = time.perf_counter()
        masks = list(seg.segment_batch(chunk))  # type: ignore[attr-defined]
        share = (time.perf_counter() - t0) * 1000.0 / len(chunk)
        if len(masks) != len(chunk):
            raise ValueError(f"segmenter {seg.name!r} returned {len(masks)} masks for a batch of {len(chunk)} frames")
        scene = segmenter_plate(seg, size) if plates else None  # type: ignore[arg-type]
        return masks, [share] * len(chunk), [scene] * len(chunk)
    masks, times, scenes = [], [], []
    for frame in chunk:
        t0 = time.perf_counter()
        masks.append(seg.segment(frame))
        times.append((time.perf_counter() - t0) * 1000.0)
        scenes.append(segmenter_plate(seg, size) if plates else None)  # type: ignore[arg-type]
    return masks, times, scenes


def segment_frames(
    frames: Iterable[np.ndarray],
    segmenters: Sequence[SegmenterLike],
    *,
    batch_size: int = 1,
    plates: bool = False,
) -> Iterator[SegmentedFrame]:
    """Run every segmenter on every frame; yields each frame, in order, with its masks and per-method milliseconds.

    Stateful segmenters are ``reset()`` first, so a run starts from a clean model of the scene. Frames are taken
    ``batch_size`` at a time (1: each frame is yielded as soon as it is segmented, as a live stream needs; a
    clip's :func:`pipeline` passes the largest :func:`batch_size_of` the segmenters); batching segmenters get
    each chunk in one call, the others frame by frame in order, so the masks are those of the per-frame path.
    ``plates``: also record each method's empty scene per frame (``SegmentedFrame.plates``).
    """
    names = unique_names(segmenters)
    for seg in segmenters:
        if hasattr(seg, "reset"):
            seg.reset()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    index = 0
    for chunk in _chunks(frames, batch_size):
        results = [_run_one(seg, chunk, plates) for seg in segmenters]
        for j, frame in enumerate(chunk):
            probs = {n: _as_prob(masks[j], frame, n) for n, (masks, _, _) in zip(names, results, strict=True)}
            ms = {n: times[j] for n, (_, times, _) in zip(names, results, strict=True)}
            scenes = {n: s[j] for n, (_, _, s) in zip(names, results, strict=True)} if plates else {}
            yield SegmentedFrame(index, frame, probs, ms, scenes)
            index += 1


@contextmanager
def pipeline(
    frames: Iterable[np.ndarray],
    segmenters: Sequence[SegmenterLike],
    *,
    batch_size: int | None = None,
    plates: bool = False,
) -> Iterator[Iterator[SegmentedFrame]]:
    """:func:`segment_frames` as two overlapping stages (decoding in one thread, segmenting in another), for
    the caller to write outputs in a third: ``with pipeline(reader, segs) as items: for item in items: ...``.
    ``batch_size`` defaults to the largest :func:`batch_size_of` the segmenters. Both threads have ended when the
    block is left, normally or by an exception."""
    size = batch_size if batch_size is not None else max((batch_size_of(s) for s in segmenters), default=1)
    with ThreadedStage(frames, maxsize=max(QUEUE_ITEMS, 2 * size), name="decode") as decoded:
        stage = segment_frames(decoded, segmenters, batch_size=size, plates=plates)
        with ThreadedStage(stage, name="segment") as segmented:
            yield segmented


def _fit_width(frame: np.ndarray, max_width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if w <= max_width:
        return frame
    new_h = max(2, round(h * max_width / w))
    return cv2.resize(frame, (max_width, new_h), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class ExtraOutputs:
    """The optional outputs of :func:`segment_video`, per method: an anonymised video (``anonymise``: a style of
    :data:`humanseg.anonymise.STYLES`, ``margin_px`` as :func:`humanseg.anonymise.anonymise_frame`), people counts
    (``counts``: mean and max per frame in :class:`MethodOutput`) and with ``stats`` their files (counts CSV,
    count chart, occupancy heatmap .npy + PNG); ``height_at``: the site's perspective for counting."""

    anonymise: str | None = None
    margin_px: int | None = None
    stats: bool = False
    counts: bool = False
    height_at: HeightAt | None = None

    def __post_init__(self) -> None:
        if self.anonymise is not None:
            check_style(self.anonymise)
        if self.margin_px is not None and self.margin_px < 0:
            raise ValueError(f"anonymise margin must be >= 0 pixels, got {self.margin_px}")

    @property
    def counting(self) -> bool:
        return self.stats or self.counts


class _Outputs:
    """The files :func:`segment_video` writes, fed one segmented frame at a time (see its docstring)."""

    def __init__(
        self,
        out: Path,
        segs: Sequence[SegmenterLike],
        reader: Any,
        *,
        save_pngs: bool,
        side_by_side: bool,
        overlays: bool,
        tile_width: int,
        threshold: float,
        step: int,
        extras: ExtraOutputs,
        plate: np.ndarray | None,
    ) -> None:
        names = unique_names(segs)
        self.out, self.names, self.tile_width, self.threshold, self.step = out, names, tile_width, threshold, step
        self.segs = dict(zip(names, segs, strict=True))
        self.extras, self.plate, self.size = extras, plate, reader.size
        if extras.anonymise == "erase" and plate is None:
            lacking = [n for n in names if not has_plate(self.segs[n])]
            if lacking:
                raise ValueError(
                    f"anonymise style 'erase' shows the empty scene, but {', '.join(lacking)} has none: give the "
                    "site's empty-scene plate (--plate), or use a plate method such as plate-diff"
                )
        self.writers: list[H264Writer] = []
        self.final: dict[H264Writer, Path] = {}
        out.mkdir(parents=True, exist_ok=True)
        self.stems = {n: safe_filename(n) for n in names}
        fps = reader.fps
        try:
            self.mask_w = {n: self._writer(f"{self.stems[n]}_mask.mp4", fps) for n in names}
            self.over_w = {n: self._writer(f"{self.stems[n]}_overlay.mp4", fps) for n in names} if overlays else {}
            self.anon_w = (
                {n: self._writer(f"{self.stems[n]}_anonymised.mp4", fps) for n in names} if extras.anonymise else {}
            )
            self.sbs_w = self._writer("side_by_side.mp4", fps) if side_by_side else None
        except BaseException:
            self.close()
            raise
        self.png_w: dict[str, PngMaskWriter] = {}
        if save_pngs:
            for n in names:
                folder = out / f"{self.stems[n]}_masks"
                if folder.exists():
                    shutil.rmtree(folder)  # stale masks from an earlier, longer run would end up in the zip
                self.png_w[n] = PngMaskWriter(folder, threshold=threshold)
        # Counts use the source's frame numbers and rate, so time_s is the time in the clip whatever the step.
        self.counts = (
            {n: OccupancyAccumulator(reader.source_fps, height_at=extras.height_at, threshold=threshold) for n in names}
            if extras.counting
            else {}
        )
        self.timers = {n: WarmMean() for n in names}
        self.frames = 0

    def _writer(self, name: str, fps: float) -> H264Writer:
        # Written under a hidden temporary name and renamed by done(): a run that fails half way leaves no
        # truncated video under the final name (and an earlier complete one stays).
        final = self.out / name
        writer = H264Writer(final.with_name(f".{final.stem}.partial{final.suffix}"), fps)
        self.writers.append(writer)
        self.final[writer] = final
        return writer

    def path(self, writer: H264Writer) -> Path:
        """Where ``writer``'s video is once the run is done."""
        return self.final[writer]

    def write(self, item: SegmentedFrame) -> None:
        tiles = [_fit_width(item.frame, self.tile_width)] if self.sbs_w is not None else []
        captions = ["input"]
        for n in self.names:
            prob = item.probs[n]
            self.timers[n].add(item.ms[n])
            self.mask_w[n].write(mask_image(prob, self.threshold))
            if n in self.over_w:
                over = overlay(item.frame, prob, threshold=self.threshold)
                self.over_w[n].write(over)
            if n in self.anon_w:
                self.anon_w[n].write(self._anonymised(n, item, prob))
            if n in self.counts:
                self.counts[n].add(item.index * self.step, prob, item.frame)
            if n in self.png_w:
                self.png_w[n].write(prob, item.index * self.step)
            if self.sbs_w is not None:
                tiles.append(_fit_width(over, self.tile_width))
                captions.append(f"{n}  {self.timers[n].mean:.0f} ms/frame")
        if self.sbs_w is not None:
            self.sbs_w.write(grid(tiles, captions))
        self.frames += 1

    @property
    def needs_plates(self) -> bool:
        """Whether :meth:`write` needs each method's own empty scene per frame (``erase`` without a given plate)."""
        return self.extras.anonymise == "erase" and self.plate is None

    def _anonymised(self, name: str, item: SegmentedFrame, prob: np.ndarray) -> np.ndarray:
        style = self.extras.anonymise
        assert style is not None
        # erase without a given plate: the segmenter's own empty scene as it was when it segmented this frame.
        plate = item.plates.get(name) if self.needs_plates else self.plate
        return anonymise_frame(
            item.frame, prob, style, margin_px=self.extras.margin_px, plate=plate, threshold=self.threshold
        )

    def close(self) -> None:
        """Close the videos; any not renamed into place by :meth:`methods` (a failed run) are removed."""
        for w in self.writers:
            w.close()
            w.path.unlink(missing_ok=True)

    def methods(self) -> dict[str, MethodOutput]:
        """Close the videos and rename them into place, zip the PNG masks, write the stats; each method's files
        and speed."""
        for w in self.writers:
            w.close()
            os.replace(w.path, self.final[w])
        out = {}
        for n in self.names:
            png = self.png_w.get(n)
            acc = self.counts.get(n)
            counts = acc.counts if acc is not None else None
            stats = None
            if acc is not None and self.extras.stats:
                # The heatmap is drawn over the empty scene: the given plate, else the method's own (plate-diff's
                # running median), else the first frame.
                scene = self.plate if self.plate is not None else segmenter_plate(self.segs[n], self.size)
                stats = write_stats(acc, self.out, plate=scene, prefix=f"{self.stems[n]}_", title=n)
            out[n] = MethodOutput(
                name=n,
                mask_video=self.path(self.mask_w[n]),
                overlay_video=self.path(self.over_w[n]) if n in self.over_w else None,
                masks_zip=zip_folder(png.folder, self.out / f"{self.stems[n]}_masks.zip") if png else None,
                ms_per_frame=self.timers[n].mean,
                frames=self.frames,
                anonymised_video=self.path(self.anon_w[n]) if n in self.anon_w else None,
                stats=stats,
                mean_count=float(counts.mean()) if counts is not None else None,
                max_count=int(counts.max()) if counts is not None else None,
            )
            out[n].plate_captured, out[n].plate_end = _plate_images(self.segs[n], self.out, self.stems[n], self.size)
        return out


def _plate_images(seg: SegmenterLike, out: Path, stem: str, size: tuple[int, int]) -> tuple[Path | None, Path | None]:
    """For a method whose plate follows the site (it holds a :class:`humanseg.maintained_plate.MaintainedPlate`
    as ``maintained``): its captured plate and its plate after the last frame, written as
    ``<stem>_plate_captured.png`` and ``<stem>_plate_end.png`` at the clip's ``size`` (width, height); else
    ``(None, None)``."""
    maintained = getattr(seg, "maintained", None)
    if maintained is None:
        return None, None
    paths = []
    for what, image in (("captured", maintained.captured), ("end", maintained.plate)):
        if (image.shape[1], image.shape[0]) != tuple(size):
            image = cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)
        path = out / f"{stem}_plate_{what}.png"
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {path}; check that the output folder is writable")
        paths.append(path)
    return paths[0], paths[1]


def _check_plate_size(plate: str | Path | np.ndarray | None, reader: Any) -> np.ndarray | None:
    """The plate as an array, checked to be the size of the frames ``reader`` yields."""
    plate_arr = read_image(plate) if isinstance(plate, (str, Path)) else plate
    if plate_arr is not None and (plate_arr.shape[1], plate_arr.shape[0]) != reader.size:
        shown = plate if isinstance(plate, (str, Path)) else "(array)"
        raise VideoError(
            f"plate {shown} is {plate_arr.shape[1]}x{plate_arr.shape[0]} but {reader.source} is "
            f"{reader.size[0]}x{reader.size[1]}; use an empty-scene image from this camera at this size"
        )
    return plate_arr


def _progress_sink(progress: bool | ProgressFn, total: int | None) -> tuple[ProgressFn, Callable[[], None]]:
    """(update(done, total), close()) for ``progress``: a bool (a tqdm bar, see humanseg.progress) or a
    ``progress(done, total)`` callable."""
    if callable(progress):
        return progress, lambda: None
    from humanseg.progress import bar

    shown = bar(total=total, desc="segment", unit="frame", enabled=bool(progress), leave=False)
    return (lambda done, _total: shown.update(done - shown.n)), shown.close


def _run(
    reader: Any,
    segmenters: str | SegmenterLike | Iterable[str | SegmenterLike],
    out_dir: str | Path,
    *,
    plate: str | Path | np.ndarray | None,
    checkpoint: str | Path | None,
    step: int,
    save_pngs: bool,
    side_by_side: bool,
    tile_width: int,
    threshold: float,
    progress: bool | ProgressFn,
    extras: ExtraOutputs,
    on_frame: Callable[[SegmentedFrame], None] | None = None,
    masks_only: bool = False,
    following: PlateFollowing | None = None,
) -> SegmentResult:
    """Segment every frame of ``reader`` (closed here) into the files of :func:`segment_video`; ``on_frame``
    sees each segmented frame after it is written (the scorer of :func:`segment_and_score`)."""
    t_start = time.perf_counter()
    outputs: _Outputs | None = None
    segs: list[SegmenterLike] = []
    update, close_bar = _progress_sink(progress, reader.frame_count)
    try:
        plate_arr = _check_plate_size(plate, reader)
        segs = resolve_segmenters(
            segmenters, plate=plate_arr, checkpoint=checkpoint, plate_used_elsewhere=extras.anonymise == "erase",
            following=following,
        )  # fmt: skip
        for seg in segs:
            if hasattr(seg, "set_fps"):  # a plate that follows the site counts its update time at this clip's rate
                seg.set_fps(reader.fps)
        outputs = _Outputs(
            Path(out_dir), segs, reader, save_pngs=save_pngs, side_by_side=side_by_side and not masks_only,
            overlays=not masks_only, tile_width=tile_width, threshold=threshold, step=step, extras=extras,
            plate=plate_arr,
        )  # fmt: skip
        with pipeline(reader, segs, plates=outputs.needs_plates) as items:
            for item in items:
                outputs.write(item)
                if on_frame is not None:
                    on_frame(item)
                update(outputs.frames, reader.frame_count)
        if outputs.frames == 0:
            raise VideoError(f"{reader.source}: no frames were read")
        methods = outputs.methods()
        return SegmentResult(
            source=Path(reader.source),
            out_dir=Path(out_dir),
            frames=outputs.frames,
            fps=reader.fps,
            size=reader.size,
            side_by_side=outputs.path(outputs.sbs_w) if outputs.sbs_w is not None else None,
            methods=methods,
            seconds=time.perf_counter() - t_start,
        )
    finally:
        close_bar()
        if outputs is not None:
            outputs.close()
        reader.close()
        _close_created(segmenters, segs)


def segment_video(
    source: str | Path,
    segmenters: str | SegmenterLike | Iterable[str | SegmenterLike],
    out_dir: str | Path,
    *,
    plate: str | Path | np.ndarray | None = None,
    checkpoint: str | Path | None = None,
    max_frames: int | None = None,
    step: int = 1,
    save_pngs: bool = False,
    side_by_side: bool = True,
    tile_width: int = 480,
    threshold: float = 0.5,
    progress: bool | ProgressFn = False,
    extras: ExtraOutputs | None = None,
    masks_only: bool = False,
    following: PlateFollowing | None = None,
) -> SegmentResult:
    """Segment a video (or image folder) with one or more methods and write, in ``out_dir``:

    - ``<name>_mask.mp4`` (white person on black) and ``<name>_overlay.mp4`` (tinted, outlined) per method,
    - ``<name>_masks.zip`` of ``<name>_masks/NNNNNN.png`` (0/255) per method when ``save_pngs``,
    - ``side_by_side.mp4``: input | each method's overlay, captioned "name  NN ms/frame" (running mean),
      each tile scaled to at most ``tile_width`` pixels wide,
    - with ``extras`` (:class:`ExtraOutputs`): ``<name>_anonymised.mp4`` (people hidden in the chosen style; ``erase``
      shows ``plate``, else the method's own plate), and with ``stats`` ``<name>_counts.csv``,
      ``<name>_counts.png``, ``<name>_occupancy.npy`` and ``<name>_occupancy.png`` (over ``plate``, else the
      first frame): see :func:`humanseg.occupancy.write_stats`,
    - ``<name>_plate_captured.png`` and ``<name>_plate_end.png`` per method whose plate follows the site: the
      captured plate and the plate after the last frame.

    ``masks_only``: the mask videos (and PNGs, and ``extras``) only, no overlay or side-by-side video (the fast
    path: encoding them costs more than a cheap method). Methods are named by their ``label`` (suffixed _2, _3 ...
    when one appears twice). Frames are read once and streamed through :func:`pipeline`. ``progress``: True shows a tqdm bar (the app tracks it); a callable gets ``(done, total)`` after
    each frame (total may be None). Returns the paths, frame count and each method's mean ms/frame (first
    frame excluded as warm-up). ``following``: how plate methods given by name treat their plate
    (:class:`PlateFollowing`; instances keep their own setting); every method whose plate follows the site counts
    its update time at the rate of the frames it gets (the clip's, divided by ``step``).
    """
    reader = open_frames(source, step=step, max_frames=max_frames)
    return _run(
        reader, segmenters, out_dir, plate=plate, checkpoint=checkpoint, step=step, save_pngs=save_pngs,
        side_by_side=side_by_side, tile_width=tile_width, threshold=threshold, progress=progress,
        extras=extras or ExtraOutputs(), masks_only=masks_only, following=following,
    )  # fmt: skip


@dataclass
class ScoredResult:
    """What :func:`segment_and_score` wrote and measured: the files (as :func:`segment_video`) and one score
    row per method, as ``humanseg.evaluate.evaluate_sequence`` returns it (a ``SequenceResult``: the keys of
    ``RESULT_KEYS`` and each scored frame's confusion counts)."""

    result: SegmentResult
    rows: list[dict[str, Any]]


def segment_and_score(
    seq_dir: str | Path,
    segmenters: str | SegmenterLike | Iterable[str | SegmenterLike],
    out_dir: str | Path,
    *,
    plate: str | Path | np.ndarray | None = None,
    checkpoint: str | Path | None = None,
    skip_first: bool | None = None,
    save_pngs: bool = False,
    side_by_side: bool = True,
    tile_width: int = 480,
    threshold: float = 0.5,
    boundary_tolerance: float = metrics.DAVIS_BOUNDARY_TOLERANCE,
    progress: bool | ProgressFn = False,
    extras: ExtraOutputs | None = None,
    fps: float | None = None,
    following: PlateFollowing | None = None,
) -> ScoredResult:
    """Segment a labelled sequence (CDnet/DAVIS folder), write the files of :func:`segment_video` and score
    every method with the CDnet protocol, in one pass over the frames: each frame is read and segmented once.

    The score rows equal what ``humanseg.evaluate.evaluate_sequence`` gives for each method on this sequence
    (the same frames to score and :class:`humanseg.metrics.SequenceScorer`; ``skip_first`` as there);
    ``ms_per_frame`` is this run's mean segment() time over every frame. ``extras`` as :func:`segment_video`.
    ``fps``: the frame rate of the clip the sequence was cut from (an image folder has none), for the videos,
    the counts' times and the plate update. ``following``: as :func:`segment_video`.
    """
    from humanseg.evaluate import RESULT_KEYS, SequenceResult, frames_to_score

    seq, skip, scored = frames_to_score(seq_dir, skip_first, threshold)
    numbers = {it.number for it in scored}
    first, last = scored[0].number, scored[-1].number
    reader = open_frames(seq_dir)
    if fps is not None:
        reader.fps = reader.source_fps = float(fps)
    if reader.frame_count != len(seq.items):
        reader.close()
        raise VideoError(f"{seq.root}: {reader.frame_count} frames in its image folder but {len(seq.items)} numbered")
    scorers: dict[str, metrics.SequenceScorer] = {}
    ms: dict[str, float] = {}

    def score(item: SegmentedFrame) -> None:
        seq_item = seq.items[item.index]
        label = None
        if seq_item.number in numbers:
            label = read_label(seq_item.label)
            if label.shape != item.frame.shape[:2]:
                raise VideoError(f"{seq_item.label}: mask size {label.shape[::-1]} differs from its frame's")
        for name, prob in item.probs.items():
            scorer = scorers.setdefault(name, metrics.SequenceScorer(first, last, seq.roi, boundary_tolerance))
            scorer.update(seq_item.number, item.frame, prob > threshold, label)
            ms[name] = ms.get(name, 0.0) + item.ms[name]

    result = _run(
        reader, segmenters, out_dir, plate=plate, checkpoint=checkpoint, step=1, save_pngs=save_pngs,
        side_by_side=side_by_side, tile_width=tile_width, threshold=threshold, progress=progress,
        extras=extras or ExtraOutputs(), on_frame=score, following=following,
    )  # fmt: skip
    described = plate if isinstance(plate, (str, Path)) or plate is None else f"array {tuple(np.shape(plate))}"
    rows: list[dict[str, Any]] = []
    for name, scorer in scorers.items():
        row = {
            "sequence": seq.name, "segmenter": name, "frames": len(scored), **scorer.result(),
            "ms_per_frame": ms[name] / len(seq.items),
        }  # fmt: skip
        extra = {
            "frames_run": len(seq.items), "first_frame": first, "last_frame": last, "skip_first": skip,
            "threshold": threshold, "plate": None if described is None else str(described), "path": str(seq.root),
        }  # fmt: skip
        rows.append(SequenceResult({k: row[k] for k in RESULT_KEYS} | extra, frames=scorer.frames, masks={}))
    return ScoredResult(result, rows)


def mask_video(
    source: str | Path,
    segmenter: str | SegmenterLike,
    out_path: str | Path,
    *,
    overlay_path: str | Path | None = None,
    plate: str | Path | np.ndarray | None = None,
    checkpoint: str | Path | None = None,
    max_frames: int | None = None,
    step: int = 1,
    threshold: float = 0.5,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    """Write one method's mask video to ``out_path`` (and its overlay video to ``overlay_path`` if given).

    One method into files the caller names: same reading, timing and rendering as :func:`segment_video`.
    """
    reader = open_frames(source, step=step, max_frames=max_frames)
    try:
        (seg,) = resolve_segmenters(segmenter, plate=plate, checkpoint=checkpoint)
    except BaseException:
        reader.close()
        raise
    (name,) = unique_names([seg])
    timer = WarmMean()
    mask_w = H264Writer(out_path, reader.fps)
    over_w = H264Writer(overlay_path, reader.fps) if overlay_path is not None else None
    done = 0
    try:
        with pipeline(reader, [seg]) as items:
            for item in items:
                prob = item.probs[name]
                timer.add(item.ms[name])
                mask_w.write(mask_image(prob, threshold))
                if over_w is not None:
                    over_w.write(overlay(item.frame, prob, threshold=threshold))
                done += 1
                if progress is not None:
                    progress(done, reader.frame_count)
    finally:
        mask_w.close()
        if over_w is not None:
            over_w.close()
        reader.close()
        _close_created(segmenter, [seg])
    return MethodOutput(
        name=name,
        mask_video=Path(out_path),
        overlay_video=Path(overlay_path) if overlay_path is not None else None,
        masks_zip=None,
        ms_per_frame=timer.mean,
        frames=done,
    )
