"""humanseg.occupancy: people counts and the occupancy heatmap, exact on synthetic masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from humanseg.occupancy import (
    PERSON_AREA_FACTOR,
    SCALE_PX,
    CountRow,
    OccupancyAccumulator,
    count_people,
    counts_csv_text,
    default_min_pixels,
    write_stats,
)

H, W = 60, 80
# One person of 40 px height at the site's perspective: k * 40^2 = 288 px, drawn as an 8 x 36 block.
PERSON_HEIGHT = 40.0


def flat_perspective(feet_row: float) -> float:
    return PERSON_HEIGHT


def person(mask: np.ndarray, left: int, top: int = 10, width: int = 8, height: int = 36) -> None:
    mask[top : top + height, left : left + width] = True


def walk() -> list[np.ndarray]:
    """Six frames: A and B walk towards each other and merge (frames 2, 3), C stands at the right edge and
    leaves after frame 3; the last frame is empty."""
    frames = []
    for a, b, c in (
        (4, 40, True),
        (12, 32, True),
        (18, 26, True),
        (18, 26, True),
        (18, 26, False),
        (None, None, False),
    ):
        m = np.zeros((H, W), bool)
        if a is not None:
            person(m, a)
            person(m, b)
        if c:
            person(m, 70)
        frames.append(m)
    return frames


def test_area_factor_gives_the_drawn_person_exactly_one():
    assert PERSON_AREA_FACTOR * PERSON_HEIGHT**2 == pytest.approx(8 * 36)


def test_merged_people_count_as_one_blob_without_perspective_and_two_with_it():
    frames = walk()
    plain = [count_people(m).count for m in frames]
    assert plain == [3, 3, 2, 2, 1, 0]  # A and B touch from frame 2 (18 + 8 = 26): one blob
    with_persp = [count_people(m, height_at=flat_perspective).count for m in frames]
    assert with_persp == [3, 3, 3, 3, 2, 0]  # the 576 px blob is 2.0 people at 288 px each


def test_blob_size_rounds_to_whole_people_halves_up():
    m = np.zeros((H, W), bool)
    m[10:46, 0:11] = True  # 396 px = 1.375 people -> 1
    m[10:46, 30:42] = True  # 432 px = 1.5 -> 2
    m[10:46, 60:80] = True  # 720 px = 2.5 -> 3
    found = count_people(m, height_at=flat_perspective)
    assert found.count == 1 + 2 + 3
    assert found.person_pixels == 396 + 432 + 720


def test_the_perspective_is_read_at_each_blobs_feet_row():
    seen = []

    def height_at(feet_row: float) -> float:
        seen.append(feet_row)
        return 20.0 if feet_row < 30 else -5.0  # above the horizon: no height

    m = np.zeros((H, W), bool)
    m[2:20, 0:20] = True  # 360 px, feet at row 19; expected 0.18 * 400 = 72 px -> 5 people
    m[30:50, 40:60] = True  # feet at row 49, no positive height: one
    assert count_people(m, height_at=height_at).count == 5 + 1
    assert sorted(seen) == [19, 49]


def test_min_size_drops_specks_from_counts_pixels_and_the_heatmap():
    m = np.zeros((H, W), bool)
    person(m, 10)
    m[2:5, 60:63] = True  # 9 px speck
    assert count_people(m, min_pixels=10).count == 1
    assert count_people(m, min_pixels=9).count == 2
    found = count_people(m, min_pixels=10)
    assert found.person_pixels == 288 and not found.people[3, 61] and found.people[20, 12]
    assert default_min_pixels(H, W) == 5  # 0.1% of 4800 px
    assert default_min_pixels(240, 320) == 77
    with pytest.raises(ValueError, match="min_pixels must be >= 1, got 0"):
        count_people(m, min_pixels=0)


def test_probability_and_uint8_masks_read_like_bool_ones():
    m = np.zeros((H, W), bool)
    person(m, 10)
    prob = np.where(m, 0.7, 0.3).astype(np.float32)
    assert count_people(prob).person_pixels == 288
    assert count_people(prob, threshold=0.8).count == 0
    assert count_people(m.astype(np.uint8) * 255).person_pixels == 288


def test_accumulator_rows_heatmap_and_csv_are_exact(tmp_path):
    acc = OccupancyAccumulator(fps=4.0, height_at=flat_perspective)
    first = np.full((H, W, 3), 90, np.uint8)
    for i, mask in enumerate(walk()):
        acc.add(10 + 2 * i, mask, frame=first if i == 0 else None)  # every 2nd source frame from 10
    assert acc.frames == 6
    assert acc.rows == [
        CountRow(10, 2.5, 3, 864),
        CountRow(12, 3.0, 3, 864),
        CountRow(14, 3.5, 3, 864),
        CountRow(16, 4.0, 3, 864),
        CountRow(18, 4.5, 2, 576),
        CountRow(20, 5.0, 0, 0),
    ]
    np.testing.assert_array_equal(acc.counts, [3, 3, 3, 3, 2, 0])
    heat = acc.heatmap
    assert heat.dtype == np.float32 and heat.shape == (H, W)
    assert heat[20, 72] == np.float32(4 / 6)  # C: frames 0-3 of 6
    assert heat[20, 20] == np.float32(3 / 6)  # A at 18..25 in frames 2, 3, 4 (merged with B or not)
    assert heat[20, 5] == np.float32(1 / 6)  # A's first place only
    assert heat[20, 30] == np.float32(3 / 6)  # B at 26..33 in frames 2, 3, 4
    assert heat[0, 0] == 0.0 and heat[50, 40] == 0.0
    assert counts_csv_text(acc.rows) == (
        "frame,time_s,count,person_pixels\n"
        "10,2.500,3,864\n12,3.000,3,864\n14,3.500,3,864\n16,4.000,3,864\n18,4.500,2,576\n20,5.000,0,0\n"
    )

    files = write_stats(acc, tmp_path / "stats", prefix="clip_")
    assert files.counts_csv.read_text() == counts_csv_text(acc.rows)
    assert files.counts_csv.name == "clip_counts.csv"
    np.testing.assert_array_equal(np.load(files.heatmap_npy), heat)
    with Image.open(files.heatmap_png) as img:
        img.load()
        assert img.size == (W, H + SCALE_PX)
        picture = np.asarray(img.convert("RGB"))
    assert np.all(picture[0, 0] == 90)  # never occupied: the plain first frame
    assert np.abs(picture[20, 72].astype(int) - 90).max() > 20  # occupied: coloured
    with Image.open(files.count_chart) as img:
        img.load()
        assert img.format == "PNG" and img.width > img.height > 100
    assert sorted(p.name for p in (tmp_path / "stats").iterdir()) == [
        "clip_counts.csv",
        "clip_counts.png",
        "clip_occupancy.npy",
        "clip_occupancy.png",
    ]


def test_heatmap_is_drawn_over_a_given_plate(tmp_path):
    acc = OccupancyAccumulator(fps=25.0)
    acc.add(0, walk()[0])
    with pytest.raises(ValueError, match="pass plate="):
        write_stats(acc, tmp_path)
    plate = np.zeros((H, W, 3), np.uint8)
    plate[:, :, 1] = 200
    files = write_stats(acc, tmp_path, plate=plate)
    with Image.open(files.heatmap_png) as img:
        assert np.all(np.asarray(img.convert("RGB"))[0, 0] == (0, 200, 0))


def test_accumulator_errors_name_the_problem():
    acc = OccupancyAccumulator(fps=25.0)
    with pytest.raises(ValueError, match="no masks were added yet"):
        _ = acc.heatmap
    acc.add(0, np.zeros((H, W), bool))
    with pytest.raises(ValueError, match=r"mask of frame 1 is 10x10 but the first was 80x60"):
        acc.add(1, np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="fps must be > 0"):
        OccupancyAccumulator(fps=0)
