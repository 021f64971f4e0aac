"""Anonymised video: people hidden by blur, pixelation, a flat colour, or the empty scene.

:func:`anonymise_frame` hides one frame's people: the mask (probability > threshold) is grown by a margin, so
hair, fingers and the soft edge a segmenter misses are hidden too, and the hidden area fades into the frame over
the outer half of that margin (a feathered edge, no hard cut-out outline). Pixels outside the grown mask are
returned bit for bit unchanged. :func:`anonymise_video` streams a clip through a segmenter and this function
into a browser-playable H.264 mp4.

Styles: ``blur`` (a strong Gaussian blur), ``pixelate`` (large blocks), ``fill`` (one flat colour), ``erase``
(the site's empty-scene plate, so the video shows the empty scene).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from humanseg.files import atomic_path
from humanseg.segmenters import Segmenter
from humanseg.stages import ThreadedStage
from humanseg.timing import WarmMean
from humanseg.video import H264Writer, VideoError, mask_to_u8, open_frames, read_image, to_rgb

STYLES = ("blur", "pixelate", "fill", "erase")
#: Default growth of each blob, as a share of the blob's height: a person's mask from any segmenter misses hair,
#: fingers and a blurred edge by a few percent of their height, and a margin that scales with the person covers
#: near (large) and far (small) people alike, where a fixed number of pixels would be too much for one or too
#: little for the other.
MARGIN_SHARE = 0.10
#: The smallest default margin in pixels, so that even a far, small person's outline is covered.
MIN_MARGIN_PX = 2
#: Default ``fill`` colour (RGB): mid gray, which reads as "removed" on day and night footage alike.
FILL_COLOUR = (128, 128, 128)
#: Blur strength and pixel-block size as a share of the frame height (4.8 px and 8 px at 240 rows), large
#: enough that a face, about a tenth of a near person's height, keeps no recognisable detail.
BLUR_SIGMA_SHARE = 1 / 50
BLOCK_SHARE = 1 / 30


Box = tuple[int, int, int, int]  # (top, bottom, left, right): rows top..bottom-1, columns left..right-1


def _margin_groups(fg: np.ndarray, margin_px: int | None) -> Iterator[tuple[int, Box, np.ndarray]]:
    """(margin, box, blobs inside the box) for each group of blobs that share a margin: one group for a fixed
    ``margin_px``, else one per distinct per-blob margin (:data:`MARGIN_SHARE` of the blob's height, at least
    :data:`MIN_MARGIN_PX`). The box is the group's bounding box grown by the margin and one pixel, cut to the frame:
    every pixel within the margin of the group lies in it, so the work stays in the box."""
    h, w = fg.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.view(np.uint8), connectivity=8)
    blob_stats = stats[1:]
    if margin_px is not None:
        per_blob = np.full(n - 1, margin_px, dtype=np.int64)
    else:
        per_blob = np.maximum(MIN_MARGIN_PX, np.rint(blob_stats[:, cv2.CC_STAT_HEIGHT] * MARGIN_SHARE)).astype(np.int64)
    for margin in np.unique(per_blob):
        chosen = per_blob == margin
        s = blob_stats[chosen]
        pad = int(margin) + 1
        top = max(0, int(s[:, cv2.CC_STAT_TOP].min()) - pad)
        bottom = min(h, int((s[:, cv2.CC_STAT_TOP] + s[:, cv2.CC_STAT_HEIGHT]).max()) + pad)
        left = max(0, int(s[:, cv2.CC_STAT_LEFT].min()) - pad)
        right = min(w, int((s[:, cv2.CC_STAT_LEFT] + s[:, cv2.CC_STAT_WIDTH]).max()) + pad)
        members = np.zeros(n, dtype=bool)
        members[1:] = chosen
        yield int(margin), (top, bottom, left, right), members[labels[top:bottom, left:right]]


def _weight(fg: np.ndarray, margin_px: int | None) -> tuple[np.ndarray, Box | None]:
    """:func:`hide_weight` of a bool mask, and the box that holds all of its non-zero pixels (None: none)."""
    weight = np.zeros(fg.shape, dtype=np.float32)
    boxes = []
    for margin, (top, bottom, left, right), blobs in _margin_groups(fg, margin_px):
        if margin == 0:
            ramp = blobs.astype(np.float32)
        else:
            # Euclidean distance of every pixel to the nearest pixel of these blobs (0 on them).
            dist = cv2.distanceTransform((~blobs).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            ramp = np.clip((margin - dist) / (margin / 2.0), 0.0, 1.0)
        np.maximum(weight[top:bottom, left:right], ramp, out=weight[top:bottom, left:right])
        boxes.append((top, bottom, left, right))
    if not boxes:
        return weight, None
    tops, bottoms, lefts, rights = zip(*boxes, strict=True)
    return weight, (min(tops), max(bottoms), min(lefts), max(rights))


def hide_weight(prob: np.ndarray, *, margin_px: int | None = None, threshold: float = 0.5) -> np.ndarray:
    """float32 H x W in [0, 1]: how much of each pixel :func:`anonymise_frame` replaces.

    1 on the mask and up to half the margin around it, then falling linearly to 0 at the margin's edge; 0 from
    the margin's edge on (those pixels stay as they are). ``margin_px`` None: each blob's own margin,
    :data:`MARGIN_SHARE` of its height and at least :data:`MIN_MARGIN_PX`; 0: the mask alone, hard-edged.
    """
    if margin_px is not None and margin_px < 0:
        raise ValueError(f"margin must be >= 0 pixels, got {margin_px}")
    return _weight(mask_to_u8(prob, threshold) > 0, margin_px)[0]


def _hidden(
    frame: np.ndarray, box: Box, style: str, colour: tuple[int, int, int], plate: np.ndarray | None
) -> np.ndarray:
    """The ``box`` of the frame as the style shows people."""
    top, bottom, left, right = box
    h, w = frame.shape[:2]
    if style == "blur":
        sigma = max(2.0, h * BLUR_SIGMA_SHARE)
        pad = math.ceil(3 * sigma)  # the Gaussian's reach: pixels beyond it do not change the box
        t, b, lft, r = max(0, top - pad), min(h, bottom + pad), max(0, left - pad), min(w, right + pad)
        region = frame[t:b, lft:r]
        # Blurred at 1/f of the size with sigma/f, then scaled back: the same look at about 1/f^2 of the cost.
        f = max(1, int(sigma // 2))
        small = cv2.resize(region, (-(-(r - lft) // f), -(-(b - t) // f)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / f, borderType=cv2.BORDER_REFLECT)
        blurred = cv2.resize(small, (r - lft, b - t), interpolation=cv2.INTER_LINEAR)
        return blurred[top - t : bottom - t, left - lft : right - lft]
    if style == "pixelate":
        block = max(4, round(h * BLOCK_SHARE))
        # Blocks on the frame's grid (not the box's), so they stay put from frame to frame as a person moves.
        t, lft = top // block * block, left // block * block
        b, r = min(h, -(-bottom // block) * block), min(w, -(-right // block) * block)
        region = frame[t:b, lft:r]
        small = cv2.resize(region, (-(-(r - lft) // block), -(-(b - t) // block)), interpolation=cv2.INTER_AREA)
        blocks = np.repeat(np.repeat(small, block, axis=0), block, axis=1)
        return blocks[top - t : bottom - t, left - lft : right - lft]
    if style == "fill":
        return np.broadcast_to(np.asarray(colour, dtype=np.uint8), (bottom - top, right - left, 3))
    if plate is None:
        raise _missing_plate()
    if plate.shape != frame.shape:
        raise ValueError(
            f"plate is {plate.shape[1]}x{plate.shape[0]} but the frame is {w}x{h}; use an empty-scene image from "
            "this camera at this size"
        )
    return plate[top:bottom, left:right]


def _missing_plate() -> ValueError:
    return ValueError(
        "style 'erase' needs the site's empty-scene plate: pass --plate IMAGE (plate= in Python), or use a "
        "segmenter that has one (plate-diff, a plate model's checkpoint)"
    )


def check_style(style: str) -> None:
    """Raise ``ValueError`` naming the styles when ``style`` is not one of :data:`STYLES`."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")


def _check_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    values = tuple(int(c) for c in colour)
    if len(values) != 3 or not all(0 <= c <= 255 for c in values):
        raise ValueError(f"colour must be three values R,G,B in 0..255, got {colour!r}")
    return values  # type: ignore[return-value]


def anonymise_frame(
    frame: np.ndarray,
    prob: np.ndarray,
    style: str,
    *,
    margin_px: int | None = None,
    plate: np.ndarray | None = None,
    threshold: float = 0.5,
    colour: tuple[int, int, int] = FILL_COLOUR,
) -> np.ndarray:
    """``frame`` (RGB uint8) with the people of ``prob`` (H x W probability, bool or uint8 mask) hidden.

    ``style``: one of :data:`STYLES`. ``margin_px``: growth of the mask in pixels (None: each person's own, see
    :func:`hide_weight`). ``plate``: the empty scene (RGB, the frame's size), needed for ``erase``. ``colour``:
    the ``fill`` colour. Pixels where :func:`hide_weight` is 0 are returned bit for bit unchanged.
    """
    check_style(style)
    colour = _check_colour(colour)
    if margin_px is not None and margin_px < 0:
        raise ValueError(f"margin must be >= 0 pixels, got {margin_px}")
    rgb = to_rgb(frame)
    if np.shape(prob)[:2] != rgb.shape[:2]:
        raise ValueError(f"mask shape {np.shape(prob)} does not match frame shape {rgb.shape[:2]}")
    if style == "erase" and plate is None:
        raise _missing_plate()
    weight, box = _weight(mask_to_u8(prob, threshold) > 0, margin_px)
    out = rgb.copy()
    if box is None:
        return out
    hidden = _hidden(rgb, box, style, colour, to_rgb(plate, source="plate") if style == "erase" else None)
    top, bottom, left, right = box
    a = weight[top:bottom, left:right]
    touched = a > 0
    region = out[top:bottom, left:right]
    blend = a[touched][:, None]
    # Only the touched pixels are written, so every other pixel is the input's, bit for bit.
    region[touched] = (region[touched] * (1.0 - blend) + hidden[touched] * blend + 0.5).astype(np.uint8)
    return out


@dataclass(frozen=True)
class AnonymiseResult:
    """What :func:`anonymise_video` wrote: the video, its frame count and size (width, height), the segmenter's
    label, and the mean milliseconds per frame of segmenting and of hiding (first frame excluded as warm-up)."""

    path: Path
    frames: int
    size: tuple[int, int]
    segmenter: str
    segment_ms: float
    anonymise_ms: float
    seconds: float


def _label(seg: Segmenter) -> str:
    return str(getattr(seg, "label", None) or seg.name)


def has_plate(seg: Segmenter) -> bool:
    """Whether a segmenter holds an empty scene: plate-diff (given plate or running median), a plate model."""
    return callable(getattr(seg, "background", None)) or getattr(seg, "plate", None) is not None


def segmenter_plate(seg: Segmenter, size: tuple[int, int]) -> np.ndarray | None:
    """The empty scene a segmenter holds, as RGB ``uint8`` of ``size`` (width, height), or None: plate-diff's
    current plate (the given one, or the running median of the frames so far), else a plate model's ``plate``
    (resized when the model keeps it at another size). Read it after segmenting a frame, for ``erase``."""
    background = getattr(seg, "background", None)
    found: Any = background() if callable(background) else getattr(seg, "plate", None)
    if found is None:
        return None
    found = to_rgb(np.asarray(found), source="segmenter plate")
    if (found.shape[1], found.shape[0]) != tuple(size):
        found = cv2.resize(found, tuple(size), interpolation=cv2.INTER_AREA)
    return found


def _segmenter(
    segmenter: str | Segmenter, plate: np.ndarray | None, checkpoint: str | Path | None, stack: ExitStack
) -> Segmenter:
    """The segmenter: built from a name (given the plate and checkpoint when its class takes them) and closed
    with ``stack``; an instance the caller passed is used as it is and left open."""
    if not isinstance(segmenter, str):
        if checkpoint is not None:
            raise ValueError("a checkpoint goes with a segmenter name (segnet), not with a ready segmenter instance")
        return segmenter
    from humanseg.segmenters import capabilities, create_segmenter

    caps = capabilities(segmenter)
    if checkpoint is not None and not caps.takes_checkpoint:
        raise ValueError(f"segmenter {segmenter!r} takes no checkpoint; drop --checkpoint or use segnet")
    seg = create_segmenter(
        segmenter, plate=plate if caps.takes_plate else None, checkpoint=checkpoint if caps.takes_checkpoint else None
    )
    if hasattr(seg, "close"):
        stack.callback(seg.close)
    return seg


def _segmented(
    frames: Iterable[np.ndarray], seg: Segmenter, size: tuple[int, int], plates: bool
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None, float]]:
    """(frame, mask, the segmenter's plate after it when ``plates``, ms) per frame, in order: a segmenter that
    ``batches`` gets chunks of its ``batch_size`` (each frame charged an equal share; its plate is fixed), any
    other one frame at a time."""
    batch = max(1, int(getattr(seg, "batch_size", 1))) if getattr(seg, "batches", False) else 1
    it = iter(frames)
    while chunk := list(itertools.islice(it, batch)):
        t0 = time.perf_counter()
        if len(chunk) == 1:
            probs = [seg.segment(chunk[0])]
            ms = (time.perf_counter() - t0) * 1000.0
            yield chunk[0], probs[0], segmenter_plate(seg, size) if plates else None, ms
            continue
        probs = seg.segment_batch(chunk)
        ms = (time.perf_counter() - t0) * 1000.0 / len(chunk)
        scene = segmenter_plate(seg, size) if plates else None
        for frame, prob in zip(chunk, probs, strict=True):
            yield frame, prob, scene, ms


def _check_plate_use(segmenter: str | Segmenter, style: str) -> None:
    """A plate that neither the segmenter nor the style uses is an error, not silently ignored."""
    if style == "erase":
        return
    if isinstance(segmenter, str):
        from humanseg.segmenters import capabilities

        if capabilities(segmenter).takes_plate:
            return
    raise ValueError(
        f"a plate was given but neither segmenter {segmenter if isinstance(segmenter, str) else _label(segmenter)!r} "
        f"nor style {style!r} uses one; drop --plate, or use --style erase or a plate method such as plate-diff"
    )


def anonymise_video(
    source: str | Path,
    segmenter: str | Segmenter,
    out_path: str | Path,
    style: str,
    *,
    plate: str | Path | np.ndarray | None = None,
    checkpoint: str | Path | None = None,
    margin_px: int | None = None,
    threshold: float = 0.5,
    colour: tuple[int, int, int] = FILL_COLOUR,
    max_frames: int | None = None,
    step: int = 1,
    progress: bool = False,
) -> AnonymiseResult:
    """Write ``source`` (video file or image folder) with its people hidden to ``out_path``, an H.264 mp4 that
    browsers play. The video only: audio, if the clip has any, is dropped.

    ``segmenter``: a registry name (built with ``plate``/``checkpoint`` when its class takes them) or a ready
    instance. ``plate``: the empty scene (image path or RGB array, the frame size); ``erase`` uses it, else the
    segmenter's own plate (plate-diff, plate models), else it stops with an error naming the plate option.
    Other options as :func:`anonymise_frame`; ``max_frames`` and ``step`` as
    :func:`humanseg.video.open_frames`; ``progress`` shows a tqdm bar. The video is written under a temporary
    name in the same folder and renamed when complete, so a failure half way leaves nothing under ``out_path``
    (and an earlier file there untouched).
    """
    from humanseg.progress import bar

    check_style(style)
    colour = _check_colour(colour)
    if margin_px is not None and margin_px < 0:
        raise ValueError(f"margin must be >= 0 pixels, got {margin_px}")
    t_start = time.perf_counter()
    plate_arr = None
    if plate is not None:
        _check_plate_use(segmenter, style)
        plate_arr = to_rgb(read_image(plate) if isinstance(plate, (str, Path)) else plate, source="plate")
    seg_ms, hide_ms = WarmMean(), WarmMean()
    # Unwound in reverse: the writer is closed before the temporary file is renamed (or removed, on an error),
    # then the bar, the segmenter and the reader are closed.
    with ExitStack() as stack:
        reader = stack.enter_context(open_frames(source, step=step, max_frames=max_frames))
        if plate_arr is not None and (plate_arr.shape[1], plate_arr.shape[0]) != reader.size:
            raise VideoError(
                f"plate is {plate_arr.shape[1]}x{plate_arr.shape[0]} but {reader.source} is "
                f"{reader.size[0]}x{reader.size[1]}; use an empty-scene image from this camera at this size"
            )
        seg = _segmenter(segmenter, plate_arr, checkpoint, stack)
        if style == "erase" and plate_arr is None and not has_plate(seg):
            raise _missing_plate()
        name = _label(seg)
        if hasattr(seg, "reset"):
            seg.reset()  # a stateful backend starts from a clean model of this scene
        shown = stack.enter_context(bar(total=reader.frame_count, desc="anonymise", unit="frame", enabled=progress))
        tmp = stack.enter_context(atomic_path(out_path))
        writer = stack.enter_context(H264Writer(tmp, reader.fps))
        # Decoding and segmenting run in threads of their own, ahead of hiding and encoding here (bounded queues;
        # both threads end before the writer closes). erase without a given plate takes the segmenter's plate as
        # it was when it segmented each frame (a running median moves on meanwhile).
        own_plate = style == "erase" and plate_arr is None
        decoded = stack.enter_context(ThreadedStage(reader, name="decode"))
        stage = _segmented(decoded, seg, reader.size, own_plate)
        for frame, prob, seg_plate, ms in stack.enter_context(ThreadedStage(stage, name="segment")):
            t1 = time.perf_counter()
            frame_plate = seg_plate if own_plate else plate_arr
            if style == "erase" and frame_plate is None:
                raise _missing_plate()
            out = anonymise_frame(
                frame, prob, style, margin_px=margin_px, plate=frame_plate, threshold=threshold, colour=colour
            )
            seg_ms.add(ms)
            hide_ms.add((time.perf_counter() - t1) * 1000.0)
            writer.write(out)
            shown.update(1)
        if writer.frames_written == 0:
            raise VideoError(f"{reader.source}: no frames were read")
    return AnonymiseResult(
        path=Path(out_path), frames=writer.frames_written, size=reader.size, segmenter=name, segment_ms=seg_ms.mean,
        anonymise_ms=hide_ms.mean, seconds=time.perf_counter() - t_start,
    )  # fmt: skip
