"""humanseg.occupancy: people counts and the occupancy heatmap, exact on synthetic masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from humanseg.occupancy import (
    CALIBRATION_MIN_BLOBS,
    PERSON_AREA_FACTOR,
    SCALE_PX,
    CountRow,
    OccupancyAccumulator,
    PersonSize,
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


def test_a_blob_under_half_a_person_counts_as_none_but_stays_in_the_pixels():
    m = np.zeros((H, W), bool)
    m[10:46, 0:4] = True  # 144 px = 0.5 of a 288 px person: halves round up -> 1
    m[10:21, 30:43] = True  # 143 px = 0.497 -> 0 (a shadow, a bag, a cut-off leg)
    found = count_people(m, height_at=flat_perspective)
    assert found.count == 1
    assert found.person_pixels == 144 + 143 and found.people[15, 35]  # the heatmap still shows where it was
    np.testing.assert_allclose(found.sizes, [144 / 288, 143 / 288], rtol=1e-6)
    assert np.isnan(count_people(m).sizes).all() and count_people(m).count == 2  # no perspective: blobs


def test_single_is_one_persons_blob_in_these_masks():
    m = np.zeros((H, W), bool)
    m[10:55, 0:8] = True  # 360 px = 1.25 people of k
    m[10:55, 30:46] = True  # 720 px = 2.5 -> 3 with ground-truth-like masks
    assert count_people(m, height_at=flat_perspective).count == 1 + 3
    assert count_people(m, height_at=flat_perspective, single=1.25).count == 1 + 2  # 1.0 and 2.0 people
    with pytest.raises(ValueError, match="single .* must be > 0, got 0"):
        count_people(m, height_at=flat_perspective, single=0.0)


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
    assert acc.person_size.blobs == 11 and acc.single == 1.0  # too few blobs to learn from: k as measured
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


def test_accumulator_learns_one_persons_size_from_the_clip_and_recounts_every_frame():
    """60 frames of one person whose mask is 1.25 times ground truth (8 x 45 = 360 px at 288 px a person); in
    the first 10 a pair of them (720 px) walks side by side. With the fixed k the pair is 2.5 -> 3 people."""
    acc = OccupancyAccumulator(fps=10.0, height_at=flat_perspective)
    returned = []
    for i in range(60):
        m = np.zeros((H, W), bool)
        m[10:55, 4:12] = True
        if i < 10:
            m[10:55, 40:56] = True
        returned.append(acc.add(i, m).count)
    assert acc.person_size.blobs == 70 >= CALIBRATION_MIN_BLOBS
    # The mode of the sizes, to the 2% bin: the lone person's 1.25, not the pair's 2.5 or the median.
    assert acc.single == pytest.approx(1.25, rel=0.02)
    assert [r.count for r in acc.rows] == [3] * 10 + [1] * 50  # the pair is 2.0 people of 1.25
    np.testing.assert_array_equal(acc.counts, [3] * 10 + [1] * 50)
    assert acc.rows[0] == CountRow(0, 0.0, 3, 1080)
    # add() counts live with what it knows: before 50 blobs, ground-truth k (1 + 3), then the clip's own size.
    assert returned == [4] * 10 + [1] * 50


def test_person_size_leaves_out_blobs_without_a_height_and_implausible_sizes():
    size = PersonSize()
    size.add(np.array([np.nan, 0.0, -1.0, 0.2, 4.5]))  # no perspective, empty, beyond 1/4 .. 4 of k
    assert size.blobs == 0 and size.single == 1.0
    size.add(np.full(CALIBRATION_MIN_BLOBS - 1, 0.8, np.float32))
    assert size.single == 1.0  # one blob short of learning
    size.add(np.array([0.8]))
    assert size.single == pytest.approx(0.8, rel=0.02)  # thinner masks than ground truth: people count whole
