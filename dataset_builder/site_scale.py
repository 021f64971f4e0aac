"""The site's own scale: how tall its people are in frame pixels, from its footage and plate only.

Every person-sized plate-difference blob of the site's own frames gives a (feet row, height) pair; the median
height picks the working scale (:func:`humanseg.scale.working_scale`) and the pairs fit the site's perspective.
No ground truth is read, so the app can do this on a user's clip. Heights come only from blobs that touch
neither the top nor the bottom frame border (a person cut at the left or right edge still shows their whole
height); a camera with the same people on a larger canvas gives the same heights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from dataclasses import dataclass
from itertools import islice

import numpy as np

from dataset_builder.perspective import PerspectiveModel
from dataset_builder.silhouettes import PersonFilter, clean_mask, find_people, plate_foreground
from humanseg.progress import bar
from humanseg.scale import working_scale

#: Fewer usable blobs than this: no site scale (the caller keeps the scale-free behaviour).
MIN_PEOPLE = 5
# Left/right cuts are allowed (border=0); the top/bottom test is done here, with this margin in px.
_BORDER = 2
_FILTER = PersonFilter(border=0)


@dataclass(frozen=True)
class SiteScale:
    """A site's person size in frame pixels and the working scale it gives."""

    perspective: PerspectiveModel  # in frame pixels (image_height = frame rows)
    person_height: float  # median person height, frame px
    working_scale: float  # network px per frame px
    people: int  # blobs the fit used

    def to_dict(self) -> dict:
        return {"perspective": self.perspective.to_dict(), "person_height": self.person_height,
                "working_scale": self.working_scale, "people": self.people}

    @classmethod
    def from_dict(cls, d: dict) -> SiteScale:
        return cls(PerspectiveModel(**d["perspective"]), float(d["person_height"]), float(d["working_scale"]),
                   int(d["people"]))

    def describe(self) -> str:
        """One line for logs and manifests."""
        return (f"person {self.person_height:.0f} px ({self.people} blobs), working scale {self.working_scale:.2f}, "
                f"perspective {self.perspective.describe()}")


def person_blobs(frame: np.ndarray, plate: np.ndarray) -> list[tuple[int, int]]:
    """(feet row, height) of every whole-height person blob of ``frame``'s plate difference."""
    fg = clean_mask(plate_foreground(frame, plate))
    rows = fg.shape[0]
    out = []
    for (_x, y, _w, h), _comp in find_people(fg, _FILTER):
        if y >= _BORDER and y + h <= rows - _BORDER:
            out.append((y + h - 1, h))
    return out


def fit_site_scale(frames: Iterable[np.ndarray], plate: np.ndarray, *, max_frames: int = 200,
                   progress: bool = False) -> SiteScale | None:
    """Fit the site's person height and perspective from up to ``max_frames`` of its frames and its plate.

    Returns None when fewer than :data:`MIN_PEOPLE` usable blobs are found (too few people or a poor plate):
    the caller then keeps the behaviour without a site scale. When the people all stand near one row the
    perspective is flat (origin ``fit-flat``) at the median height.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    feet, heights = [], []
    known = getattr(frames, "frame_count", None) or (len(frames) if isinstance(frames, Sized) else None)
    total = min(max_frames, known) if known else max_frames  # a short clip's bar ends at its own length
    with bar(islice(frames, max_frames), total=total, desc="site scale", unit="frame",
             enabled=progress) as it:
        for frame in it:
            for row, h in person_blobs(frame, plate):
                feet.append(row)
                heights.append(h)
    if len(heights) < MIN_PEOPLE:
        return None
    rows_px = plate.shape[0]
    median = float(np.median(heights))
    try:
        model = PerspectiveModel.fit(np.array(feet), np.array(heights), rows_px, min_points=MIN_PEOPLE)
    except ValueError:  # everyone near one row: no slope to fit
        model = PerspectiveModel(0.0, median, rows_px, "fit-flat")
    return SiteScale(model, median, working_scale(median), len(heights))
