"""Composite actor silhouettes onto a site plate: the training images of a site-specific segmenter.

One sample = a plate of the fixed camera's empty scene, 0..K people pasted on it at perspective-correct sizes,
drawn back to front, with the realism that decides whether a model trained on composites transfers to real
footage of the site: colours pulled towards the local background, feathered edges, the camera's blur, noise and
JPEG artefacts, soft cast shadows (background in the mask, as CDnet scores them), and small jitter of the
background (exposure, colour, local lighting changes; a pixel or two of shift only for a camera that shakes) so a
model conditioned on the plate cannot rely on exact pixel differences. Hard negatives: images with no person,
shadows with no person.

Every random choice for sample ``i`` comes from generators seeded with ``(seed, i)``, so a sample does not depend
on the order samples are made in (resume, parallel workers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple

import cv2
import numpy as np

from dataset_builder.perspective import PerspectiveModel

_NOISE_BANK_SEED = 0x5EED  # fixed: the bank is part of the method, not of the dataset seed
_NOISE_SCALE = 32.0  # noise bank: grey levels per unit of noise (clipped at 4 standard deviations)
_MIN_LEVEL_HEIGHT = 24  # px; pyramid levels stop below this person height


@dataclass(frozen=True)
class CompositeConfig:
    """Randomisation ranges for compositing. Pixel values are in grey levels (0-255), sizes in pixels."""

    max_actors: int = 3  # people per image: 0 with probability empty_fraction, else uniform 1..max_actors
    empty_fraction: float = 0.1  # images with no person (hard negatives)
    shadow_only_fraction: float = 0.05  # images that get one extra cast shadow with no person (hard negative)
    size_jitter: float = 0.15  # person height = model height * U(1 - j, 1 + j)
    min_height: float = 14.0  # px; no person is placed smaller than this
    max_upscale: float = 1.5  # prefer silhouettes that need at most this much enlarging (they get blurry)
    edge_overhang: float = 0.08  # feet x may lie this fraction of the width outside the image (people entering)
    bottom_overhang: float = 0.04  # feet may lie this fraction of the height below the bottom row (cut people)
    # People entering or leaving: this share of people straddles the left, right or bottom edge of the sample,
    # 20-80% of their width (left/right) or 10-50% of their height (bottom) outside it, the mask cut with them.
    border_cut_fraction: float = 0.2
    colour_match: tuple[float, float] = (0.0, 0.6)  # blend factor of Lab mean/std towards the local background
    # Other clothes: this share of people is recoloured (Lab chroma turned by a random angle, lightness moved to
    # a random level), so a few actors' clothing does not become what a person looks like on the site. With 0.3
    # the network alone found CaVignal's man in white trousers (none among the actors): 0.737 -> 0.900.
    recolour_fraction: float = 0.3
    feather_sigma: tuple[float, float] = (0.0, 0.9)  # px, Gaussian on the alpha matte
    camera_blur: tuple[float, float] = (1.0, 1.8)  # down-then-up scaling factor of the person (lens/codec blur)
    motion_blur_probability: float = 0.2  # per person: horizontal motion blur of up to 6% of their height
    noise_sigma: tuple[float, float] = (0.0, 4.0)  # sensor noise standard deviation, grey levels
    jpeg_quality: tuple[int, int] = (55, 95)  # the image file's JPEG quality (codec artefacts)
    shadow_probability: float = 0.5  # images where people cast soft shadows on the ground
    shadow_strength: tuple[float, float] = (0.25, 0.6)  # fraction of light removed in the shadow core
    # Strong floor shadows attached to the feet (overhead indoor light): this share of people gets a dark pool
    # under and beside the feet and legs, removing attached_shadow_strength of the light (real ones leave
    # 0.45-0.75 of the plate's brightness). Background in the mask, as CDnet scores hard shadow.
    attached_shadow_fraction: float = 0.3
    attached_shadow_strength: tuple[float, float] = (0.25, 0.55)
    brightness: float = 0.08  # global gain U(1 - b, 1 + b)
    contrast: float = 0.08  # global contrast U(1 - c, 1 + c) around mid grey
    colour_gain: float = 0.04  # per-channel gain U(1 - g, 1 + g) (white balance drift)
    # Background shift U{-s..s} px in x and y (camera vibration against the plate). Off by default: a fixed
    # camera's frames are registered with its plate, and a model trained on shifted composites learns that
    # plate differences along edges are noise, so it vetoes real people standing in cluttered parts of the
    # scene (HallAndMonitor's distant person). For a camera that shakes: `python -m dataset_builder build ...
    # --composite shift_px=2` (or site-benchmark's --composite).
    shift_px: int = 0
    lighting_probability: float = 0.2  # images with a smooth local lighting change (clouds, lamps)
    lighting_strength: float = 0.15  # max relative gain change of the lighting field
    flip: bool = True  # mirror each person with probability 0.5
    # Moved things: this share of images gets one or two pieces of the site's own plate from elsewhere (a box or
    # an ellipse up to a person's height there, mirrored, lighter or darker), pasted as background: a door swung
    # open, a bin or a chair moved. A change from the plate is a person only where it looks like one. With 0.1 the
    # site model stops marking a moved box on HallAndMonitor (0.682 -> 0.917 seed 0, 0.677 -> 0.916 seed 1), unchanged
    # frames within the seeds' spread but CaVignal's (0.001-0.002 lower); a fixed plate's light ramp pays for it.
    # 0.3 taught the network to drop pale-clothed people (0.939 -> 0.904). README levers table.
    object_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.max_actors < 0:
            raise ValueError(f"max_actors must be >= 0, got {self.max_actors}")
        for name in ("empty_fraction", "shadow_only_fraction", "shadow_probability", "lighting_probability",
                     "motion_blur_probability", "border_cut_fraction", "attached_shadow_fraction",
                     "recolour_fraction", "object_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if not 0.0 <= self.size_jitter < 1.0:
            raise ValueError(f"size_jitter must be in [0, 1), got {self.size_jitter}")
        if self.min_height < 2:
            raise ValueError(f"min_height must be >= 2 px, got {self.min_height}")
        lo, hi = self.jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality must be a range within 1..100, got {self.jpeg_quality}")
        for name in ("shadow_strength", "attached_shadow_strength"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"{name} must be a range within [0, 1] (share of light removed), got {(lo, hi)}")
        if self.shift_px < 0:
            raise ValueError(f"shift_px must be >= 0 (0: the background registered with the plate), got {self.shift_px}")
        if self.camera_blur[0] < 1.0:
            raise ValueError(f"camera_blur factors must be >= 1, got {self.camera_blur}")

    @classmethod
    def clean(cls, **overrides) -> CompositeConfig:
        """Every random effect off: exact sizes, no colour change, no blur/noise/shadows/jitter (tests, debugging)."""
        base = cls(
            empty_fraction=0.0, shadow_only_fraction=0.0, size_jitter=0.0, colour_match=(0.0, 0.0),
            feather_sigma=(0.0, 0.0), camera_blur=(1.0, 1.0), motion_blur_probability=0.0, noise_sigma=(0.0, 0.0),
            jpeg_quality=(95, 95), shadow_probability=0.0, brightness=0.0, contrast=0.0, colour_gain=0.0,
            shift_px=0, lighting_probability=0.0, flip=False, border_cut_fraction=0.0, attached_shadow_fraction=0.0,
            recolour_fraction=0.0, object_fraction=0.0,
        )
        return replace(base, **overrides)


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, object]:
    """``["brightness=0.3", "shadow_strength=0.2,0.5", "flip=false"]`` -> the :class:`CompositeConfig` fields they
    set, each value of its field's type (a range as two comma-separated numbers). One training lever changed on
    its own, from the command line (``--composite``), without a code change. Raises ``ValueError`` naming the bad
    item and the valid fields."""
    defaults = CompositeConfig()
    names = [f.name for f in fields(CompositeConfig)]
    out: dict[str, object] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in names:
            raise ValueError(f"composite setting {item!r} is not NAME=VALUE with NAME one of: {', '.join(names)}")
        default = getattr(defaults, name)
        try:
            if isinstance(default, bool):
                if text.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value: object = text.strip().lower() in ("true", "1", "yes")
            elif isinstance(default, tuple):
                parts = [type(default[0])(v) for v in text.split(",")]
                if len(parts) != len(default):
                    raise ValueError(text)
                value = tuple(parts)
            else:
                value = type(default)(text)
        except ValueError:
            kind = f"{len(default)} comma-separated numbers" if isinstance(default, tuple) else type(default).__name__
            raise ValueError(f"composite setting {item!r}: {name} takes {kind} (default {default!r})") from None
        out[name] = value
    replace(defaults, **out)  # the ranges checked now, with the message naming the field
    return out


# ------------------------------------------------------------------------------------------------------------
# Actors


@dataclass
class Actor:
    """A silhouette ready to composite: an RGBA pyramid (level k is 2^-k of level 0) and its person rows.

    RGB outside the matte holds colours bled from inside (:func:`bleed_colours`), so soft edges never bring
    the source clip's background along.
    """

    name: str
    levels: list[np.ndarray]  # RGBA uint8, C-contiguous
    top: int  # first row of the person (alpha >= 128) in level 0
    bottom: int  # one past the last person row (the feet) in level 0
    group: int = 0  # silhouette set the actor came from (sets are sampled with equal weight)

    @property
    def height(self) -> int:
        """Person height in pixels at level 0."""
        return self.bottom - self.top


def bleed_colours(rgb: np.ndarray, solid: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Replace pixels outside ``solid`` by a blur of nearby inside colours.

    A soft alpha edge then blends the person's own colours into the new background instead of whatever was
    around them in the source clip (no halo), and resizing cannot pull dark transparent pixels into the edge.
    """
    m = solid.astype(np.float32)
    num = cv2.GaussianBlur(rgb.astype(np.float32) * m[:, :, None], (0, 0), sigma)
    den = cv2.GaussianBlur(m, (0, 0), sigma)
    fill = num / np.maximum(den, 1e-6)[:, :, None]
    out = np.where(solid[:, :, None], rgb.astype(np.float32), np.where(den[:, :, None] > 1e-4, fill, 0.0))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def prepare_actor(rgba: np.ndarray, name: str = "", *, group: int = 0, max_height: float | None = None) -> Actor:
    """Trim an RGBA silhouette to its matte, cap its size at ``max_height`` (person px) and build its pyramid.

    Raises ValueError when the alpha channel has no opaque (>= 128) pixel.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"silhouette {name!r}: expected an RGBA uint8 image, got {rgba.dtype} {rgba.shape}")
    alpha = rgba[:, :, 3]
    ys, xs = np.nonzero(alpha)
    solid_rows = np.nonzero((alpha >= 128).any(axis=1))[0]
    if len(solid_rows) == 0:
        raise ValueError(f"silhouette {name!r} has no opaque pixel (alpha >= 128); reject or re-extract it")
    # Trim to the soft matte plus a 1 px margin.
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, rgba.shape[0])
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, rgba.shape[1])
    img = np.ascontiguousarray(rgba[y0:y1, x0:x1])
    top, bottom = int(solid_rows[0] - y0), int(solid_rows[-1] + 1 - y0)
    if max_height is not None and bottom - top > max_height:
        s = max_height / (bottom - top)
        size = (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        top, bottom = int(round(top * s)), max(int(round(bottom * s)), int(round(top * s)) + 1)
    else:
        img = img.copy()
    # Colours under the transparent margin get resampled into the soft edge: make them the person's own.
    img[:, :, :3] = bleed_colours(img[:, :, :3], img[:, :, 3] >= 128)
    levels = [np.ascontiguousarray(img)]
    while (bottom - top) / 2 ** len(levels) >= _MIN_LEVEL_HEIGHT and min(levels[-1].shape[:2]) >= 4:
        levels.append(cv2.pyrDown(levels[-1]))
    return Actor(name=name, levels=levels, top=top, bottom=bottom, group=group)


# ------------------------------------------------------------------------------------------------------------
# Plans and samples


@dataclass
class Placement:
    """One person in a sample: which actor, where its feet are, how tall it is drawn (px)."""

    actor: int
    feet_row: float
    center_x: float
    height: float
    flip: bool = False
    shadow_only: bool = False  # draw only the cast shadow (hard negative)
    attached_shadow: float = 0.0  # share of light removed by a floor shadow attached to the feet (0: none)


@dataclass
class Plan:
    """The cheap random choices of one sample (everything the manifest needs), drawn before rendering."""

    index: int
    plate: int
    placements: list[Placement]  # back to front (ascending feet row)
    shadow: tuple[float, float, float] | None = None  # (dx, dy) of the head's shadow per px of height, strength
    jpeg_quality: int = 95
    window: tuple[int, int] = (0, 0)  # (row, column) of the sample's top-left corner in the plate

    @property
    def actors(self) -> int:
        """Number of people drawn (shadow-only placements are not people)."""
        return sum(1 for p in self.placements if not p.shadow_only)


class _Patch(NamedTuple):
    """One person ready to draw: colour and alpha at output size, top-left corner in the image."""

    rgb: np.ndarray  # h x w x 3 uint8
    alpha: np.ndarray  # h x w float32 in [0, 1]
    x0: int
    y0: int
    colour_t: float  # colour-match blend factor drawn for this person


@dataclass
class Sample:
    """A rendered composite: RGB image, 0/255 person mask, the un-jittered plate (window) it was made on."""

    image: np.ndarray
    mask: np.ndarray
    plate: np.ndarray
    plan: Plan

    @property
    def actors(self) -> int:
        return self.plan.actors


# ------------------------------------------------------------------------------------------------------------
# Compositor


def _grid(span: int, step: int) -> np.ndarray:
    """0, step, 2*step, ... and ``span`` itself: window offsets that reach the far edge."""
    return np.unique(np.append(np.arange(0, span + 1, step), span))


@dataclass
class Compositor:
    """Makes samples for one site. All plates must have the same size; actors come from :func:`prepare_actor`.

    ``width_scale`` multiplies every person's width (per plate or one value): when plates were resized to a
    different aspect ratio than the camera's, people are stretched the same way the real frames will be.
    ``feet_region`` (bool H x W) limits where feet may stand (walkable ground), if given.

    ``window`` (H, W): each sample is a window of this size of the plate (a site seen at a working scale larger
    than the network input), at a random position on a grid of eighths of the window, in rows where people can
    stand; people are placed on the whole plate by the perspective (plate pixels), mostly where the window shows
    them. None: each sample is the whole plate.
    """

    plates: list[np.ndarray]
    actors: list[Actor]
    perspective: PerspectiveModel
    config: CompositeConfig = field(default_factory=CompositeConfig)
    seed: int = 0
    width_scale: float | list[float] = 1.0
    feet_region: np.ndarray | None = None
    window: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.plates:
            raise ValueError("no plates given: a compositor needs at least one background image of the site")
        shape = self.plates[0].shape
        for i, plate in enumerate(self.plates):
            if plate.dtype != np.uint8 or plate.ndim != 3 or plate.shape[2] != 3:
                raise ValueError(f"plate {i}: expected RGB uint8 H x W x 3, got {plate.dtype} {plate.shape}")
            if plate.shape != shape:
                raise ValueError(f"plate {i} is {plate.shape[1]}x{plate.shape[0]}, plate 0 is {shape[1]}x{shape[0]}; "
                                 "resize all plates to the dataset size")
        self.plate_h, self.plate_w = shape[:2]
        # height/width: the sample's size (the window, or the whole plate).
        self.height, self.width = (int(self.window[0]), int(self.window[1])) if self.window else shape[:2]
        if not (1 <= self.height <= self.plate_h and 1 <= self.width <= self.plate_w):
            raise ValueError(f"window {self.height}x{self.width} does not fit the {self.plate_h}x{self.plate_w} plates; "
                             "give a window no larger than the plates")
        if self.config.max_actors > 0 and not self.actors:
            raise ValueError("no actor silhouettes given; extract some or set max_actors=0")
        if self.perspective.image_height != self.plate_h:
            self.perspective = self.perspective.scaled(self.plate_h)
        scales = self.width_scale if isinstance(self.width_scale, list) else [float(self.width_scale)] * len(self.plates)
        if len(scales) != len(self.plates):
            raise ValueError(f"width_scale has {len(scales)} values for {len(self.plates)} plates")
        self._width_scales = scales
        max_row = self.plate_h - 1 + self.config.bottom_overhang * self.height
        self._row_lo, self._row_hi = self.perspective.row_range(self.config.min_height, max_row)
        self._region_points = None
        if self.feet_region is not None:
            region = np.asarray(self.feet_region, dtype=bool)
            if region.shape != (self.plate_h, self.plate_w):
                raise ValueError(f"feet_region is {region.shape[1]}x{region.shape[0]}, plates are {self.plate_w}x{self.plate_h}")
            ys, xs = np.nonzero(region)
            ok = (ys >= self._row_lo) & (ys <= self._row_hi)
            if not ok.any():
                raise ValueError("feet_region has no pixel in rows where a person fits (perspective too large there)")
            self._region_points = np.stack([ys[ok], xs[ok]], axis=1)
        # Silhouette choice: sets (groups) with equal weight, and within a set only actors tall enough.
        self._groups: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for g in sorted({a.group for a in self.actors}):
            idx = np.array([i for i, a in enumerate(self.actors) if a.group == g])
            heights = np.array([self.actors[i].height for i in idx], dtype=np.float64)
            order = np.argsort(heights, kind="stable")
            self._groups[g] = (idx[order], heights[order])
        self._tallest = int(np.argmax([a.height for a in self.actors])) if self.actors else -1
        self._noise_bank: np.ndarray | None = None

    # --- planning -------------------------------------------------------------------------------------------

    def plan(self, index: int) -> Plan:
        """The random layout of sample ``index`` (plate, people, shadow light, JPEG quality)."""
        cfg = self.config
        rng = np.random.default_rng([self.seed, index, 0])
        plate = int(rng.integers(len(self.plates)))
        if cfg.max_actors == 0 or rng.random() < cfg.empty_fraction:
            k = 0
        else:
            k = int(rng.integers(1, cfg.max_actors + 1))
        shadow_only = bool(self.actors) and rng.random() < cfg.shadow_only_fraction
        window = self._window(rng) if self.window else (0, 0)
        placements = [self._place(rng, window) for _ in range(k)]
        if shadow_only:
            placements.append(replace(self._place(rng, window), shadow_only=True))
        shadow = None
        if rng.random() < cfg.shadow_probability or shadow_only:
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(0.3, 1.1)
            # The ground recedes: a shadow's image extent is foreshortened vertically.
            shadow = (length * math.cos(angle), 0.3 * length * math.sin(angle), rng.uniform(*cfg.shadow_strength))
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        placements.sort(key=lambda p: p.feet_row)  # back to front: nearer people occlude farther ones
        return Plan(index=index, plate=plate, placements=placements, shadow=shadow, jpeg_quality=quality,
                    window=window)

    def _window(self, rng: np.random.Generator) -> tuple[int, int]:
        """Top-left (row, column) of a sample window: on a grid of eighths of the window (few distinct plate
        windows to store with the dataset), among rows whose window shows ground where people stand."""
        ys = _grid(self.plate_h - self.height, max(1, self.height // 8))
        xs = _grid(self.plate_w - self.width, max(1, self.width // 8))
        standing = ys[(ys + self.height > self._row_lo) & (ys <= self._row_hi)]
        ys = standing if len(standing) else ys
        return int(ys[rng.integers(len(ys))]), int(xs[rng.integers(len(xs))])

    def _place(self, rng: np.random.Generator, window: tuple[int, int] = (0, 0)) -> Placement:
        """One person with feet in plate pixels, inside (or straddling the edges of) the sample window."""
        cfg = self.config
        wy, wx = window
        lo, hi = self._row_lo, self._row_hi
        points = self._region_points
        if self.window:
            # Feet in the window's rows (heads may be cut by its top, as on a tile); else anywhere they fit.
            w_lo, w_hi = max(lo, wy), min(hi, wy + (1 + cfg.bottom_overhang) * self.height - 1)
            lo, hi = (w_lo, w_hi) if w_lo <= w_hi else (lo, hi)
            if points is not None:
                inside = ((points[:, 0] >= wy) & (points[:, 0] < wy + self.height)
                          & (points[:, 1] >= wx) & (points[:, 1] < wx + self.width))
                points = points[inside] if inside.any() else points
        if points is not None:
            row, x = points[rng.integers(len(points))]
            row, x = float(row) + rng.random(), float(x) + rng.random()
        else:
            row = rng.uniform(lo, hi)
            x = wx + rng.uniform(-cfg.edge_overhang * self.width, (1 + cfg.edge_overhang) * self.width)
        # A feet region says where people can stand: it overrides edge cuts (they happen where it meets the edge).
        if points is None and cfg.border_cut_fraction and rng.random() < cfg.border_cut_fraction:
            row, x = self._border_cut(rng, row, window)
        height = float(self.perspective.height_at(row)) * rng.uniform(1 - cfg.size_jitter, 1 + cfg.size_jitter)
        height = max(height, cfg.min_height)
        actor = self._choose_actor(rng, height)
        flip = bool(cfg.flip and rng.random() < 0.5)
        attached = 0.0
        if cfg.attached_shadow_fraction and rng.random() < cfg.attached_shadow_fraction:
            attached = float(rng.uniform(*cfg.attached_shadow_strength))
        return Placement(actor=actor, feet_row=row, center_x=x, height=height, flip=flip, attached_shadow=attached)

    def _border_cut(self, rng: np.random.Generator, row: float, window: tuple[int, int]) -> tuple[float, float]:
        """Feet (row, x) of a person straddling the window's left, right or bottom edge: about 20-80% of their
        width, or 10-50% of their height, outside it."""
        wy, wx = window
        edge = int(rng.integers(3))
        if edge == 2:
            bottom = wy + self.height
            h = max(float(self.perspective.height_at(bottom)), self.config.min_height)
            return bottom + rng.uniform(0.1, 0.5) * h, wx + rng.uniform(0, self.width)
        half = max(float(self.perspective.height_at(row)), self.config.min_height) / 5  # people ~2.5x as tall as wide
        return row, (wx if edge == 0 else wx + self.width) + rng.uniform(-0.6, 0.6) * half

    def _choose_actor(self, rng: np.random.Generator, height: float) -> int:
        need = height / self.config.max_upscale
        candidates = []
        for idx, heights in self._groups.values():
            start = int(np.searchsorted(heights, need, side="left"))
            if start < len(idx):
                candidates.append(idx[start:])
        if not candidates:
            return self._tallest  # nothing tall enough anywhere: the least blurry choice
        pool = candidates[int(rng.integers(len(candidates)))]
        return int(pool[rng.integers(len(pool))])

    # --- rendering ------------------------------------------------------------------------------------------

    def sample(self, index: int) -> Sample:
        """Render sample ``index`` (deterministic for the compositor's seed)."""
        return self.render(self.plan(index))

    def render(self, plan: Plan) -> Sample:
        """Render a plan: shadows, then people back to front, then camera effects on the whole image."""
        cfg = self.config
        rng = np.random.default_rng([self.seed, plan.index, 1])
        plate = self.plates[plan.plate]
        wy, wx = plan.window
        dx = dy = 0
        if cfg.shift_px > 0:
            dx, dy = (int(v) for v in rng.integers(-cfg.shift_px, cfg.shift_px + 1, size=2))
        # out[y, x] = plate[wy + y - dy, wx + x - dx], edges mirrored (cheaper than a full-image warp).
        canvas = self._crop(plate, wy - dy, wx - dx)
        mask = np.zeros((self.height, self.width), np.uint8)
        width_scale = self._width_scales[plan.plate]
        self._moved_objects(canvas, plate, plan)

        placements = sorted(plan.placements, key=lambda p: p.feet_row)  # back to front
        if wy or wx:  # plate pixels -> window pixels
            placements = [replace(p, feet_row=p.feet_row - wy, center_x=p.center_x - wx) for p in placements]
        patches = [self._actor_patch(p, rng, width_scale) for p in placements]
        if plan.shadow is not None:
            for placement, patch in zip(placements, patches, strict=True):
                if patch is not None:
                    self._cast_shadow(canvas, placement, patch, plan.shadow, rng)
        for placement, patch in zip(placements, patches, strict=True):
            if patch is not None and placement.attached_shadow > 0:
                self._attached_shadow(canvas, placement, patch, rng)
        for placement, patch in zip(placements, patches, strict=True):
            if patch is not None and not placement.shadow_only:
                self._paste(canvas, mask, patch)

        image = self._camera(canvas, rng)
        return Sample(image=image, mask=mask, plate=plate[wy:wy + self.height, wx:wx + self.width], plan=plan)

    def _crop(self, plate: np.ndarray, y: int, x: int) -> np.ndarray:
        """A sample-sized copy of ``plate`` from (y, x); parts outside the plate mirrored in."""
        ys, xs = max(y, 0), max(x, 0)
        ye, xe = min(y + self.height, self.plate_h), min(x + self.width, self.plate_w)
        src = plate[ys:ye, xs:xe]
        if src.shape[:2] == (self.height, self.width):
            return src.copy()
        return cv2.copyMakeBorder(src, ys - y, y + self.height - ye, xs - x, x + self.width - xe,
                                  cv2.BORDER_REFLECT_101)

    def _actor_patch(self, p: Placement, rng: np.random.Generator, width_scale: float) -> _Patch | None:
        """Resize (with camera blur), flip, motion-blur and feather one actor; None when it lies off the image."""
        cfg = self.config
        actor = self.actors[p.actor]
        s = p.height / actor.height
        k = min(max(int(math.floor(math.log2(1 / s))), 0), len(actor.levels) - 1) if s < 1 else 0
        src = actor.levels[k]
        s_k = s * 2**k  # remaining scale from the chosen level
        out_w = max(1, round(src.shape[1] * s_k * width_scale))
        out_h = max(1, round(src.shape[0] * s_k))
        # Camera blur: render smaller, then enlarge; never below ~10 px of person height (it would vanish).
        f = rng.uniform(*cfg.camera_blur)
        f = max(1.0, min(f, p.height / 10.0))
        colour_t = rng.uniform(*cfg.colour_match)
        feather = rng.uniform(*cfg.feather_sigma)
        motion = rng.random() < cfg.motion_blur_probability
        motion_len = int(rng.integers(2, max(3, int(0.06 * p.height) + 1))) if motion else 0
        interp = cv2.INTER_AREA if s_k < 1 else cv2.INTER_LINEAR
        if f > 1.05:
            small = (max(1, round(out_w / f)), max(1, round(out_h / f)))
            patch = cv2.resize(cv2.resize(src, small, interpolation=cv2.INTER_AREA), (out_w, out_h),
                               interpolation=cv2.INTER_LINEAR)
        else:
            patch = cv2.resize(src, (out_w, out_h), interpolation=interp)
        if p.flip:
            patch = cv2.flip(patch, 1)
        if cfg.recolour_fraction and rng.random() < cfg.recolour_fraction:  # no draw when off: same samples
            patch = np.dstack([_recoloured(patch[:, :, :3], patch[:, :, 3] >= 128, rng), patch[:, :, 3]])
        if motion_len >= 2:
            kernel = np.full((1, motion_len), 1.0 / motion_len, np.float32)
            patch = cv2.filter2D(patch, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        rgb = patch[:, :, :3]
        alpha = patch[:, :, 3].astype(np.float32) * (1.0 / 255.0)
        if feather >= 0.3:
            alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
        # Feet (bottom of the person rows) land on feet_row; centre of the patch on center_x.
        feet_in_patch = actor.bottom / 2**k * s_k
        y0 = int(round(p.feet_row - feet_in_patch))
        x0 = int(round(p.center_x - out_w / 2))
        if x0 >= self.width or y0 >= self.height or x0 + out_w <= 0 or y0 + out_h <= 0:
            return None
        return _Patch(rgb, alpha, x0, y0, colour_t)

    @staticmethod
    def _clip(x0: int, y0: int, w: int, h: int, width: int, height: int):
        """Intersection of a patch at (x0, y0) with the image: image slices and matching patch slices."""
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
        return (slice(iy0, iy1), slice(ix0, ix1)), (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))

    def _paste(self, canvas: np.ndarray, mask: np.ndarray, patch: _Patch) -> None:
        """Alpha-blend a person into the canvas and mark their solid pixels (alpha >= 0.5) in the mask."""
        rgb, alpha, x0, y0, colour_t = patch
        h, w = alpha.shape
        img_sl, pat_sl = self._clip(x0, y0, w, h, self.width, self.height)
        a = alpha[pat_sl]
        if a.size == 0:
            return
        fg = rgb[pat_sl]
        if colour_t > 0.01:
            fg = self._match_colour(fg, a, canvas, x0, y0, w, h, colour_t)
        region = canvas[img_sl]
        a3 = a[:, :, None]
        blended = fg.astype(np.float32) * a3 + region.astype(np.float32) * (1.0 - a3)
        canvas[img_sl] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        mask[img_sl][a >= 0.5] = 255

    def _match_colour(self, fg: np.ndarray, a: np.ndarray, canvas: np.ndarray, x0: int, y0: int, w: int, h: int,
                      t: float) -> np.ndarray:
        """Move the person's Lab mean/std a fraction ``t`` towards the background around them."""
        solid = (a >= 0.5).astype(np.uint8)
        if cv2.countNonZero(solid) < 8:
            return fg
        lab = cv2.cvtColor(np.ascontiguousarray(fg), cv2.COLOR_RGB2LAB)
        mu_f, sd_f = (v.ravel() for v in cv2.meanStdDev(lab, mask=solid))
        bx0, by0 = max(x0 - w // 2, 0), max(y0 - h // 4, 0)
        bx1, by1 = min(x0 + w + w // 2, self.width), min(y0 + h + h // 4, self.height)
        bg = canvas[by0:by1:2, bx0:bx1:2]
        if bg.size == 0:
            return fg
        mu_b, sd_b = (v.ravel() for v in cv2.meanStdDev(cv2.cvtColor(np.ascontiguousarray(bg), cv2.COLOR_RGB2LAB)))
        sd_f, sd_b = sd_f + 1.0, sd_b + 1.0
        # Lightness moves half as far as colour: the camera's colour cast and contrast carry over to a person,
        # but a dark coat on a bright pavement stays darker than the pavement.
        tt = np.array([0.5 * t, t, t])
        ratio = np.clip((sd_f + tt * (sd_b - sd_f)) / sd_f, 0.6, 1.6)
        shift = mu_f + tt * (mu_b - mu_f) - mu_f * ratio
        # Per-channel affine map lab * ratio + shift, done by OpenCV in one pass with saturation.
        out = cv2.transform(lab, np.hstack([np.diag(ratio), shift[:, None]]).astype(np.float32))
        return cv2.cvtColor(out, cv2.COLOR_LAB2RGB)

    def _cast_shadow(self, canvas: np.ndarray, p: Placement, patch: _Patch, shadow: tuple[float, float, float],
                     rng: np.random.Generator) -> None:
        """Darken the ground with the person's matte sheared from the feet, plus a contact band under the feet."""
        _rgb, alpha, x0, y0, _t = patch
        h, w = alpha.shape
        sx, sy, strength = shadow
        # A shadow cast sideways still has the body's depth on the ground: never flatten it to a line.
        sy = math.copysign(max(abs(sy), 0.06), sy)
        ph = p.height
        feet = p.feet_row
        top_row_in_patch = feet - y0 - ph  # approximate head row of the patch
        src = np.float32([[0, feet - y0], [w, feet - y0], [w / 2, top_row_in_patch]])
        dst = np.float32([[x0, feet], [x0 + w, feet], [x0 + w / 2 + sx * ph, feet + sy * ph]])
        # Bounding box of the shadow on the image (with blur margin).
        corners = np.array([[x0, feet], [x0 + w, feet], [x0 + sx * ph, feet + sy * ph],
                            [x0 + w + sx * ph, feet + sy * ph]])
        margin = 4 + int(0.05 * ph)
        bx0 = int(max(math.floor(corners[:, 0].min()) - margin, 0))
        by0 = int(max(math.floor(min(corners[:, 1].min(), feet - 0.05 * ph)) - margin, 0))
        bx1 = int(min(math.ceil(corners[:, 0].max()) + margin, self.width))
        by1 = int(min(math.ceil(max(corners[:, 1].max(), feet + 0.05 * ph)) + margin, self.height))
        if bx1 <= bx0 or by1 <= by0:
            return
        m = cv2.getAffineTransform(src, dst)
        m[:, 2] -= (bx0, by0)
        shade = cv2.warpAffine(alpha, m, (bx1 - bx0, by1 - by0), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        # Contact shadow: a thin dark band under the columns where the feet touch the ground (ambient occlusion).
        feet_in_patch = int(round(feet - y0))
        band = alpha[max(feet_in_patch - max(2, int(0.04 * ph)), 0):max(feet_in_patch, 1)]
        if band.size:
            cols = np.nonzero(band.max(axis=0) >= 0.5)[0]
            cy = int(round(feet - by0))
            if len(cols) and 0 <= cy < shade.shape[0]:
                xs = np.clip(cols + x0 - bx0, 0, shade.shape[1] - 1)
                rows = slice(max(cy - max(1, int(0.015 * ph)), 0), cy + 1)
                shade[rows, xs] = np.maximum(shade[rows, xs], 0.5)
        sigma = 0.5 + 0.012 * ph * rng.uniform(0.5, 1.5)  # penumbra grows with size
        shade = cv2.GaussianBlur(np.minimum(shade, 1.0), (0, 0), sigma)
        region = canvas[by0:by1, bx0:bx1]
        gain = 1.0 - strength * shade
        canvas[by0:by1, bx0:bx1] = np.clip(region.astype(np.float32) * gain[:, :, None] + 0.5, 0, 255).astype(np.uint8)

    def _moved_objects(self, canvas: np.ndarray, plate: np.ndarray, plan: Plan) -> None:
        """Paste ``config.object_fraction``'s moved things (background in the mask) onto ``canvas``. Their draws
        come from a stream of their own, so turning them on leaves every person, shadow and light as it was."""
        cfg = self.config
        if cfg.object_fraction <= 0:
            return
        rng = np.random.default_rng([self.seed, plan.index, 2])
        if rng.random() >= cfg.object_fraction:
            return
        wy = plan.window[0]
        for _ in range(int(rng.integers(1, 3))):
            bottom = rng.uniform(0.2, 1.0) * self.height  # standing on the floor, mostly in the lower rows
            size = max(float(self.perspective.height_at(wy + bottom)), cfg.min_height)
            h = int(np.clip(size * rng.uniform(0.3, 1.0), 3, self.plate_h))
            w = int(np.clip(size * rng.uniform(0.2, 0.8), 3, self.plate_w))
            sy, sx = int(rng.integers(self.plate_h - h + 1)), int(rng.integers(self.plate_w - w + 1))
            piece = plate[sy:sy + h, sx:sx + w].astype(np.float32) * rng.uniform(0.7, 1.3)
            if rng.random() < 0.5:
                piece = piece[:, ::-1]
            alpha = np.zeros((h, w), np.float32)
            if rng.random() < 0.5:
                alpha[:] = 1.0
            else:
                cv2.ellipse(alpha, (w // 2, h // 2), (max(w // 2, 1), max(h // 2, 1)), 0, 0, 360, 1.0, -1)
            alpha = cv2.GaussianBlur(alpha, (0, 0), 0.7)[:, :, None]
            y0, x0 = int(bottom) - h, int(rng.uniform(-w / 2, self.width - w / 2))
            cy0, cx0 = max(y0, 0), max(x0, 0)
            cy1, cx1 = min(y0 + h, self.height), min(x0 + w, self.width)
            if cy1 <= cy0 or cx1 <= cx0:
                continue
            a = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
            mixed = region * (1.0 - a) + piece[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] * a
            canvas[cy0:cy1, cx0:cx1] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)

    def _attached_shadow(self, canvas: np.ndarray, p: Placement, patch: _Patch, rng: np.random.Generator) -> None:
        """A dark pool on the floor under and beside the feet (strong overhead light): an ellipse over the feet,
        0.7-1.5 body widths (at most 0.4 person heights) to each side, reaching up the floor beside the legs; its core removes
        ``p.attached_shadow`` of the light, its edge is a short penumbra."""
        _rgb, alpha, x0, _y0, _t = patch
        cols = np.nonzero(alpha.max(axis=0) >= 0.5)[0]
        if len(cols) == 0:
            return
        body_w = float(cols[-1] - cols[0] + 1)
        ax = max(min(body_w * rng.uniform(0.7, 1.5), 0.4 * p.height), 2.0)  # a sitter's legs: not a carpet
        ay = max(p.height * rng.uniform(0.05, 0.12), 1.5)
        cx = x0 + (cols[0] + cols[-1]) / 2 + rng.uniform(-0.4, 0.4) * body_w
        cy = p.feet_row - ay * rng.uniform(0.0, 0.6)  # the far half of the pool lies beside the legs
        sigma = 0.5 + 0.006 * p.height
        margin = int(3 * sigma) + 2
        bx0, by0 = max(int(cx - ax) - margin, 0), max(int(cy - ay) - margin, 0)
        bx1 = min(int(cx + ax) + margin + 1, self.width)
        by1 = min(int(cy + ay) + margin + 1, self.height)
        if bx1 <= bx0 or by1 <= by0:
            return
        shade = np.zeros((by1 - by0, bx1 - bx0), np.float32)
        cv2.ellipse(shade, (round(cx - bx0), round(cy - by0)), (round(ax), round(ay)), 0, 0, 360, 1.0, -1)
        gain = 1.0 - p.attached_shadow * cv2.GaussianBlur(shade, (0, 0), sigma)
        region = canvas[by0:by1, bx0:bx1]
        canvas[by0:by1, bx0:bx1] = np.clip(region.astype(np.float32) * gain[:, :, None] + 0.5, 0, 255).astype(np.uint8)

    def _camera(self, canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Whole-image camera response: exposure/colour gain, local lighting change, sensor noise."""
        cfg = self.config
        b = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
        c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
        gains = rng.uniform(1 - cfg.colour_gain, 1 + cfg.colour_gain, size=3)
        lighting = rng.random() < cfg.lighting_probability
        sigma = rng.uniform(*cfg.noise_sigma)
        image = canvas
        if cfg.brightness or cfg.contrast or cfg.colour_gain:
            # out_c = ((x - 128) * contrast + 128) * brightness * gain_c, as one saturating affine pass.
            scale = c * b * gains
            offset = 128.0 * (1.0 - c) * b * gains
            image = cv2.transform(image, np.hstack([np.diag(scale), offset[:, None]]).astype(np.float32))
        if lighting:
            grid = rng.uniform(-1.0, 1.0, size=(3, 4)).astype(np.float32) * cfg.lighting_strength
            field_ = cv2.resize(grid, (self.width, self.height), interpolation=cv2.INTER_CUBIC) + 1.0
            image = np.clip(image * field_[:, :, None] + 0.5, 0, 255).astype(np.uint8)
        if sigma >= 0.25:
            bank = self._noise()
            oy = int(rng.integers(bank.shape[0] - self.height + 1))
            ox = int(rng.integers(bank.shape[1] - self.width + 1))
            # bank holds 128 + 32 * N(0, 1) as uint8: image + sigma * N = image + sigma/32 * (bank - 128).
            k = sigma / _NOISE_SCALE
            image = cv2.addWeighted(image, 1.0, bank[oy:oy + self.height, ox:ox + self.width], k, -128.0 * k)
        return np.ascontiguousarray(image)

    def _noise(self) -> np.ndarray:
        """A fixed bank of noise (uint8, 128 + 32 * unit-variance noise), larger than the image.

        Drawing fresh Gaussian noise for every image costs more than the rest of a composite; a random window
        of a bank twice the image size is just as unpredictable for a model. Mostly luminance noise, as in
        compressed surveillance video.
        """
        if self._noise_bank is None:
            g = np.random.default_rng(_NOISE_BANK_SEED)
            shape = (2 * self.height, 2 * self.width)
            luma = g.standard_normal(shape, dtype=np.float32)
            chroma = g.standard_normal((*shape, 3), dtype=np.float32)
            noise = 0.85 * luma[:, :, None] + 0.53 * chroma
            self._noise_bank = np.clip(128 + _NOISE_SCALE * noise + 0.5, 0, 255).astype(np.uint8)
        return self._noise_bank

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_noise_bank"] = None  # rebuilt in each worker; no need to pickle ~2 MB
        return state


def _recoloured(rgb: np.ndarray, solid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The person in other colours: Lab chroma turned by an angle U(0, 360) degrees and scaled U(0.5, 1.5), the
    lightness of the ``solid`` pixels moved to a mean U(50, 220) (of 255) with its spread kept, so shading and
    texture survive while dark clothes may become pale and pale ones dark."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    theta, chroma = rng.uniform(0.0, 2.0 * np.pi), rng.uniform(0.5, 1.5)
    a, b = lab[:, :, 1] - 128.0, lab[:, :, 2] - 128.0
    lab[:, :, 1] = 128.0 + chroma * (np.cos(theta) * a - np.sin(theta) * b)
    lab[:, :, 2] = 128.0 + chroma * (np.sin(theta) * a + np.cos(theta) * b)
    mean = float(lab[:, :, 0][solid].mean()) if solid.any() else 128.0
    lab[:, :, 0] += rng.uniform(50.0, 220.0) - mean
    return cv2.cvtColor(np.clip(lab + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
