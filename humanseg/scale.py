"""The working scale: how large a site's frames are made before the network sees them.

A network sees people well in the band of sizes its composites showed it; a camera's people can be any size in
pixels (a 720x576 concourse camera shows people 25-90 px tall, a 240-line corridor camera 50-110 px). Each site
gets one number, the *working scale* (network pixels per frame pixel), chosen from the site's typical person
height so that people reach the network near :data:`TARGET_PERSON_PX` whatever the camera's resolution, and never
enlarged beyond the frame's own pixels (:data:`MAX_SCALE`).

Two ways to run, decided by :func:`tiled`:

- the frame at the working scale fits the network's input (up to :data:`FIT_SLACK` per side): the whole frame is
  resized to the input, as every model did before there was a working scale (composites: the whole plate);
- it is larger: the network runs on input-sized *tiles* of the scaled frame over the places where the plate shows
  a change (nothing else can be a person for a plate model; a mostly static scene costs a few tiles), and the
  composites it was trained on are input-sized windows of the scaled plate.

Morphology radii of the plate rule follow the scale the network sees (:func:`radii_height`), so that a camera
with 3x the pixels and the same people gets the same radii.
"""

from __future__ import annotations

import math

import numpy as np

from humanseg.plate import REFERENCE_HEIGHT

#: Person height (pixels) the network should see: the median person of the development cameras as their models
#: saw them (pedestrians 94 px, HallAndMonitor 76 px at 240 lines).
TARGET_PERSON_PX = 90.0
#: Never enlarge a frame beyond its own pixels for the network: upsampling adds no detail, only cost.
MAX_SCALE = 1.0
#: Where tiles overlap, a tile's pixels this close (px at the working scale) to an edge inside the frame count less
#: than a neighbour's that sees them from further inside (:func:`tile_weights`). A tile's edge cutting a person's
#: head marked a 20 x 25 px block beside it on the padded CaVignal (the maximum of the tiles kept it).
TILE_BLEND = 32
#: A scaled frame up to this much larger than the input (per side) is resized to it whole rather than tiled.
FIT_SLACK = 1.25


def working_scale(person_height: float, target: float = TARGET_PERSON_PX) -> float:
    """Network pixels per frame pixel for a site whose typical person is ``person_height`` px tall."""
    if not (math.isfinite(person_height) and person_height > 0):
        raise ValueError(f"person_height must be a positive number of pixels, got {person_height!r}")
    if not target > 0:
        raise ValueError(f"target person height must be > 0 px, got {target!r}")
    return min(MAX_SCALE, target / person_height)


def working_size(frame_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(height, width) of a ``frame_hw`` frame at ``scale`` (at least 1 x 1)."""
    if not scale > 0:
        raise ValueError(f"working scale must be > 0, got {scale!r}")
    return max(1, round(frame_hw[0] * scale)), max(1, round(frame_hw[1] * scale))


def tiled(frame_hw: tuple[int, int], scale: float | None, input_size: tuple[int, int]) -> bool:
    """Whether the network runs on tiles (the scaled frame is larger than the input by more than
    :data:`FIT_SLACK` on a side); ``scale=None`` (a model without a working scale): never."""
    if scale is None:
        return False
    h, w = working_size(frame_hw, scale)
    return h > FIT_SLACK * input_size[0] or w > FIT_SLACK * input_size[1]


def radii_height(frame_hw: tuple[int, int], scale: float | None, input_size: tuple[int, int]) -> int:
    """The frame height the plate rule's radii are taken at, for morphology at frame resolution: the frame's own
    height when the whole frame is resized to the input (the rule as it always was), else the height whose
    radii match what the network sees at the working scale (:data:`REFERENCE_HEIGHT` lines of network input)."""
    if not tiled(frame_hw, scale, input_size):
        return int(frame_hw[0])
    assert scale is not None
    return max(1, round(REFERENCE_HEIGHT / scale))


def tile_origins(changed: np.ndarray, tile_hw: tuple[int, int], overlap: int = 0) -> list[tuple[int, int]]:
    """Top-left corners (row, column) of ``tile_hw`` tiles that cover every True pixel of ``changed`` (H x W).

    Each connected component's bounding box (boxes that overlap merged into one) is covered by a regular grid of
    the fewest tiles, spread evenly over it (a box smaller than a tile gets one tile centred on it), kept inside
    the frame, neighbours sharing at least ``overlap`` px where the frame leaves room. More tiles than a grid over
    the whole frame: that grid. On a side where the frame is smaller than a tile the corner is 0: the caller pads
    the frame to the tile (see :func:`pad_to_tile`)."""
    th, tw = _checked(changed, tile_hw)
    if not 0 <= overlap < min(th, tw):
        raise ValueError(f"overlap must be 0 to {min(th, tw) - 1} px (less than a tile's side), got {overlap}")
    h, w = changed.shape
    origins: set[tuple[int, int]] = set()
    for x0, y0, x1, y1 in _boxes(changed):
        origins.update((y, x) for y in _spread(y0, y1, th, h, overlap) for x in _spread(x0, x1, tw, w, overlap))
    whole = [(y, x) for y in _spread(0, h, th, h, overlap) for x in _spread(0, w, tw, w, overlap)]
    return whole if len(origins) > len(whole) else sorted(origins)


def fitted_tiles(
    changed: np.ndarray, tile_hw: tuple[int, int], multiple: int = 32, minimum: int = 64
) -> list[tuple[int, int, int, int]]:
    """Tiles ``(row, column, height, width)`` fitted to the changes of ``changed`` (H x W): the cheaper cover.

    Each merged box (as in :func:`tile_origins`) gets on each axis one tile of its own length rounded up to
    ``multiple`` (what the network downsamples by, so no pixel is padded inside it), at least ``minimum`` and at
    most the ``tile_hw`` side, centred on the box and kept inside the frame; on an axis where the box is longer
    than the tile side, input-sized tiles are spread over it as :func:`tile_origins` does. Tiles covering more
    pixels than a grid over the whole frame: that grid. The caller pads a frame smaller than ``tile_hw`` to it."""
    th, tw = _checked(changed, tile_hw)
    if multiple < 1 or minimum < 1:
        raise ValueError(f"multiple and minimum must be >= 1 px, got multiple={multiple}, minimum={minimum}")
    h, w = changed.shape
    tiles: set[tuple[int, int, int, int]] = set()
    for x0, y0, x1, y1 in _boxes(changed):
        rows, cols = _fitted(y0, y1, th, h, multiple, minimum), _fitted(x0, x1, tw, w, multiple, minimum)
        tiles.update((y, x, sh, sw) for y, sh in rows for x, sw in cols)
    whole = [(y, x, th, tw) for y in _spread(0, h, th, h) for x in _spread(0, w, tw, w)]
    return whole if sum(t[2] * t[3] for t in tiles) > th * tw * len(whole) else sorted(tiles)


def tile_weights(
    origin: tuple[int, int], tile_hw: tuple[int, int], canvas_hw: tuple[int, int], ramp: float = TILE_BLEND
) -> np.ndarray:
    """How much each pixel of the tile at ``origin`` (row, column) of size ``tile_hw`` counts where tiles overlap.

    A network sees least of the scene at its tile's edges and there marks the cut-off half of a head or a limb
    as a person (it is trained on people cut by the frame's edge); a tile that overlaps it sees the same pixels
    whole. So a weight is 1 from ``ramp`` px inside the tile, falls linearly to ``1 / (ramp + 1)`` at an edge that
    lies inside the ``canvas_hw`` canvas (a neighbouring tile can see across it), and stays 1 at an edge on the
    canvas border (nothing sees more there); the product of the row and column profiles, so corners count least.
    Never 0: a pixel one tile alone covers keeps that tile's value."""
    if ramp < 0:
        raise ValueError(f"ramp must be >= 0 px, got {ramp!r}")

    def profile(start: int, length: int, size: int) -> np.ndarray:
        i = np.arange(length, dtype=np.float32)
        inside = np.full(length, np.inf, np.float32)
        if start > 0:
            inside = np.minimum(inside, i)
        if start + length < size:
            inside = np.minimum(inside, length - 1 - i)
        return np.minimum((inside + 1) / (ramp + 1), 1.0).astype(np.float32)

    (y, x), (th, tw) = origin, tile_hw
    return np.outer(profile(y, th, canvas_hw[0]), profile(x, tw, canvas_hw[1]))


def pad_to_tile(image: np.ndarray, tile_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """``image`` reflect-padded (evenly on both sides) to at least ``tile_hw``, and the (top, left) padding."""
    import cv2

    dy, dx = max(0, tile_hw[0] - image.shape[0]), max(0, tile_hw[1] - image.shape[1])
    if dy == 0 and dx == 0:
        return image, (0, 0)
    top, left = dy // 2, dx // 2
    # A side of 1 px has nothing to reflect; replicate it then.
    border = cv2.BORDER_REFLECT_101 if min(image.shape[:2]) > 1 else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(image, top, dy - top, left, dx - left, border), (top, left)


def _checked(changed: np.ndarray, tile_hw: tuple[int, int]) -> tuple[int, int]:
    if changed.ndim != 2:
        raise ValueError(f"changed must be an H x W mask, got shape {changed.shape}")
    th, tw = int(tile_hw[0]), int(tile_hw[1])
    if th < 1 or tw < 1:
        raise ValueError(f"tile size must be at least 1 x 1, got {tile_hw}")
    return th, tw


def _boxes(changed: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(x0, y0, x1, y1)`` (end exclusive) of the connected components of ``changed``, merged."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(changed.astype(np.uint8), connectivity=8)
    return _merged([(int(x), int(y), int(x + bw), int(y + bh)) for x, y, bw, bh, _ in stats[1:n]])


def _merged(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x0, y0, x1, y1)`` (end exclusive) with every overlapping pair replaced by their union, until
    none overlap."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _spread(start: int, end: int, tile: int, size: int, overlap: int = 0) -> list[int]:
    """Tile starts covering ``[start, end)`` on an axis of ``size`` px: the fewest tiles, evenly spaced (spacing
    <= tile - overlap, so no gap and neighbours share ``overlap`` px), inside ``[0, size - tile]`` (0 when the axis
    is shorter than a tile)."""
    last = max(0, size - tile)
    length = end - start
    if length <= tile:
        return [min(max(start + (length - tile) // 2, 0), last)]
    count = math.ceil((length - overlap) / (tile - overlap))
    return sorted({min(max(round(start + i * (length - tile) / (count - 1)), 0), last) for i in range(count)})


def _fitted(start: int, end: int, tile: int, size: int, multiple: int, minimum: int) -> list[tuple[int, int]]:
    """(start, length) of the tiles covering ``[start, end)`` on an axis of ``size`` px: one of the range's length
    rounded up to ``multiple``, within ``[minimum, tile]``, or input-sized ones spread as :func:`_spread` does."""
    length = end - start
    if length > tile:
        return [(s, tile) for s in _spread(start, end, tile, size)]
    side = min(tile, max(minimum, -(-length // multiple) * multiple))
    return [(_spread(start, end, side, size)[0], side)]
