"""Plates: median estimation (synthetic and real clips), segments, streaming, saving, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _synthetic_site import Person, background, write_clip

from dataset_builder.backgrounds import (
    background_files,
    estimate_plates,
    load_backgrounds,
    median_plate,
    people_masker,
    plate_error,
    save_plates,
)
from humanseg.segmenters.base import Segmenter
from humanseg.video import H264Writer, load_sequence, read_image


def test_plate_error_hand_computed():
    ref = np.zeros((2, 2, 3), np.uint8)
    plate = ref.copy()
    plate[0, 0] = (30, 0, 0)  # off by 30 in one channel: counts as off
    plate[1, 1] = (10, 10, 10)  # off by 10: within tolerance
    err = plate_error(plate, ref)
    assert err["mae"] == pytest.approx((30 + 30) / 12)
    assert err["pct_off"] == pytest.approx(25.0)
    with pytest.raises(ValueError, match="same size"):
        plate_error(plate, np.zeros((3, 2, 3), np.uint8))


def test_median_removes_walkers_from_synthetic_clip(tmp_path):
    people = [Person(10, 80, 40, (220, 30, 30), 4.0), Person(150, 110, 60, (20, 20, 200), -3.0)]
    clip = write_clip(tmp_path / "clip", people, frames=30, noise=0.0)
    plate = estimate_plates(clip)[0]
    truth = background()
    err = plate_error(plate, truth)
    assert err["mae"] < 0.2 and err["pct_off"] == 0.0


def test_lingering_person_needs_the_mode_step():
    """A pixel covered in 60% of frames by changing colours: the plain median is wrong, the refined plate is not."""
    rng = np.random.default_rng(0)
    bg = np.full((8, 8, 3), 100, np.uint8)
    frames = np.repeat(bg[None], 40, axis=0).copy()
    for i in range(24):  # a slow walker's clothes: different colours in 24 of 40 frames, all brighter
        frames[i, 2:6, 2:6] = rng.integers(140, 255, size=3)
    plain = median_plate(frames, refine=False)
    refined = median_plate(frames)
    assert np.abs(plain[3, 3].astype(int) - 100).max() > 20
    assert np.abs(refined.astype(int) - 100).max() <= 1


def test_count_plates_follow_lighting_segments(tmp_path):
    clip = tmp_path / "clip"
    (clip).mkdir()
    bg = background(40, 60)
    from PIL import Image

    for t in range(30):
        frame = bg if t < 15 else (bg * 0.5).astype(np.uint8)  # the lights dim halfway
        Image.fromarray(frame).save(clip / f"f{t:04d}.png")
    dark_then = estimate_plates(clip, count=2)
    assert len(dark_then) == 2
    assert plate_error(dark_then[0], bg)["mae"] < 0.5
    assert plate_error(dark_then[1], (bg * 0.5).astype(np.uint8))["mae"] < 0.5


def test_estimate_plates_streams_a_video_file_and_reports_progress(tmp_path, capsys):
    bg = background(64, 96)
    path = tmp_path / "site.mp4"
    with H264Writer(path, fps=10, crf=12) as writer:
        for t in range(25):
            frame = bg.copy()
            frame[20:50, 5 + 3 * t:15 + 3 * t] = (250, 250, 0)
            writer.write(frame)
    plates = estimate_plates(path, samples=10, progress=True)
    assert plates[0].shape == bg.shape
    assert plate_error(plates[0], bg)["mae"] < 3.0  # H.264 at crf 12 costs a little
    # The bar ends with every frame read, and 25 frames for 10 samples are read with a step: fewer reads.
    done = re.search(r"reading frames: 100%.* (\d+)/(\d+) ", capsys.readouterr().err)
    assert done and done[1] == done[2] and 10 <= int(done[1]) < 25


def test_estimate_plates_unknown_length_video(tmp_path, capsys):
    """A Matroska file does not declare its frame count: the bounded, thinned buffer path is used."""
    import av

    bg = background(32, 48)
    path = tmp_path / "site.mkv"
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.options = {"crf": "10"}
        for t in range(30):
            frame = bg.copy()
            frame[5:25, int(1.5 * t):int(1.5 * t) + 4] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    plates = estimate_plates(path, count=2, samples=6, progress=True)
    err = capsys.readouterr().err
    assert "reading frames: 30frame [" in err and "/30" not in err  # a count of frames, no total: length unknown
    assert len(plates) == 2
    assert all(plate_error(p, bg)["mae"] < 2.5 for p in plates)


def test_save_and_load_plates_round_trip(tmp_path):
    plates = [background(20, 30, seed=s) for s in range(2)]
    paths = save_plates(plates, tmp_path / "plates")
    assert [p.name for p in paths] == ["plate000.png", "plate001.png"]
    loaded = load_backgrounds(tmp_path / "plates")
    assert [p for p, _ in loaded] == paths
    assert all(np.array_equal(a, img) for a, (_, img) in zip(plates, loaded, strict=True))
    assert not list((tmp_path / "plates").glob(".*"))  # no temp files left


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        estimate_plates(tmp_path / "nowhere.mp4")
    clip = write_clip(tmp_path / "clip", [], frames=4)
    with pytest.raises(ValueError, match="--count"):
        estimate_plates(clip, count=3)  # 4 frames cannot give 3 plates of >= 3 frames
    with pytest.raises(ValueError, match="count"):
        estimate_plates(clip, count=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no background images"):
        background_files(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        background_files(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="estimate plates first"):
        (tmp_path / "clip.mp4").write_bytes(b"x")
        background_files(tmp_path / "clip.mp4")


# ---- real footage ---------------------------------------------------------------------------------------------


def test_pedestrians_plate_matches_empty_background(pedestrians):
    """51 busy frames (people in every one) give nearly the BSUV-Net authors' empty background.

    Measured: mean abs diff 1.53 grey levels, 0.05% pixels off by > 20 (a single raw frame: 4.76 / 2.44%).
    """
    plate = estimate_plates(pedestrians)[0]
    ref = read_image(pedestrians / "empty_bg000001.jpg")
    err = plate_error(plate, ref)
    assert err["mae"] < 2.5 and err["pct_off"] < 0.5
    frame = read_image(load_sequence(pedestrians).items[0].image)
    assert err["pct_off"] < plate_error(frame, ref)["pct_off"] / 4


def test_hall_plate_matches_empty_frames(hall):
    """HallAndMonitor frames 0-2 are empty. Measured vs their mean: 2.80 grey levels, 0.63% off by > 20
    (the briefcase left on a table is a real scene change); frame 1 alone vs that mean: 2.82 / 0.19%.
    A plain median keeps a ghost of the man who lingers at the back (1.28% off)."""
    frames = [read_image(hall / "input" / f"in00000{i}.png").astype(np.float32) for i in range(3)]
    ref = np.round(np.mean(frames, axis=0)).astype(np.uint8)
    plate = estimate_plates(hall)[0]
    err = plate_error(plate, ref)
    assert err["mae"] < 3.5 and err["pct_off"] < 1.0


class _BoxFinder(Segmenter):
    """A stand-in person segmenter: probability 1 wherever the frame is red."""

    name = "box-finder"

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        return ((frame[..., 0] > 150) & (frame[..., 1] < 80)).astype(np.float32)


def test_person_standing_still_most_of_the_clip_needs_people_masks(tmp_path):
    """A person stands still in 28 of 40 frames, then walks off: every temporal statistic keeps them in the
    plate; leaving out the pixels a person segmenter marks gives the empty scene."""
    h, w = 40, 60
    truth = background(h, w)
    frames = np.repeat(truth[None], 40, axis=0).copy()
    for i in range(40):
        x = 10 if i < 28 else 10 + 4 * (i - 27)  # still, then walking right
        frames[i, 8:36, x:x + 8] = (200, 30, 30)
    err = plate_error(median_plate(frames), truth)
    assert err["pct_off"] > 5  # the still person is in the plain estimate
    masker = people_masker(_BoxFinder(), grow=0.05)  # 2 px at 40 rows
    masks = np.stack([masker(f) for f in frames])
    # Grown by 2 px around the person (an elliptical kernel: not into the corners).
    assert masks[0, 6:38, 10:18].all() and masks[0, 8:36, 8:20].all() and not masks[0, :, 30:].any()
    fixed = plate_error(median_plate(frames, people=masks), truth)
    assert fixed["mae"] < 0.2 and fixed["pct_off"] == 0.0
    # Through estimate_plates on a clip folder: the same plate.
    clip = tmp_path / "clip"
    clip.mkdir()
    from PIL import Image

    for i, f in enumerate(frames):
        Image.fromarray(f).save(clip / f"{i:04d}.png")
    assert plate_error(estimate_plates(clip, people=masker)[0], truth)["pct_off"] == 0.0
    with pytest.raises(ValueError, match=r"people masks must be 40 x 40 x 60"):
        median_plate(frames, people=masks[:3])
