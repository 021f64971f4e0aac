"""Silhouettes: every method on synthetic and real clips, clean-up rules, the index, reject, bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from _synthetic_site import Person, background, draw, person_mask, write_clip
from PIL import Image

from dataset_builder.silhouettes import (
    INDEX_NAME,
    ExtractionReport,
    PersonFilter,
    accept,
    clean_mask,
    contact_sheet,
    cut_out,
    extract_silhouettes,
    find_people,
    load_index,
    load_silhouettes,
    plate_foreground,
    read_silhouette,
    reject,
    solidify,
)


def _walkers():
    # Fast enough that each pixel shows background in most frames (the clip's own median plate is clean).
    return [Person(20, 40, 30, (220, 30, 30), 7.0), Person(10, 112, 60, (30, 30, 220), 8.0)]


# ---- synthetic: methods ----------------------------------------------------------------------------------------


def test_masks_method_uses_label_255_only(tmp_path):
    clip = write_clip(tmp_path / "clip", _walkers(), frames=6, shadow=True)
    found = extract_silhouettes(clip, "masks", tmp_path / "sil")
    assert len(found) == 12  # two people in each of 6 frames
    heights = sorted({s.height for s in found})
    assert heights == [30, 60]  # exactly the figure: no 170 border band, no 50 shadow band
    far = [s for s in found if s.height == 30]
    assert all(s.feet_row == 40 for s in far)
    assert all(s.source_size == (160, 120) and s.method == "masks" and s.accepted for s in found)
    rgba = read_silhouette(tmp_path / "sil", far[0])
    assert rgba.shape[2] == 4
    solid = rgba[:, :, 3] >= 128
    assert solid.any(axis=1).sum() == 30  # opaque rows = person height
    assert ((rgba[:, :, 3] > 0) & (rgba[:, :, 3] < 255)).any()  # soft edge
    # Opaque pixels carry the person's colour, not the background's.
    assert np.abs(rgba[solid][:, :3].astype(int) - (220, 30, 30)).mean() < 3


def test_progress_bar_counts_the_frames_read(tmp_path, capsys):
    clip = write_clip(tmp_path / "clip", _walkers(), frames=6)
    extract_silhouettes(clip, "masks", tmp_path / "sil", step=2, progress=True)
    # One bar over the frames actually read (every second of 6), ending at its total.
    assert re.search(r"silhouettes \(masks\): 100%.* 3/3 ", capsys.readouterr().err)
    extract_silhouettes(clip, "masks", tmp_path / "quiet")
    assert capsys.readouterr().err == ""  # progress=False (the default): no bar


def test_plate_method_harvests_site_walkers_without_shadows(tmp_path):
    clip = write_clip(tmp_path / "clip", _walkers(), frames=16, shadow=True)
    report = ExtractionReport()
    found = extract_silhouettes(clip, "plate", tmp_path / "sil", report=report)
    assert report.frames == 16
    assert len(found) >= 28  # 32 minus a few where a walker reaches the frame border
    for s in found:
        assert s.height in (30, 60), s  # the darker shadow band right of the feet is not part of the person
        assert s.feet_row == (40 if s.height == 30 else 112)
        assert s.box[2] <= int(round(s.height * 0.38)) + 1  # no shadow widening the box


def test_segmenter_method_plate_diff_on_synthetic(tmp_path):
    from humanseg.segmenters import get_class

    try:
        get_class("plate-diff")
    except ImportError as err:
        pytest.skip(f"plate-diff backend not importable: {err}")
    clip = write_clip(tmp_path / "clip", _walkers(), frames=8)
    found = extract_silhouettes(clip, "plate-diff", tmp_path / "sil")
    assert found and all(s.method == "plate-diff" for s in found)
    assert {abs(s.height - 30) <= 2 or abs(s.height - 60) <= 2 for s in found} == {True}


def test_standing_person_is_kept_once(tmp_path):
    clip = write_clip(tmp_path / "clip", [Person(80, 100, 50, (200, 200, 40), 0.0)], frames=8)
    report = ExtractionReport()
    found = extract_silhouettes(clip, "masks", tmp_path / "sil", report=report)
    assert len(found) == 1
    assert report.dropped["near-duplicate of a recent frame"] == 7


def test_rerun_replaces_same_source_and_keeps_others(tmp_path):
    a = write_clip(tmp_path / "a", _walkers(), frames=3)
    b = write_clip(tmp_path / "b", _walkers(), frames=2, seed=5)
    out = tmp_path / "sil"
    extract_silhouettes(a, "masks", out)
    extract_silhouettes(b, "masks", out)
    extract_silhouettes(a, "masks", out, max_frames=1)
    names = [s.name for s in load_index(out)]
    assert len(names) == 4 + 2 and len(set(names)) == 6
    assert sum(n.startswith("a-masks") for n in names) == 2


# ---- clean-up rules ---------------------------------------------------------------------------------------------


def _canvas():
    return np.zeros((120, 160), bool)


def _put(mask, x, feet, height):
    m = person_mask(height)
    mask[feet - height + 1:feet + 1, x:x + m.shape[1]] |= m


def test_find_people_rules():
    m = _canvas()
    _put(m, 10, 100, 50)  # a person
    _put(m, 0, 40, 30)  # touches the left border: cut off
    _put(m, 60, 110, 15)  # too small
    for x in (100, 110, 120):
        _put(m, x, 100, 50)  # a group walking side by side: merged, too wide
    report = ExtractionReport()
    people = find_people(clean_mask(m), PersonFilter(), report=report)
    assert [(b[0], b[3]) for b, _ in people] == [(13, 50)]  # the figure starts 3 px into its 19 px cell
    assert report.dropped == {"cut by the frame border": 1, "shorter than 24 px": 1,
                              "too wide for their height (merged group?)": 1}


def test_fragments_of_one_person_are_grouped():
    m = _canvas()
    _put(m, 50, 100, 60)
    m[75:78, :] = False  # split at the waist
    m[95:97, :] = False  # and feet cut off by a 2-row gap
    people = find_people(m, PersonFilter())
    assert len(people) == 1
    (x, y, w, h), comp = people[0]
    assert (y, h) == (41, 60) and comp.shape == (60, w)


def test_clean_mask_fills_holes_and_drops_specks():
    m = _canvas()
    _put(m, 50, 100, 60)
    m[60:66, 58:63] = False  # a hole in the body
    m[5, 5] = True  # a speck
    out = clean_mask(m)
    assert out[62, 57] and not out[5, 5]


def test_solidify_rejoins_a_broken_body_but_keeps_the_legs_apart():
    m = person_mask(60)  # 23 px wide; legs at columns 4-7 and 15-18
    broken = m.copy()
    broken[30:33, :] = False  # clothes that match the wall: the body falls apart at the waist
    out = solidify(broken, 2)
    assert out[30:33, 6:17].all()  # rejoined (the closing rounds the outer corners of the gap)
    assert not out[50, 9:14].any()  # the gap between the legs stays open
    assert out.shape == m.shape and (out & ~m).sum() < 0.03 * m.sum()  # only concave corners get filled


def test_cut_out_bleeds_person_colours_into_the_margin():
    frame = np.zeros((50, 40, 3), np.uint8)
    frame[:] = (0, 255, 0)  # green screen around
    comp = np.ones((20, 10), bool)
    frame[10:30, 10:20] = (200, 0, 0)
    rgba = cut_out(frame, (10, 10, 10, 20), comp)
    edge = rgba[:, :, 3] > 0
    assert (rgba[edge][:, 1] < 40).all()  # no green halo where alpha is soft


def test_plate_foreground_drops_shadows_keeps_dark_clothes():
    plate = np.full((10, 10, 3), (120, 140, 100), np.uint8)
    frame = plate.copy()
    frame[2:4, 2:4] = (plate[0, 0] * 0.7).astype(np.uint8)  # cast shadow: darker, same chromaticity
    frame[6:8, 6:8] = (30, 30, 35)  # dark coat
    fg = plate_foreground(frame, plate)
    assert not fg[2:4, 2:4].any() and fg[6:8, 6:8].all()
    assert plate_foreground(frame, plate, shadows=False)[2:4, 2:4].all()


# ---- index, review -----------------------------------------------------------------------------------------------


def test_reject_and_accept(tmp_path):
    clip = write_clip(tmp_path / "clip", _walkers(), frames=2)
    out = tmp_path / "sil"
    found = extract_silhouettes(clip, "masks", out)
    assert reject(out, [found[0].name, found[1].name]) == 2
    assert [s.name for s in load_silhouettes(out)] == [s.name for s in found[2:]]
    index = json.loads((out / INDEX_NAME).read_text())
    assert index["items"][0]["accepted"] is False and index["items"][0]["note"] == "rejected by user"
    assert (out / found[0].name).is_file()  # files are kept for a change of mind
    sheet = contact_sheet(out, cell=32, columns=2)
    assert sheet.shape == (64, 64, 3)
    assert (sheet[0:32, 0:32] == (255, 0, 0)).all(axis=2).any()  # rejected cell crossed out in red
    assert accept(out, [found[0].name]) == 1
    assert len(load_silhouettes(out)) == 3
    with pytest.raises(ValueError, match="nobody.png"):
        reject(out, ["nobody.png"])


# ---- bad input -----------------------------------------------------------------------------------------------------


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        extract_silhouettes(tmp_path / "missing", "masks", tmp_path / "o")
    clip = write_clip(tmp_path / "clip", _walkers(), frames=2)
    with pytest.raises(ValueError, match="valid: masks, plate, .*mediapipe"):
        extract_silhouettes(clip, "magic", tmp_path / "o")
    # A clip with nobody in it: clear error, nothing written.
    empty = write_clip(tmp_path / "empty", [], frames=4)
    with pytest.raises(ValueError, match="no person-sized silhouette"):
        extract_silhouettes(empty, "plate", tmp_path / "none")
    assert not (tmp_path / "none").exists()
    # A mask of the wrong size names the file.
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(clip / "groundtruth" / "gt000002.png")
    with pytest.raises(ValueError, match="gt000002.png"):
        extract_silhouettes(clip, "masks", tmp_path / "o")
    # Masks method on a clip with no masks.
    bare = tmp_path / "bare" / "input"
    bare.mkdir(parents=True)
    Image.fromarray(background()).save(bare / "in000001.png")
    with pytest.raises(ValueError, match="no masks"):
        extract_silhouettes(bare.parent, "masks", tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="silhouettes.json"):
        load_index(tmp_path)


def test_person_cut_by_border_in_every_frame_is_an_error(tmp_path):
    frame_person = Person(0, 100, 50, (255, 0, 0), 0.0)
    clip = write_clip(tmp_path / "clip", [frame_person], frames=3)
    with pytest.raises(ValueError, match="cut by the frame border"):
        extract_silhouettes(clip, "masks", tmp_path / "o")


# ---- real clips -------------------------------------------------------------------------------------------------------


def test_masks_on_davis_parkour(parkour, tmp_path):
    found = extract_silhouettes(parkour, "masks", tmp_path / "sil", step=20)
    assert 3 <= len(found) <= 5  # frames 0, 20, ..., 80; one runner, unless cut by the border
    assert all(s.source_size == (854, 480) and s.height > 120 for s in found)
    rgba = read_silhouette(tmp_path / "sil", found[0])
    assert rgba.shape[0] >= found[0].height


def test_masks_on_cdnet_pedestrians(pedestrians, tmp_path):
    found = extract_silhouettes(pedestrians, "masks", tmp_path / "sil", step=10)
    assert len(found) >= 5
    # The walker on the path: ~90 px tall, feet near row 150 of the 240-row frame.
    assert all(80 <= s.height <= 100 and 140 <= s.feet_row <= 160 for s in found)


def test_plate_on_hall_and_monitor(hall, tmp_path):
    report = ExtractionReport()
    found = extract_silhouettes(hall, "plate", tmp_path / "sil", step=6, report=report)
    assert len(found) >= 10, report.summary()
    assert all(s.height >= 24 and 1.5 <= s.height / s.box[2] <= 5 for s in found)
    assert max(s.height for s in found) > 100  # the man walking towards the camera


def test_plate_diff_segmenter_on_pedestrians(pedestrians, tmp_path):
    from humanseg.segmenters import get_class

    try:
        get_class("plate-diff")
    except ImportError as err:
        pytest.skip(f"plate-diff backend not importable: {err}")
    found = extract_silhouettes(pedestrians, "plate-diff", tmp_path / "sil", step=10,
                                plate=pedestrians / "empty_bg000001.jpg")
    assert len(found) >= 4 and all(80 <= s.height <= 105 for s in found)


def test_mediapipe_segmenter_on_parkour_if_cached(parkour, tmp_path):
    from humanseg.model_files import cached_path

    if not cached_path("mediapipe").is_file():
        pytest.skip("mediapipe model not cached (python -m humanseg models fetch mediapipe)")
    found = extract_silhouettes(parkour, "mediapipe", tmp_path / "sil", step=25, person=PersonFilter(
        min_aspect=0.5, max_aspect=8.0, min_fill=0.1, max_fill=0.97))
    assert all(s.method == "mediapipe" for s in found)
    assert any(s.height > 200 for s in found)  # the runner (a generic model also finds bits of the crowd)


def test_draw_helper_matches_label(tmp_path):
    """The synthetic figures used above are exactly as tall as asked (guards the fixtures themselves)."""
    frame = background()
    label = np.zeros(frame.shape[:2], np.uint8)
    draw(frame, label, Person(80, 100, 37))
    rows = np.nonzero((label == 255).any(axis=1))[0]
    assert (rows[0], rows[-1]) == (64, 100)
