"""fit_site_scale: person height and perspective from a synthetic site's own frames and plate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dataset_builder.perspective import PerspectiveModel
from dataset_builder.site_scale import SiteScale, fit_site_scale, person_blobs
from humanseg.scale import working_scale

H, W = 240, 320


def _plate(h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(120 + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def _person(frame: np.ndarray, cx: int, feet: int, height: int) -> None:
    """A dark ellipse ``height`` px tall (rows feet - height + 1 .. feet), a third as wide."""
    cv2.ellipse(frame, (cx, feet - height // 2), (height // 6, height // 2), 0, 0, 360, (20, 30, 200), -1)


def _frames(plate: np.ndarray, people: list[tuple[int, int, int]], dy: int = 0, dx: int = 0) -> list[np.ndarray]:
    out = []
    for cx, feet, height in people:
        f = plate.copy()
        _person(f, cx + dx, feet + dy, height)
        out.append(f)
    return out


def test_blob_heights_and_border_rule() -> None:
    plate = _plate()
    frame = plate.copy()
    _person(frame, 100, 200, 91)  # whole: counts
    _person(frame, 5, 180, 61)  # cut by the left edge: full height still counts
    _person(frame, 250, 40, 81)  # cut by the top edge: its height is unknown
    blobs = sorted(person_blobs(frame, plate))
    assert len(blobs) == 2
    (r1, h1), (r2, h2) = blobs
    assert abs(r1 - 180) <= 1 and abs(h1 - 61) <= 2
    assert abs(r2 - 200) <= 1 and abs(h2 - 91) <= 2


def test_fit_person_height_perspective_and_padded_invariance() -> None:
    # People follow height = 0.5 * row - 10: rows 120..230 -> heights 50..105.
    people = [(40 + 25 * k, row, round(0.5 * row - 10)) for k, row in enumerate(range(120, 231, 10))]
    plate = _plate()
    scale = fit_site_scale(_frames(plate, people), plate)
    assert scale is not None and scale.people == len(people)
    heights = sorted(h for _, _, h in people)
    assert scale.person_height == pytest.approx(np.median(heights), abs=2)
    assert scale.working_scale == pytest.approx(working_scale(scale.person_height))
    assert scale.perspective.origin == "fit" and scale.perspective.image_height == H
    assert scale.perspective.slope == pytest.approx(0.5, abs=0.05)
    # The same people on a 3x canvas (rows and columns shifted by the padding): same heights.
    big = np.pad(plate, ((H, H), (W, W), (0, 0)), mode="edge")
    padded = fit_site_scale(_frames(big, people, dy=H, dx=W), big)
    assert padded is not None and padded.people == scale.people
    assert padded.person_height == pytest.approx(scale.person_height, rel=0.05)
    assert padded.perspective.image_height == 3 * H
    assert SiteScale.from_dict(scale.to_dict()) == scale
    assert "working scale" in scale.describe()


def test_flat_site_and_too_few_people() -> None:
    plate = _plate()
    flat = [(40 + 40 * k, 200, 80) for k in range(6)]
    scale = fit_site_scale(_frames(plate, flat), plate)
    assert scale is not None
    assert scale.perspective == PerspectiveModel(0.0, scale.person_height, H, "fit-flat")
    assert abs(scale.person_height - 80) <= 2
    assert fit_site_scale(_frames(plate, flat[:4]), plate) is None
    assert fit_site_scale(_frames(plate, flat), plate, max_frames=4) is None
    with pytest.raises(ValueError, match="max_frames"):
        fit_site_scale([], plate, max_frames=0)
