"""Site plates: background images of the fixed camera's empty scene.

Plates come from still images of the empty site, or are estimated from a busy clip (people walking through) by
a per-pixel temporal median over sampled frames, refined by a second median that leaves out the pixels that
differ from the first estimate (where people were), so a pixel crossed by people in up to ~70% of the samples
still gets its background value. A long clip can give several plates, one per segment, to follow lighting
changes. Frames are streamed and sampled: a long clip is never held in memory.

A person who stands in one place for most of the clip defeats any temporal statistic; a generic person
segmenter (``people``, e.g. MediaPipe) marks people in each sampled frame and those pixels are left out, so the
spot gets its background from the frames where it is seen empty (SBI CaVignal: plate-difference F 0.42 with
the median plate, 0.97 with people left out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from humanseg.files import atomic_write
from humanseg.plate import changed
from humanseg.progress import bar
from humanseg.segmenters.base import Segmenter
from humanseg.video import IMAGE_SUFFIXES, open_frames, read_image

if TYPE_CHECKING:
    from tqdm import tqdm

DEFAULT_SAMPLES = 40  # frames per plate: enough for a stable median, small enough to hold in memory
# Grey levels (largest channel, humanseg.plate.changed): a pixel differing more than this from the first median is
# "moving"; below silhouette extraction's 30, since leaving out a background sample costs less than keeping a person.
DEFAULT_THRESHOLD = 25
PEOPLE_GROW = 0.035  # person masks grow by this share of the frame height (about 5 px at 136 rows)
_TILE_BYTES = 64 << 20  # median over row tiles to bound the float working memory


def _tiles(height: int, bytes_per_row: int) -> Iterator[slice]:
    rows = max(1, _TILE_BYTES // max(bytes_per_row, 1))
    for y in range(0, height, rows):
        yield slice(y, min(y + rows, height))


def _masked_median(stack: np.ndarray, excluded: np.ndarray | None, fallback: np.ndarray | None) -> np.ndarray:
    """Per-pixel median over the samples not ``excluded`` (N x H x W bool); pixels with no sample left take
    ``fallback`` (or the plain median when ``fallback`` is None)."""
    n, h, w, _ = stack.shape
    out = np.empty((h, w, 3), np.uint8)
    sentinel = np.uint16(1024)  # sorts after every 8-bit value
    for rows in _tiles(h, n * w * 3 * 2 * 2):
        vals = stack[:, rows].astype(np.uint16)
        excl = excluded[:, rows] if excluded is not None else np.zeros(vals.shape[:3], bool)
        vals[excl] = sentinel
        vals.sort(axis=0)
        valid = (n - excl.sum(axis=0))[None, :, :, None]  # 1 x h x w x 1
        shape = (1, *vals.shape[1:])
        lo = np.broadcast_to(np.clip((valid - 1) // 2, 0, n - 1), shape)
        hi = np.broadcast_to(np.clip(valid // 2, 0, n - 1), shape)
        med = (np.take_along_axis(vals, lo, 0)[0].astype(np.float32) + np.take_along_axis(vals, hi, 0)[0]) / 2
        tile = np.clip(med + 0.5, 0, 255).astype(np.uint8)
        none = valid[0, :, :, 0] == 0
        if none.any():
            tile[none] = (fallback[rows] if fallback is not None
                          else np.clip(np.median(stack[:, rows], axis=0) + 0.5, 0, 255).astype(np.uint8))[none]
        out[rows] = tile
    return out


def median_plate(frames: np.ndarray | list[np.ndarray], *, threshold: float = DEFAULT_THRESHOLD, dilate: int = 3,
                 mode_tau: int = 10, mode_margin: float = 0.2, refine: bool = True,
                 people: np.ndarray | None = None) -> np.ndarray:
    """Background plate from frames of a static camera (N x H x W x 3 uint8, or a list of frames).

    1. First estimate: the per-pixel temporal median, except where the densest cluster of grey values
       (samples within ``mode_tau`` levels of each other) holds clearly more samples than the median's cluster
       (by ``mode_margin`` * N): there a person lingered over most samples, and the background is the value
       that recurs while the person's colours keep changing.
    2. Refinement: per frame, pixels whose largest channel difference to the first estimate exceeds
       ``threshold`` grey levels (grown by ``dilate`` px for soft edges) are left out, and the median of the
       remaining samples is taken; pixels left out in every frame keep the first estimate.

    ``people`` (N x H x W bool, optional): pixels a person segmenter marked as people in each frame. They are
    left out of both steps, so a person who stands still in one place for most of the clip (which no temporal
    statistic can remove) drops out of the plate as long as the spot is seen empty in some frames.
    ``refine=False`` gives the plain temporal median (for comparison).
    """
    stack = np.asarray(frames) if not isinstance(frames, np.ndarray) else frames
    if stack.ndim != 4 or stack.shape[-1] != 3 or stack.dtype != np.uint8:
        raise ValueError(f"frames must be N x H x W x 3 uint8, got {stack.dtype} {stack.shape}")
    n, h, w, _ = stack.shape
    if n == 0:
        raise ValueError("no frames to estimate a plate from")
    if people is not None:
        people = np.asarray(people, bool)
        if people.shape != (n, h, w):
            raise ValueError(f"people masks must be {n} x {h} x {w} (one per frame), got {people.shape}")
    median = _masked_median(stack, people, None)
    if not refine or n < 3:
        return median

    first = median.copy()
    gray_med = cv2.cvtColor(median, cv2.COLOR_RGB2GRAY).astype(np.int16)
    for rows in _tiles(h, n * w * 2 * 3):
        gray = np.stack([cv2.cvtColor(np.ascontiguousarray(f[rows]), cv2.COLOR_RGB2GRAY) for f in stack]).astype(np.int16)
        seen = ~people[:, rows] if people is not None else np.ones(gray.shape, bool)
        support = np.empty(gray.shape, np.int16)  # samples (not people) within mode_tau of sample i, per pixel
        for i in range(n):
            support[i] = ((np.abs(gray - gray[i]) <= mode_tau) & seen).sum(axis=0)
        support[~seen] = -1  # a person's own colour is never the background mode
        best = support.argmax(axis=0)
        gain = support.max(axis=0) - ((np.abs(gray - gray_med[rows]) <= mode_tau) & seen).sum(axis=0)
        use = gain > mode_margin * seen.sum(axis=0)
        if use.any():
            mode = np.take_along_axis(stack[:, rows], best[None, :, :, None].repeat(3, axis=3), 0)[0]
            first[rows][use] = mode[use]

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1)) if dilate > 0 else None
    moving = np.empty((n, h, w), bool)
    for i in range(n):
        diff = changed(stack[i], first, threshold).astype(np.uint8)
        moving[i] = (cv2.dilate(diff, kernel) if kernel is not None else diff).astype(bool)
    if people is not None:
        moving |= people
    return _masked_median(stack, moving, first)


def _sampled_segments(source: str | Path, count: int, samples: int, frames_read: tqdm) -> Iterator[list[np.ndarray]]:
    """Yield ``count`` lists of frames, each sampled evenly from one consecutive segment of the clip; every frame
    read advances the ``frames_read`` bar."""
    with open_frames(source) as probe:
        total = probe.frame_count
    if total is not None:
        if total < count:
            raise ValueError(f"{source}: {total} frames cannot give {count} plates; use --count {max(total, 1)} or less")
        # Skip at read time (image folders never decode skipped files); each segment keeps ~samples frames.
        step = max(1, total // (count * samples))
        reader = open_frames(source, step=step)
        n = reader.frame_count or 0
        frames_read.reset(total=n)
        bounds = [round(s * n / count) for s in range(count + 1)]
        segment, buffer = 0, []
        with reader:
            for i, frame in enumerate(reader):
                while segment < count and i >= bounds[segment + 1]:
                    yield _even(buffer, samples)
                    segment, buffer = segment + 1, []
                buffer.append(frame)
                frames_read.update()
        if segment < count:
            yield _even(buffer, samples)
        return
    # Unknown length (some containers): keep a bounded, evenly thinned buffer and split it at the end.
    keep, stride, seen = [], 1, 0
    with open_frames(source) as reader:
        for i, frame in enumerate(reader):
            if i % stride == 0:
                keep.append((i, frame))
                if len(keep) > 2 * count * samples:
                    stride *= 2
                    keep = [(j, f) for j, f in keep if j % stride == 0]
            seen = i + 1
            frames_read.update()
    if len(keep) < count:
        raise ValueError(f"{source}: {seen} frames cannot give {count} plates; use a smaller --count")
    for s in range(count):
        lo, hi = s * seen / count, (s + 1) * seen / count
        yield _even([f for j, f in keep if lo <= j < hi] or [keep[min(s, len(keep) - 1)][1]], samples)


def _even(frames: list[np.ndarray], samples: int) -> list[np.ndarray]:
    if len(frames) <= samples:
        return frames
    idx = np.linspace(0, len(frames) - 1, samples).round().astype(int)
    return [frames[i] for i in idx]


def people_masker(segmenter: str | Segmenter = "mediapipe", *, threshold: float = 0.5,
                  grow: float = PEOPLE_GROW) -> Callable[[np.ndarray], np.ndarray]:
    """A function frame -> bool person mask from a segmenter (a registry name such as ``"mediapipe"``, or an
    instance), for :func:`estimate_plates`' ``people``. Masks are grown by ``grow`` x frame height (at least
    2 px) so the soft edges of a person do not leak into the plate. A name fails like ``create_segmenter``
    (unknown name, missing model file).
    """
    from humanseg.segmenters import create_segmenter

    seg = create_segmenter(segmenter) if isinstance(segmenter, str) else segmenter

    def mask(frame: np.ndarray) -> np.ndarray:
        r = max(2, round(grow * frame.shape[0]))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        return cv2.dilate((seg.segment(frame) > threshold).astype(np.uint8), kernel).astype(bool)

    return mask


def estimate_plates(source: str | Path, count: int = 1, *, samples: int = DEFAULT_SAMPLES,
                    threshold: float = DEFAULT_THRESHOLD, progress: bool = False,
                    people: Callable[[np.ndarray], np.ndarray] | None = None) -> list[np.ndarray]:
    """Estimate ``count`` clean plates from a clip of the site (video file, image folder or CDnet/DAVIS folder).

    The clip is cut into ``count`` consecutive segments (lighting changes over a long clip) and each plate is
    the motion-masked temporal median of ``samples`` frames spread over its segment. ``progress``: a bar over the
    frames read on stderr (without a total when the clip's length is unknown). ``people`` (frame -> bool
    H x W mask, e.g. :func:`people_masker`) marks people in each sampled frame so that they are left out even
    where they stand still for most of the clip.
    Raises FileNotFoundError for a missing source, ValueError for too few frames or a bad ``count``.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: clip not found; give a video file or a folder of frames of the site")
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    if samples < 3:
        raise ValueError(f"samples must be >= 3 frames per plate, got {samples}")
    plates = []
    with bar(desc="reading frames", unit="frame", enabled=progress) as frames_read:
        for frames in _sampled_segments(path, count, samples, frames_read):  # one segment in memory at a time
            if len(frames) < 3:
                raise ValueError(
                    f"{path}: a segment has only {len(frames)} frame(s); a median plate needs >= 3 per plate: "
                    f"use a longer clip or a smaller --count (now {count})"
                )
            masks = np.stack([people(f) for f in frames]) if people is not None else None
            plates.append(median_plate(np.stack(frames), threshold=threshold, people=masks))
    return plates


def background_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Image files named by ``paths``: image files as given, folders expanded to their images (by name).

    Raises FileNotFoundError naming a missing path or a folder without images.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists():
            raise FileNotFoundError(f"{p}: background image or folder not found")
        if p.is_dir():
            found = [f for f in sorted(p.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
            if not found:
                raise FileNotFoundError(
                    f"{p}: no background images (.png/.jpg) in this folder; make plates with "
                    "`python -m dataset_builder plates VIDEO --out DIR` or give image files of the empty site"
                )
            files.extend(found)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            files.append(p)
        else:
            raise ValueError(f"{p}: not an image file ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                             "for a video, estimate plates first with `python -m dataset_builder plates`")
    if not files:
        raise FileNotFoundError("no background images given; pass plate images or folders of them")
    return files


def load_backgrounds(paths: str | Path | Iterable[str | Path]) -> list[tuple[Path, np.ndarray]]:
    """Import still images of the empty site: ``(path, RGB uint8)`` for every image file under ``paths``."""
    return [(f, read_image(f)) for f in background_files(paths)]


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB (H x W x 3) or gray (H x W) uint8 image."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as PNG")
    return buf.tobytes()


def save_plates(plates: list[np.ndarray], out_dir: str | Path, prefix: str = "plate") -> list[Path]:
    """Write plates as ``<out_dir>/<prefix>000.png ...`` (each file written atomically); returns the paths."""
    if not plates:
        raise ValueError("no plates to save")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, plate in enumerate(plates):
        path = out / f"{prefix}{i:03d}.png"
        atomic_write(path, encode_png(plate))
        paths.append(path)
    return paths


def site_plate(seq_dir: str | Path, out_path: str | Path, people: str | None = None) -> dict[str, str]:
    """Write the site plate of a labelled sequence to ``out_path`` (PNG) and say where it came from.

    The sequence's first ``empty_bg*`` image when present (``"given"``), else the motion-masked temporal median
    of its input frames (``"estimated"``; ground truth is not read), with the pixels the registry segmenter
    ``people`` marks as people left out. Returns ``{"path", "source", "detail"}``.
    """
    from humanseg.video import load_sequence

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
    atomic_write(out_path, encode_png(plate))
    return {"path": str(out_path), "source": source, "detail": detail}


def plate_error(plate: np.ndarray, reference: np.ndarray, *, tolerance: int = 20) -> dict[str, float]:
    """How far a plate is from a reference empty-scene image.

    ``mae``: mean absolute difference over pixels and channels (grey levels); ``pct_off``: percentage of
    pixels whose largest channel difference exceeds ``tolerance`` grey levels.
    """
    if plate.shape != reference.shape:
        raise ValueError(f"plate is {plate.shape}, reference is {reference.shape}; they must have the same size")
    return {
        "mae": float(cv2.absdiff(plate, reference).mean()),
        "pct_off": float(changed(plate, reference, tolerance).mean() * 100.0),
    }
