"""People counts per frame and an occupancy heatmap, from person masks.

Counting: the mask (probability > threshold) is split into 8-connected blobs; blobs smaller than ``min_pixels``
(noise, leaves, compression specks) are dropped, and without a perspective each remaining blob is one person.
Where the site has a perspective model, each blob's size is measured in people standing at its feet row (its
lowest row): ``size = area / (k * height_at(feet_row) ** 2)``, and the blob counts as
``round(size / single)`` people, rounding halves up. A blob of several people counts as several; a blob under
half a person (a shadow, a bag, a leg cut off by a post, an object missing from the plate) counts as none.
``k`` (:data:`PERSON_AREA_FACTOR`) is the area of one person's silhouette in ground truth as a share of the
square of their height; ``single`` is the size one person's blob has in the masks being counted, which are
fatter or thinner than ground truth depending on the segmenter (soft edges, shadows, carried bags).
:func:`count_people` takes ``single`` (default 1: the masks are like ground truth); the accumulator measures it
on the clip itself (:class:`PersonSize`), so a segmenter whose masks are 1.5 times ground truth does not count
every person twice.

Occupancy: for each pixel, the share of frames in which it belonged to a blob above the minimum size (so specks
do not show).

:class:`OccupancyAccumulator` takes one mask at a time (``add(frame_index, mask)``): the heatmap is a running
per-pixel sum, the rows are compact columns (20 bytes a frame) and each blob keeps only its size (4 bytes), so
ten hours at 25 fps with five blobs a frame take about 36 MB and a long clip is never held in memory. The
outputs: a CSV (``frame, time_s, count, person_pixels``), a count-over-time chart PNG, the heatmap as a raw
``.npy`` float32 array, and a PNG of the heatmap over the plate (or the first frame) with a colour scale;
:func:`write_stats` writes all four.
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
#: (1.5 k), more than any of those medians. Segmenters' masks are fatter than ground truth; the accumulator
#: learns by how much on each clip (:class:`PersonSize`).
PERSON_AREA_FACTOR = 0.18
#: One person's blob in the masks being counted may be this many times :data:`PERSON_AREA_FACTOR` at most (and
#: 1 / this at least); a calibration outside that says more about the blobs (fragments, groups) than about people.
#: Measured with plate-diff masks and perspectives fitted to ground truth: 1.30 (SBI HallAndMonitor), 1.11 (CDnet
#: pedestrians), 1.20 (SBI CaVignal); 1.41 on the example site (vtest, its fitted perspective).
SINGLE_PERSON_LIMIT = 4.0
#: Blob sizes with a perspective height needed before the clip's own one-person size replaces 1 (ground truth):
#: two seconds of a few people at 25 fps. Fewer, and the mode of the sizes is noise.
CALIBRATION_MIN_BLOBS = 50
#: Default minimum blob size: this share of the frame's pixels (77 px at 320x240, 442 px at 768x576).
MIN_PIXELS_SHARE = 0.001
CSV_HEADER = ("frame", "time_s", "count", "person_pixels")

HeightAt = Callable[[float], float]


@dataclass(frozen=True)
class CountRow:
    """People in one frame: ``frame`` is the source frame number, ``time_s`` its time in the clip (frame / fps),
    ``person_pixels`` the pixels of the blobs above the minimum size."""

    frame: int
    time_s: float
    count: int
    person_pixels: int


@dataclass(frozen=True)
class FrameCount:
    """What :func:`count_people` found in one mask: people, the pixels and mask of the blobs above the minimum size,
    and each of those blobs' size in people of :data:`PERSON_AREA_FACTOR` (NaN without a perspective height)."""

    count: int
    person_pixels: int
    people: np.ndarray  # bool H x W: the blobs above the minimum size
    sizes: np.ndarray  # float32, one per blob: area / (k * height_at(feet_row) ** 2)


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
    single: float = 1.0,
) -> FrameCount:
    """Count the people in one mask (bool, uint8 0/255 or float probability, H x W); see the module docstring.

    ``min_pixels``: smallest blob that is a person (default :func:`default_min_pixels`). ``height_at``: the
    site's perspective, feet row -> person height in pixels (e.g. ``PerspectiveModel.height_at``, scaled to this
    frame size); without it every blob is one person. Where the perspective gives no positive height (above the
    horizon) a blob counts as one. ``single``: one person's blob size in these masks, in people of
    ``area_factor`` (see :class:`PersonSize`).
    """
    fg = _foreground(mask, threshold)
    if min_pixels is None:
        min_pixels = default_min_pixels(*fg.shape)
    if min_pixels < 1:
        raise ValueError(f"min_pixels must be >= 1, got {min_pixels}")
    if area_factor <= 0:
        raise ValueError(f"area_factor must be > 0, got {area_factor}")
    if not (math.isfinite(single) and single > 0):
        raise ValueError(f"single (one person's blob size) must be > 0, got {single}")
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.view(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = np.flatnonzero(areas >= min_pixels) + 1  # label numbers of the blobs above the minimum size
    sizes = np.full(len(kept), np.nan, dtype=np.float32)
    if height_at is not None:
        for i, label in enumerate(kept):
            sizes[i] = _blob_size(stats[label], height_at, area_factor)
    keep = np.zeros(n, dtype=bool)
    keep[kept] = True
    return FrameCount(
        count=int(people_in_blobs(sizes, single).sum()),
        person_pixels=int(stats[kept, cv2.CC_STAT_AREA].sum()),
        people=keep[labels],
        sizes=sizes,
    )


def _blob_size(stat: np.ndarray, height_at: HeightAt, area_factor: float) -> float:
    feet_row = int(stat[cv2.CC_STAT_TOP] + stat[cv2.CC_STAT_HEIGHT] - 1)
    height = float(height_at(feet_row))
    if not math.isfinite(height) or height <= 0:
        return math.nan
    return float(stat[cv2.CC_STAT_AREA]) / (area_factor * height * height)


def people_in_blobs(sizes: np.ndarray, single: float = 1.0) -> np.ndarray:
    """People in each blob of the given sizes (see :class:`FrameCount`): ``round(size / single)``, halves up; a
    blob without a size (no perspective there) is one person."""
    sizes = np.asarray(sizes, dtype=np.float64)
    people = np.floor(sizes / single + 0.5)
    return np.where(np.isnan(sizes), 1, people).astype(np.int64)


class PersonSize:
    """One person's blob size in the masks of a clip, in people of :data:`PERSON_AREA_FACTOR`, learnt from the
    sizes of its blobs in constant memory.

    Most blobs are one person; groups are whole multiples of one, fragments and shadows smaller. So the estimate is
    the mode of the sizes (a histogram in log size, 2% bins, smoothed with a Gaussian of 15%), searched between
    ``1 / SINGLE_PERSON_LIMIT`` and :data:`SINGLE_PERSON_LIMIT`. The mode rather than the median: on the
    example site (vtest) nearly half of the blobs are groups of two to four, which pull the median up to 1.58
    while one person's blob is 1.41 there. Until :data:`CALIBRATION_MIN_BLOBS` sizes are in that range, :attr:`single` is 1 (masks
    like ground truth).
    """

    BIN = 0.02  # log-size bin width
    SMOOTH = 0.15  # Gaussian sigma in log size: one person's blobs spread by about this much

    def __init__(self) -> None:
        self._low = -math.log(SINGLE_PERSON_LIMIT)
        self._hist = np.zeros(round(2 * math.log(SINGLE_PERSON_LIMIT) / self.BIN), dtype=np.int64)
        radius = round(3 * self.SMOOTH / self.BIN)
        offsets = np.arange(-radius, radius + 1) * self.BIN
        self._kernel = np.exp(-0.5 * (offsets / self.SMOOTH) ** 2)
        self.blobs = 0  # sizes in the histogram

    def add(self, sizes: np.ndarray) -> None:
        """Add blob sizes (NaN and sizes outside the searched range are left out)."""
        sizes = np.asarray(sizes, dtype=np.float64)
        sizes = sizes[np.isfinite(sizes) & (sizes > 0)]
        bins = np.floor((np.log(sizes) - self._low) / self.BIN).astype(np.int64)
        bins = bins[(bins >= 0) & (bins < len(self._hist))]
        np.add.at(self._hist, bins, 1)
        self.blobs += len(bins)

    @property
    def single(self) -> float:
        """The estimate: the centre of the densest bin, or 1.0 before :data:`CALIBRATION_MIN_BLOBS` sizes."""
        if self.blobs < CALIBRATION_MIN_BLOBS:
            return 1.0
        density = np.convolve(self._hist, self._kernel, mode="same")
        return math.exp(self._low + (int(np.argmax(density)) + 0.5) * self.BIN)


class OccupancyAccumulator:
    """Counts per frame and the occupancy heatmap of a clip, fed one mask at a time; memory grows only by the
    compact columns of the module docstring.

    ``fps``: frames per second of the source, for ``time_s``. The other options are those of
    :func:`count_people`. With ``height_at``, the one-person blob size is learnt from the clip
    (:class:`PersonSize`) and :attr:`rows` and :attr:`counts` count every frame with the final estimate. The
    first frame given to :meth:`add` (optional) is kept as the heatmap's background when no plate is given to
    :func:`write_stats`.
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
        self._occupied: np.ndarray | None = None  # uint32 H x W: frames in which each pixel was in a blob
        self.person_size = PersonSize()
        # Columns, not row objects: 20 bytes a frame, and 4 bytes a blob to count it again at the end.
        self._frames = array("q")
        self._blobs = array("i")
        self._pixels = array("q")
        self._sizes = array("f")

    @property
    def frames(self) -> int:
        """How many masks were added."""
        return len(self._frames)

    def add(self, frame_index: int, mask: np.ndarray, frame: np.ndarray | None = None) -> CountRow:
        """Count the people of ``mask`` (the mask of source frame ``frame_index``) and add it to the heatmap.

        ``frame`` (RGB, optional): the image, kept only for the first mask, as the heatmap's fallback background.
        The row returned is counted with the one-person size learnt so far (for a live count); :attr:`rows` may
        count the frame differently once the whole clip was seen.
        """
        found = count_people(
            mask, min_pixels=self.min_pixels, height_at=self.height_at, area_factor=self.area_factor,
            threshold=self.threshold, single=self.single,
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
        self.person_size.add(found.sizes)
        self._frames.append(int(frame_index))
        self._blobs.append(len(found.sizes))
        self._pixels.append(found.person_pixels)
        self._sizes.extend(found.sizes.tolist())
        return CountRow(int(frame_index), frame_index / self.fps, found.count, found.person_pixels)

    @property
    def single(self) -> float:
        """One person's blob size in these masks, in people of ``area_factor``: learnt from the blobs added so
        far with a perspective height, 1.0 before there are enough (see :class:`PersonSize`)."""
        return self.person_size.single

    @property
    def rows(self) -> list[CountRow]:
        """One row per added mask, in the order added, counted with the final :attr:`single`."""
        counts = self.counts.tolist()
        return [CountRow(f, f / self.fps, c, p) for f, c, p in zip(self._frames, counts, self._pixels, strict=True)]

    @property
    def counts(self) -> np.ndarray:
        """The people count of each added mask (int32), in the order added, counted with the final :attr:`single`."""
        people = people_in_blobs(np.frombuffer(self._sizes, dtype=np.float32), self.single)
        frame_of_blob = np.repeat(np.arange(self.frames), np.frombuffer(self._blobs, dtype=np.int32))
        return np.bincount(frame_of_blob, weights=people, minlength=self.frames).astype(np.int32)

    @property
    def heatmap(self) -> np.ndarray:
        """float32 H x W: for each pixel, the share of the added frames in which it was in a blob above the
        minimum size."""
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
