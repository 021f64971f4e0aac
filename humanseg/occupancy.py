"""People counts per frame and an occupancy heatmap, from person masks.

Counting: the mask (probability > threshold) is split into 8-connected blobs; blobs smaller than ``min_pixels``
(noise, leaves, compression specks) are dropped, and each remaining blob is one person. Where the site has a
perspective model, a blob much larger than one person standing at the blob's feet row (its lowest row) counts as
several: ``max(1, round(area / (k * height_at(feet_row) ** 2)))``, rounding halves up.
``k`` (:data:`PERSON_AREA_FACTOR`) is the area of one person's silhouette as a share of the square of their
height; see its comment for where its value comes from.

Occupancy: for each pixel, the share of frames in which it belonged to a counted person (the blobs above, so
specks that were not counted do not show either).

:class:`OccupancyAccumulator` takes one mask at a time (``add(frame_index, mask)``): the heatmap is a running
per-pixel sum and the count rows are kept as compact columns (20 bytes a frame, about 18 MB for ten hours at
25 fps), so a long clip is never held in memory. The outputs: a CSV (``frame, time_s, count, person_pixels``),
a count-over-time chart PNG, the heatmap as a raw ``.npy`` float32 array, and a PNG of the heatmap over the
plate (or the first frame) with a colour scale; :func:`write_stats` writes all four.
"""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from humanseg.files import atomic_path, atomic_write
from humanseg.video import mask_to_u8, to_rgb

#: k in ``area = k * height**2``: a standing person's silhouette area over the square of their height. Measured
#: on the ground truth of the three fixed-camera development sequences (single-person blobs over 150 px), the
#: median ratio is 0.13 (CDnet pedestrians, walking outdoors), 0.19 (SBI HallAndMonitor, carried bags
#: included) and 0.25 (SBI CaVignal). 0.18 lies between them: one person counts as two only above 0.27 h^2
#: (1.5 k), more than any of those medians.
PERSON_AREA_FACTOR = 0.18
#: Default minimum blob size: this share of the frame's pixels (77 px at 320x240, 442 px at 768x576).
MIN_PIXELS_SHARE = 0.001
CSV_HEADER = ("frame", "time_s", "count", "person_pixels")

HeightAt = Callable[[float], float]


@dataclass(frozen=True)
class CountRow:
    """People in one frame: ``frame`` is the source frame number, ``time_s`` its time in the clip (frame / fps),
    ``person_pixels`` the pixels of the counted blobs."""

    frame: int
    time_s: float
    count: int
    person_pixels: int


@dataclass(frozen=True)
class FrameCount:
    """What :func:`count_people` found in one mask: people, their pixels, and the mask of the counted blobs."""

    count: int
    person_pixels: int
    people: np.ndarray  # bool H x W: the blobs that were counted


def default_min_pixels(height: int, width: int) -> int:
    """The minimum blob size used when none is given: :data:`MIN_PIXELS_SHARE` of the frame, at least 1 px."""
    return max(1, round(height * width * MIN_PIXELS_SHARE))


def _foreground(mask: np.ndarray, threshold: float) -> np.ndarray:
    # Same reading of a mask as every writer of the project: bool, uint8 > 127, or probability > threshold.
    return mask_to_u8(mask, threshold) > 0


def count_people(
    mask: np.ndarray,
    *,
    min_pixels: int | None = None,
    height_at: HeightAt | None = None,
    area_factor: float = PERSON_AREA_FACTOR,
    threshold: float = 0.5,
) -> FrameCount:
    """Count the people in one mask (bool, uint8 0/255 or float probability, H x W); see the module docstring.

    ``min_pixels``: smallest blob that is a person (default :func:`default_min_pixels`). ``height_at``: the
    site's perspective, feet row -> person height in pixels (e.g. ``PerspectiveModel.height_at``, scaled to this
    frame size); without it every blob is one person. Where the perspective gives no positive height (above the
    horizon) a blob counts as one.
    """
    fg = _foreground(mask, threshold)
    if min_pixels is None:
        min_pixels = default_min_pixels(*fg.shape)
    if min_pixels < 1:
        raise ValueError(f"min_pixels must be >= 1, got {min_pixels}")
    if area_factor <= 0:
        raise ValueError(f"area_factor must be > 0, got {area_factor}")
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.view(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = np.flatnonzero(areas >= min_pixels) + 1  # label numbers of the counted blobs
    count = 0
    for label in kept:
        count += 1 if height_at is None else _people_in_blob(stats[label], height_at, area_factor)
    keep = np.zeros(n, dtype=bool)
    keep[kept] = True
    return FrameCount(count=count, person_pixels=int(stats[kept, cv2.CC_STAT_AREA].sum()), people=keep[labels])


def _people_in_blob(stat: np.ndarray, height_at: HeightAt, area_factor: float) -> int:
    feet_row = int(stat[cv2.CC_STAT_TOP] + stat[cv2.CC_STAT_HEIGHT] - 1)
    height = float(height_at(feet_row))
    if not math.isfinite(height) or height <= 0:
        return 1
    ratio = float(stat[cv2.CC_STAT_AREA]) / (area_factor * height * height)
    return max(1, math.floor(ratio + 0.5))


class OccupancyAccumulator:
    """Counts per frame and the occupancy heatmap of a clip, fed one mask at a time in constant memory.

    ``fps``: frames per second of the source, for ``time_s``. The other options are those of
    :func:`count_people`. The first frame given to :meth:`add` (optional) is kept as the heatmap's background
    when no plate is given to :meth:`heatmap_image`.
    """

    def __init__(
        self,
        fps: float,
        *,
        min_pixels: int | None = None,
        height_at: HeightAt | None = None,
        area_factor: float = PERSON_AREA_FACTOR,
        threshold: float = 0.5,
    ) -> None:
        if not fps or fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.fps = float(fps)
        self.min_pixels = min_pixels
        self.height_at = height_at
        self.area_factor = area_factor
        self.threshold = threshold
        self.first_frame: np.ndarray | None = None
        self._occupied: np.ndarray | None = None  # uint32 H x W: frames in which each pixel was a person
        # Columns, not row objects: 20 bytes a frame.
        self._frames = array("q")
        self._counts = array("i")
        self._pixels = array("q")

    @property
    def frames(self) -> int:
        """How many masks were added."""
        return len(self._frames)

    def add(self, frame_index: int, mask: np.ndarray, frame: np.ndarray | None = None) -> CountRow:
        """Count the people of ``mask`` (the mask of source frame ``frame_index``) and add it to the heatmap.

        ``frame`` (RGB, optional): the image, kept only for the first mask, as the heatmap's fallback background.
        """
        found = count_people(
            mask, min_pixels=self.min_pixels, height_at=self.height_at, area_factor=self.area_factor,
            threshold=self.threshold,
        )  # fmt: skip
        if self._occupied is None:
            self._occupied = np.zeros(found.people.shape, dtype=np.uint32)
            if frame is not None:
                self.first_frame = to_rgb(frame).copy()
        elif found.people.shape != self._occupied.shape:
            raise ValueError(
                f"mask of frame {frame_index} is {found.people.shape[1]}x{found.people.shape[0]} but the first was "
                f"{self._occupied.shape[1]}x{self._occupied.shape[0]}; all masks of a clip must have one size"
            )
        self._occupied += found.people
        self._frames.append(int(frame_index))
        self._counts.append(found.count)
        self._pixels.append(found.person_pixels)
        return CountRow(int(frame_index), frame_index / self.fps, found.count, found.person_pixels)

    @property
    def rows(self) -> list[CountRow]:
        """One row per added mask, in the order added."""
        return [
            CountRow(f, f / self.fps, c, p) for f, c, p in zip(self._frames, self._counts, self._pixels, strict=True)
        ]

    @property
    def counts(self) -> np.ndarray:
        """The people count of each added mask (int32), in the order added."""
        return np.frombuffer(self._counts, dtype=np.int32).copy()

    @property
    def heatmap(self) -> np.ndarray:
        """float32 H x W: for each pixel, the share of the added frames in which it was a person."""
        if self._occupied is None:
            raise ValueError("no masks were added yet; call add(frame_index, mask) for each frame first")
        return (self._occupied / np.float64(self.frames)).astype(np.float32)


def counts_csv_text(rows: Sequence[CountRow]) -> str:
    """The rows as CSV text: header ``frame,time_s,count,person_pixels``, time in seconds to the millisecond."""
    lines = [",".join(CSV_HEADER)]
    lines += [f"{r.frame},{r.time_s:.3f},{r.count},{r.person_pixels}" for r in rows]
    return "\n".join(lines) + "\n"


def write_counts_csv(rows: Sequence[CountRow], path: str | Path) -> Path:
    """Write :func:`counts_csv_text` to ``path`` (atomically: a reader never sees half a file)."""
    return atomic_write(path, counts_csv_text(rows))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only, never a window (servers and tests have no display)
    import matplotlib.pyplot as plt

    return plt


def count_chart(rows: Sequence[CountRow], path: str | Path, title: str = "People in view") -> Path:
    """People count over time (seconds) as a step line, in the style of :mod:`humanseg.plots`; a PNG at ``path``."""
    if not rows:
        raise ValueError("count_chart needs at least one row; add masks to the accumulator first")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 2.8), dpi=110)
    try:
        times = [r.time_s for r in rows]
        counts = [r.count for r in rows]
        ax.step(times, counts, where="post", color="tab:blue", linewidth=1.2)
        ax.fill_between(times, counts, step="post", color="tab:blue", alpha=0.15)
        ax.set_ylim(0, max(max(counts), 1) + 0.5)
        ax.yaxis.get_major_locator().set_params(integer=True)  # counts are whole people
        ax.set_xlabel("time (s)")
        ax.set_ylabel("people")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
        return Path(path)
    finally:
        plt.close(fig)


#: Height in pixels of the colour-scale strip under the heatmap picture.
SCALE_PX = 56


def heatmap_png(heatmap: np.ndarray, background: np.ndarray, path: str | Path, *, alpha: float = 0.6) -> Path:
    """Draw ``heatmap`` (H x W shares in [0, 1]) over ``background`` (RGB, same size: the plate or the first
    frame) with a colour scale below; write it as a PNG of W x (H + :data:`SCALE_PX`) pixels.

    The picture is drawn pixel for pixel at the frame's own size; pixels never occupied show the plain scene.
    """
    heat = np.asarray(heatmap, dtype=np.float32)
    bg = to_rgb(background, source="heatmap background")
    if heat.ndim != 2 or heat.shape != bg.shape[:2]:
        raise ValueError(
            f"heatmap of shape {heat.shape} does not match the background's {bg.shape[:2]}; draw it over the plate or "
            "a frame of the same clip"
        )
    h, w = heat.shape
    plt = _pyplot()
    dpi = 100
    fig = plt.figure(figsize=(w / dpi, (h + SCALE_PX) / dpi), dpi=dpi)
    try:
        total = h + SCALE_PX
        ax = fig.add_axes((0.0, SCALE_PX / total, 1.0, h / total))
        ax.imshow(bg, interpolation="nearest")
        shown = ax.imshow(
            np.ma.masked_equal(heat, 0.0), cmap="turbo", vmin=0.0, vmax=1.0, alpha=alpha, interpolation="nearest"
        )
        ax.set_axis_off()
        # The scale: a horizontal bar across the middle 80% of the strip, labels below it.
        cax = fig.add_axes((0.1, 30 / total, 0.8, 12 / total))
        bar = fig.colorbar(shown, cax=cax, orientation="horizontal")
        bar.solids.set_alpha(1.0)
        bar.set_ticks([0.0, 0.25, 0.5, 0.75, 1.0], labels=["0%", "25%", "50%", "75%", "100%"])
        bar.ax.tick_params(labelsize=6, length=2, pad=1)
        fig.text(0.5, 4 / total, "share of frames with a person here", ha="center", va="bottom", fontsize=6)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
        return Path(path)
    finally:
        plt.close(fig)


def save_heatmap_npy(heatmap: np.ndarray, path: str | Path) -> Path:
    """Write the raw float32 heatmap as a ``.npy`` file (``np.load`` reads it back), atomically."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(heatmap, dtype=np.float32), allow_pickle=False)
    return atomic_write(path, buffer.getvalue())


@dataclass(frozen=True)
class StatsFiles:
    """The four files :func:`write_stats` wrote."""

    counts_csv: Path
    count_chart: Path
    heatmap_npy: Path
    heatmap_png: Path


def write_stats(
    acc: OccupancyAccumulator,
    out_dir: str | Path,
    *,
    plate: np.ndarray | None = None,
    prefix: str = "",
    title: str = "People in view",
) -> StatsFiles:
    """Write ``<prefix>counts.csv``, ``<prefix>counts.png``, ``<prefix>occupancy.npy`` and ``<prefix>occupancy.png``
    in ``out_dir``. The heatmap is drawn over ``plate`` (RGB, the frame size), else over the first frame the
    accumulator was given."""
    if acc.frames == 0:
        raise ValueError("no masks were added; there are no counts or occupancy to write")
    background = plate if plate is not None else acc.first_frame
    if background is None:
        raise ValueError("no background for the heatmap: pass plate=, or give add() the first frame")
    out = Path(out_dir)
    return StatsFiles(
        counts_csv=write_counts_csv(acc.rows, out / f"{prefix}counts.csv"),
        count_chart=count_chart(acc.rows, out / f"{prefix}counts.png", title),
        heatmap_npy=save_heatmap_npy(acc.heatmap, out / f"{prefix}occupancy.npy"),
        heatmap_png=heatmap_png(acc.heatmap, background, out / f"{prefix}occupancy.png"),
    )
