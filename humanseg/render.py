"""Pictures of masks: binary mask image, label overlay (tint + contour), captioned side-by-side grid, CDnet
ground-truth image and the benchmark montage (frame | ground truth | each method's mask).

All functions take and return RGB ``uint8`` arrays; text is drawn with OpenCV's built-in Hershey font so no
font files are needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from humanseg import metrics
from humanseg.video import SequenceItem, mask_to_u8, read_label, to_rgb

CAPTION_BG = (24, 24, 24)
CAPTION_FG = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _foreground(prob: np.ndarray, threshold: float) -> np.ndarray:
    return mask_to_u8(prob, threshold) > 0


def mask_image(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """A probability (or bool / uint8 0-255) mask as an RGB image: white person on black."""
    m = mask_to_u8(prob, threshold)
    return np.ascontiguousarray(np.repeat(m[:, :, None], 3, axis=2))


def overlay(
    frame: np.ndarray,
    prob: np.ndarray,
    color: tuple[int, int, int] = (255, 40, 40),
    alpha: float = 0.45,
    threshold: float = 0.5,
) -> np.ndarray:
    """The label overlay: person pixels tinted with ``color`` at ``alpha``, their outline drawn in solid ``color``.

    The outline is the mask's inner boundary (2 px), so only pixels inside the mask change; the rest of the
    frame is returned untouched.
    """
    rgb = to_rgb(frame)
    fg = _foreground(prob, threshold)
    if fg.shape != rgb.shape[:2]:
        raise ValueError(f"mask shape {fg.shape} does not match frame shape {rgb.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = rgb.copy()
    if not fg.any():
        return out
    tint = np.asarray(color, dtype=np.float32)
    out[fg] = (rgb[fg].astype(np.float32) * (1.0 - alpha) + tint * alpha + 0.5).astype(np.uint8)
    # Inner boundary: mask pixels within 2 px of background (border of the frame counts as background).
    fg_u8 = fg.astype(np.uint8)
    eroded = cv2.erode(fg_u8, np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    edge = fg & (eroded == 0)
    out[edge] = np.asarray(color, dtype=np.uint8)
    return out


def _fit_text(text: str, width: int, max_height: int) -> tuple[float, int]:
    """Largest font scale (and thickness) at which ``text`` fits ``width`` and ``max_height`` pixels."""
    scale = max_height / 30.0  # Hershey simplex is ~22 px tall at scale 1 (+ baseline)
    (tw, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
    if tw > width and tw > 0:
        scale *= width / tw
    scale = max(scale, 0.25)
    return scale, 1 if scale < 0.8 else 2


def caption(tile: np.ndarray, text: str, height: int | None = None) -> np.ndarray:
    """Put a dark caption bar with ``text`` above ``tile``; returns the taller RGB image.

    ``height`` is the bar height in pixels (default: scales with the tile width, 18-40 px). Long text is
    shrunk to fit the tile width.
    """
    rgb = to_rgb(tile)
    h, w = rgb.shape[:2]
    bar_h = height if height is not None else int(np.clip(w / 16, 18, 40))
    bar = np.empty((bar_h, w, 3), np.uint8)
    bar[:] = CAPTION_BG
    if text:
        pad = max(2, bar_h // 6)
        scale, thick = _fit_text(text, w - 2 * pad, bar_h - 2 * pad)
        (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, thick)
        y = (bar_h + th) // 2
        cv2.putText(bar, text, (pad, y), _FONT, scale, CAPTION_FG, thick, cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([bar, rgb], axis=0))


def grid(
    tiles: Sequence[np.ndarray],
    captions: Sequence[str] | None = None,
    columns: int | None = None,
    caption_height: int | None = None,
) -> np.ndarray:
    """Lay tiles out in a grid, each with its caption bar; returns one RGB uint8 image.

    Tiles are resized to the first tile's size. ``columns`` defaults to all in one row for up to 4 tiles,
    else the smallest count that makes a roughly square grid. Empty cells are black.
    """
    if not tiles:
        raise ValueError("grid needs at least one tile")
    if captions is not None and len(captions) != len(tiles):
        raise ValueError(f"got {len(captions)} captions for {len(tiles)} tiles; give one caption per tile")
    n = len(tiles)
    if columns is None:
        columns = n if n <= 4 else math.ceil(math.sqrt(n))
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    rows = math.ceil(n / columns)
    first = to_rgb(tiles[0])
    th, tw = first.shape[:2]
    cells = []
    for i, tile in enumerate(tiles):
        rgb = to_rgb(tile)
        if rgb.shape[:2] != (th, tw):
            rgb = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
        cells.append(caption(rgb, captions[i], caption_height) if captions is not None else rgb)
    ch, cw = cells[0].shape[:2]
    out = np.zeros((rows * ch, columns * cw, 3), np.uint8)
    for i, cell in enumerate(cells):
        r, c = divmod(i, columns)
        out[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = cell
    return out


def label_image(label: np.ndarray, roi: np.ndarray | None = None) -> np.ndarray:
    """A CDnet ground-truth label as RGB: person white, hard shadow dark grey, unscored (unknown motion, outside
    the ROI) mid grey, background black."""
    out = np.zeros((*label.shape, 3), np.uint8)
    out[label == metrics.POSITIVE] = 255
    out[label == metrics.SHADOW] = 60
    unscored = np.isin(label, metrics.NOT_SCORED)
    if roi is not None:
        unscored |= ~roi
    out[unscored] = 128
    return out


def montage_picks(items: Sequence[SequenceItem], rows: int) -> list[SequenceItem]:
    """``rows`` labelled items spread evenly over those whose ground truth shows a person (all when none does)."""
    items = list(items)
    with_person = [it for it in items if (read_label(it.label) == metrics.POSITIVE).any()]
    pool = with_person or items
    return [pool[i] for i in np.unique(np.linspace(0, len(pool) - 1, min(rows, len(pool))).round().astype(int))]


@dataclass
class MontageRow:
    """One row of a montage: frame ``number``, its RGB image and CDnet label, and per method (in column order)
    its binary mask with the F-measure it scored on this frame."""

    number: int
    frame: np.ndarray
    label: np.ndarray
    masks: Mapping[str, tuple[np.ndarray, float]]


def montage(
    rows: Sequence[MontageRow],
    roi: np.ndarray | None = None,
    *,
    tile_width: int = 256,
    min_tile_width: int = 160,
) -> np.ndarray:
    """Columns frame | ground truth | each method's mask, captioned with the method and its F-measure, one row per
    :class:`MontageRow`. Tiles are ``min_tile_width``..``tile_width`` pixels wide; returns one RGB image."""
    if not rows:
        raise ValueError("a montage needs at least one row")
    tiles, captions = [], []
    for row in rows:
        frame = row.frame
        h, w = frame.shape[:2]
        # grid resizes every tile to the first one's size: big frames shrink, tiny ones grow so captions fit.
        width = min(max(w, min_tile_width), tile_width)
        if width != w:
            size = (width, max(1, round(h * width / w)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if width < w else cv2.INTER_NEAREST)
        tiles += [frame, label_image(row.label, roi)]
        captions += [f"frame {row.number}", "ground truth"]
        for method, (mask, f) in row.masks.items():
            tiles.append(mask_image(mask))
            captions.append(f"{method} F={f:.2f}")
    return grid(tiles, captions, columns=2 + len(rows[0].masks))
