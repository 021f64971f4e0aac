"""Run segmenters over a video: mask videos, overlay videos, a captioned side-by-side video and PNG zips.

A chain of iterators: frames are read once (:func:`humanseg.video.open_frames`), every segmenter runs on each
frame (:func:`segment_frames`, timed per method), and the outputs are composed and written frame by frame, so
memory stays flat however long the clip. The CLI (`python -m humanseg segment`) and the app call the same
functions here.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from humanseg.render import grid, mask_image, overlay
from humanseg.video import H264Writer, PngMaskWriter, VideoError, open_frames, read_image, zip_folder

ProgressFn = Callable[[int, "int | None"], None]


class SegmenterLike(Protocol):
    """What this module needs of a segmenter (see humanseg.segmenters.Segmenter)."""

    name: str

    def segment(self, frame: np.ndarray) -> np.ndarray: ...


@dataclass
class SegmentedFrame:
    """One frame with each method's probability mask (float32 H x W) and the time it took (ms)."""

    index: int
    frame: np.ndarray
    probs: dict[str, np.ndarray]
    ms: dict[str, float]


@dataclass
class MethodOutput:
    """Files and speed of one method. ``ms_per_frame`` is the mean segment() time, first (warm-up) frame excluded."""

    name: str
    mask_video: Path
    overlay_video: Path | None
    masks_zip: Path | None
    ms_per_frame: float
    frames: int


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


class _MeanTimer:
    """Running mean of per-frame milliseconds that ignores the first sample (lazy model loading, JIT warm-up)."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.total = 0.0
        self.count = 0

    def add(self, ms: float) -> None:
        if self.first is None:
            self.first = ms
        else:
            self.total += ms
            self.count += 1

    @property
    def mean(self) -> float:
        if self.count:
            return self.total / self.count
        return self.first if self.first is not None else 0.0


def safe_filename(name: str) -> str:
    """A method name as a file-name stem (anything but letters, digits, '.', '_' and '-' becomes '_')."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return stem or "method"


def _options_for(name: str, plate: np.ndarray | None, checkpoint: str | Path | None) -> dict[str, Any]:
    """Only the options backend ``name`` accepts: `--plate` given for a plate-diff vs mog2 comparison must not
    make mog2 fail. Unknown names fall through to ``create_segmenter``, whose error lists the valid ones."""
    from humanseg.segmenters import REGISTRY, accepted_options

    accepted = accepted_options(name) if name in REGISTRY else []
    kwargs: dict[str, Any] = {}
    if plate is not None and "plate" in accepted:
        kwargs["plate"] = plate
    if checkpoint is not None and "checkpoint" in accepted:
        kwargs["checkpoint"] = checkpoint
    return kwargs


def resolve_segmenters(
    segmenters: str | SegmenterLike | Iterable[str | SegmenterLike],
    *,
    plate: str | Path | np.ndarray | None = None,
    checkpoint: str | Path | None = None,
) -> list[SegmenterLike]:
    """Registry names and/or ready segmenter instances -> instances (names built with ``create_segmenter``).

    ``plate`` (an image path or RGB array of the empty scene) and ``checkpoint`` are handed only to backends
    that take them. A plate or checkpoint that no requested backend uses is an error, not silently ignored.
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

                kwargs = _options_for(item, plate_arr, checkpoint)
                used_plate |= "plate" in kwargs
                used_ckpt |= "checkpoint" in kwargs
                out.append(create_segmenter(item, **kwargs))
            elif hasattr(item, "segment") and hasattr(item, "name"):
                out.append(item)
            else:
                raise ValueError(f"expected a segmenter name or an object with .name and .segment(frame), got {item!r}")
        if names and plate is not None and not used_plate:
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


def _unique_names(segmenters: Sequence[SegmenterLike]) -> list[str]:
    """Method labels, suffixed _2, _3 ... where the same backend appears more than once."""
    seen: dict[str, int] = {}
    names = []
    for seg in segmenters:
        base = str(seg.name)
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


def segment_frames(frames: Iterable[np.ndarray], segmenters: Sequence[SegmenterLike]) -> Iterator[SegmentedFrame]:
    """Run every segmenter on every frame; yields each frame with its masks and per-method milliseconds.

    Stateful segmenters are ``reset()`` first, so a run starts from a clean model of the scene.
    """
    names = _unique_names(segmenters)
    for seg in segmenters:
        if hasattr(seg, "reset"):
            seg.reset()
    for index, frame in enumerate(frames):
        probs: dict[str, np.ndarray] = {}
        ms: dict[str, float] = {}
        for name, seg in zip(names, segmenters, strict=True):
            t0 = time.perf_counter()
            mask = seg.segment(frame)
            ms[name] = (time.perf_counter() - t0) * 1000.0
            probs[name] = _as_prob(mask, frame, name)
        yield SegmentedFrame(index, frame, probs, ms)


def _fit_width(frame: np.ndarray, max_width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if w <= max_width:
        return frame
    new_h = max(2, round(h * max_width / w))
    return cv2.resize(frame, (max_width, new_h), interpolation=cv2.INTER_AREA)


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
    progress: ProgressFn | None = None,
) -> SegmentResult:
    """Segment a video (or image folder) with one or more methods and write, in ``out_dir``:

    - ``<name>_mask.mp4`` (white person on black) and ``<name>_overlay.mp4`` (tinted, outlined) per method,
    - ``<name>_masks.zip`` of ``<name>_masks/NNNNNN.png`` (0/255) per method when ``save_pngs``,
    - ``side_by_side.mp4``: input | each method's overlay, captioned "name  NN ms/frame" (running mean),
      each tile scaled to at most ``tile_width`` pixels wide.

    Frames are read once and streamed. ``progress(done, total)`` is called after each frame (total may be None).
    Returns the paths, frame count and each method's mean ms/frame (first frame excluded as warm-up).
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    reader = open_frames(source, step=step, max_frames=max_frames)
    writers: list[H264Writer] = []
    segs: list[SegmenterLike] = []
    try:
        plate_arr = read_image(plate) if isinstance(plate, (str, Path)) else plate
        if plate_arr is not None and (plate_arr.shape[1], plate_arr.shape[0]) != reader.size:
            shown = plate if isinstance(plate, (str, Path)) else "(array)"
            raise VideoError(
                f"plate {shown} is {plate_arr.shape[1]}x{plate_arr.shape[0]} but {reader.source} is "
                f"{reader.size[0]}x{reader.size[1]}; use an empty-scene image from this camera at this size"
            )
        segs = resolve_segmenters(segmenters, plate=plate_arr, checkpoint=checkpoint)
        names = _unique_names(segs)
        out.mkdir(parents=True, exist_ok=True)
        stems = {n: safe_filename(n) for n in names}
        mask_w = {n: H264Writer(out / f"{stems[n]}_mask.mp4", reader.fps) for n in names}
        over_w = {n: H264Writer(out / f"{stems[n]}_overlay.mp4", reader.fps) for n in names}
        writers += [*mask_w.values(), *over_w.values()]
        sbs_w = H264Writer(out / "side_by_side.mp4", reader.fps) if side_by_side else None
        if sbs_w is not None:
            writers.append(sbs_w)
        png_w: dict[str, PngMaskWriter] = {}
        if save_pngs:
            for n in names:
                folder = out / f"{stems[n]}_masks"
                if folder.exists():
                    shutil.rmtree(folder)  # stale masks from an earlier, longer run would end up in the zip
                png_w[n] = PngMaskWriter(folder, threshold=threshold)
        timers = {n: _MeanTimer() for n in names}

        done = 0
        for item in segment_frames(reader, segs):
            tiles = [_fit_width(item.frame, tile_width)] if sbs_w is not None else []
            captions = ["input"]
            for n in names:
                prob = item.probs[n]
                timers[n].add(item.ms[n])
                mask_w[n].write(mask_image(prob, threshold))
                over = overlay(item.frame, prob, threshold=threshold)
                over_w[n].write(over)
                if n in png_w:
                    png_w[n].write(prob, item.index * step)
                if sbs_w is not None:
                    tiles.append(_fit_width(over, tile_width))
                    captions.append(f"{n}  {timers[n].mean:.0f} ms/frame")
            if sbs_w is not None:
                sbs_w.write(grid(tiles, captions))
            done += 1
            if progress is not None:
                progress(done, reader.frame_count)
        for w in writers:
            w.close()
        if done == 0:
            raise VideoError(f"{reader.source}: no frames were read")

        methods = {}
        for n in names:
            zip_path = zip_folder(png_w[n].folder, out / f"{stems[n]}_masks.zip") if n in png_w else None
            methods[n] = MethodOutput(
                name=n,
                mask_video=mask_w[n].path,
                overlay_video=over_w[n].path,
                masks_zip=zip_path,
                ms_per_frame=timers[n].mean,
                frames=done,
            )
        return SegmentResult(
            source=Path(source),
            out_dir=out,
            frames=done,
            fps=reader.fps,
            size=reader.size,
            side_by_side=sbs_w.path if sbs_w is not None else None,
            methods=methods,
            seconds=time.perf_counter() - t_start,
        )
    finally:
        for w in writers:
            w.close()
        reader.close()
        _close_created(segmenters, segs)


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

    The single-method path for the app: same reading, timing and rendering as :func:`segment_video`.
    """
    reader = open_frames(source, step=step, max_frames=max_frames)
    try:
        (seg,) = resolve_segmenters(segmenter, plate=plate, checkpoint=checkpoint)
    except BaseException:
        reader.close()
        raise
    (name,) = _unique_names([seg])
    timer = _MeanTimer()
    mask_w = H264Writer(out_path, reader.fps)
    over_w = H264Writer(overlay_path, reader.fps) if overlay_path is not None else None
    done = 0
    try:
        for item in segment_frames(reader, [seg]):
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
