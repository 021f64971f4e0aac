"""Ground-plane perspective for one fixed camera: a person's height in pixels as a linear function of feet row.

For a camera looking down onto a flat ground plane, the image height of a standing person is (to first order)
proportional to the distance of their feet row below the horizon: ``height = slope * feet_row + intercept``.
The model comes either from two reference people the user measured on the site image (``ROW:HEIGHT`` pairs), or
from a robust line fit over silhouettes harvested from the site's own footage.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class PerspectiveModel:
    """``height(row) = slope * row + intercept`` in pixels of the image the model was made for.

    ``image_height`` is the height (pixels) of that image; :meth:`scaled` converts the model to another size.
    ``origin`` records where the model came from ('references', 'fit', 'fit-flat' (people all near one row: slope 0 at their median height), 'default') for the dataset manifest.
    """

    slope: float
    intercept: float
    image_height: int
    origin: str = "references"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slope) and math.isfinite(self.intercept)):
            raise ValueError(f"perspective slope/intercept must be finite, got {self.slope}, {self.intercept}")
        if self.slope < 0:
            raise ValueError(
                f"perspective slope {self.slope:.3f} px/row is negative: people would get smaller towards the bottom "
                "of the image; give the nearer (lower) reference the larger height"
            )
        if self.image_height < 1:
            raise ValueError(f"image_height must be >= 1, got {self.image_height}")
        if self.height_at(self.image_height - 1) <= 0:
            raise ValueError(
                f"perspective gives no positive height anywhere in the image (height at the bottom row "
                f"{self.image_height - 1} is {self.height_at(self.image_height - 1):.1f} px); check the reference heights"
            )

    def height_at(self, row: float | np.ndarray) -> float | np.ndarray:
        """Person height in pixels for feet at ``row`` (may be <= 0 above the horizon)."""
        return self.slope * row + self.intercept

    def row_for_height(self, height: float) -> float:
        """The feet row at which a person is ``height`` pixels tall (``-inf`` for a flat model below its height)."""
        if self.slope == 0:
            return -math.inf if height <= self.intercept else math.inf
        return (height - self.intercept) / self.slope

    def scaled(self, image_height: int) -> PerspectiveModel:
        """The same model for the image resized (uniformly in y) to ``image_height`` rows."""
        s = image_height / self.image_height
        # Both rows and heights scale by s: h' = s*h(r'/s) = slope*r' + s*intercept.
        return PerspectiveModel(self.slope, self.intercept * s, image_height, self.origin)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_references(cls, refs: list[tuple[float, float]], image_height: int) -> PerspectiveModel:
        """Line through two (feet_row, height_px) reference people (more than two: least squares)."""
        if len(refs) < 2:
            raise ValueError(f"need two reference people (row, height), got {len(refs)}: {refs}")
        rows = np.array([r for r, _ in refs], dtype=np.float64)
        heights = np.array([h for _, h in refs], dtype=np.float64)
        if np.any(heights <= 0):
            raise ValueError(f"reference heights must be > 0 pixels, got {heights.tolist()}")
        if np.ptp(rows) < 1:
            raise ValueError(f"reference feet rows must differ (got rows {rows.tolist()}); measure a near and a far person")
        slope, intercept = np.polyfit(rows, heights, 1)
        # Equal heights give a slope of +-1e-17 from the least-squares solver, its sign depending on the CPU's
        # BLAS: a flat model is slope 0, not a 'negative slope' error on some machines.
        if abs(slope) < 1e-9 * max(1.0, float(np.abs(heights).max())):
            slope, intercept = 0.0, float(np.mean(heights))
        return cls(float(slope), float(intercept), int(image_height), "references")

    @classmethod
    def parse(cls, spec: str, image_height: int) -> PerspectiveModel:
        """Parse ``"ROW:HEIGHT,ROW:HEIGHT"`` (pixels of an ``image_height``-row image), e.g. ``"80:30,230:110"``."""
        refs = []
        for part in spec.split(","):
            try:
                row, height = part.split(":")
                refs.append((float(row), float(height)))
            except ValueError:
                raise ValueError(
                    f"bad perspective {spec!r}: expected ROW:HEIGHT,ROW:HEIGHT (feet row and person height in pixels "
                    "of the output image), e.g. 80:30,230:110"
                ) from None
        for row, _ in refs:
            if not 0 <= row <= image_height * 1.5:
                raise ValueError(f"perspective reference row {row:g} is outside the {image_height}-row image")
        return cls.from_references(refs, image_height)

    @classmethod
    def fit(cls, feet_rows: np.ndarray, heights: np.ndarray, image_height: int, *, min_points: int = 5) -> PerspectiveModel:
        """Robust line fit of height vs feet row (Theil-Sen slope, median intercept).

        Theil-Sen tolerates up to ~29% outliers (merged pairs, people cut by a doorway, bent people), which a
        plain least-squares fit over harvested silhouettes does not.
        """
        rows = np.asarray(feet_rows, dtype=np.float64)
        hs = np.asarray(heights, dtype=np.float64)
        if rows.shape != hs.shape or rows.ndim != 1:
            raise ValueError(f"feet_rows and heights must be 1-D of equal length, got {rows.shape} and {hs.shape}")
        if len(rows) < min_points:
            raise ValueError(
                f"need at least {min_points} silhouettes to fit a perspective, got {len(rows)}; harvest more site "
                "footage or give two reference heights as ROW:HEIGHT,ROW:HEIGHT"
            )
        if np.ptp(rows) < 0.05 * image_height:
            raise ValueError(
                f"harvested people all stand near one row ({rows.min():.0f}-{rows.max():.0f}); cannot fit how height "
                "changes with distance; give two reference heights as ROW:HEIGHT,ROW:HEIGHT"
            )
        i, j = np.triu_indices(len(rows), k=1)
        dr = rows[j] - rows[i]
        keep = np.abs(dr) >= 1.0
        slope = float(np.median((hs[j] - hs[i])[keep] / dr[keep]))
        slope = max(slope, 0.0)  # noise on a nearly flat scene must not flip the model
        intercept = float(np.median(hs - slope * rows))
        return cls(slope, intercept, int(image_height), "fit")

    @classmethod
    def default(cls, image_height: int) -> PerspectiveModel:
        """A generic surveillance view: 8% of the image height at 25% down, 55% at the bottom row.

        Used only when neither references nor site silhouettes are available; the manifest records it.
        """
        h = float(image_height)
        return cls.from_references([(0.25 * h, 0.08 * h), (h - 1, 0.55 * h)], image_height)._replace_origin("default")

    def _replace_origin(self, origin: str) -> PerspectiveModel:
        return PerspectiveModel(self.slope, self.intercept, self.image_height, origin)

    def row_range(self, min_height: float, max_row: float) -> tuple[float, float]:
        """Feet rows (lo, hi) where a person is at least ``min_height`` px tall and the head is in the image."""
        lo = max(self.row_for_height(min_height), 0.0)
        # Head inside the image: row - height(row) >= 0  <=>  row * (1 - slope) >= intercept.
        if self.slope < 1:
            lo = max(lo, self.intercept / (1 - self.slope))
        if lo > max_row:
            raise ValueError(
                f"perspective {self.describe()} leaves no feet row where a person is >= {min_height:g} px tall and "
                f"fits in the {self.image_height}-row image; check the reference heights"
            )
        return lo, max_row

    def describe(self) -> str:
        """The line, and the height a quarter of the way down and at the bottom row; where a quarter of the way
        down lies above the horizon (no person's feet can be there, the line's height is <= 0), the horizon's row."""
        h = self.image_height
        far = self.height_at(h * 0.25)
        far_note = f"{far:.0f} px at row {h * 0.25:.0f}" if far > 0 else f"horizon at row {self.row_for_height(0):.0f}"
        near_note = f"{self.height_at(h - 1):.0f} px at row {h - 1}"
        return f"height = {self.slope:.3f}*row + {self.intercept:.1f} px ({far_note}, {near_note}; {self.origin})"
