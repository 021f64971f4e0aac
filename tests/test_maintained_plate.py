"""The plate that follows the site (issue 11): light compensation, the slow update, several plates, and the
segmenters that use it (plate-diff, the trained plate model), on small synthetic clips."""

from __future__ import annotations

import atexit
import functools
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers_dataset import add_person, make_plate, write_tiny_dataset

from humanseg.maintained_plate import DEFAULT_UPDATE_S, MaintainedPlate, light_fit
from humanseg.plate import plate_probability
from humanseg.segmenters.plate_diff import PlateDiffSegmenter

SIZE = (48, 64)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_compensation_recovers_a_pure_gain_and_offset_exactly():
    rng = np.random.default_rng(0)
    plate = (rng.integers(20, 100, (*SIZE, 3)) * 2).astype(np.uint8)  # even values: 0.5 * p + 20 is an integer
    frame = (plate.astype(np.int32) // 2 + np.array([20, 30, 10])).astype(np.uint8)
    mp = MaintainedPlate(plate, update_s=0)
    assert np.array_equal(mp.compensated(frame), frame)
    assert np.allclose(mp.gain, 0.5, atol=1e-6) and np.allclose(mp.offset, [20, 30, 10], atol=1e-4)
    gain, offset = light_fit(frame, plate, np.ones(SIZE, bool))
    assert np.allclose(gain, 0.5) and np.allclose(offset, [20, 30, 10], atol=1e-4)


def test_in_captured_light_maps_a_frame_back_to_the_plates_light():
    rng = np.random.default_rng(1)
    plate = (rng.integers(20, 100, (*SIZE, 3)) * 2).astype(np.uint8)
    frame = (plate.astype(np.int32) // 2 + np.array([20, 30, 10])).astype(np.uint8)  # 0.5 * plate + offset
    mp = MaintainedPlate(plate, update_s=0)
    assert mp.in_captured_light(frame, [frame])[0] is frame  # before any frame: nothing fitted yet
    compensated = mp.compensated(frame)
    back, plate_back = mp.in_captured_light(frame, [frame, compensated])
    # (p / 2 + o - o) / 0.5 = p exactly: gain 0.5 and the offsets undone, for the frame and its plate alike.
    assert np.array_equal(back, plate) and np.array_equal(plate_back, plate)
    # After the plate has followed the frame's light, the mapping still goes back to the captured light.
    mp = MaintainedPlate(plate, update_s=0.04, fps=25)  # 0.63 of the way per frame: the frame after 20 frames
    for _ in range(20):
        mp.compensated(frame)
        mp.update(frame, None)
    assert np.abs(mp.plate.astype(int) - frame).max() <= 1
    back, plate_back = mp.in_captured_light(frame, [frame, mp.compensated(frame)])
    assert np.abs(back.astype(int) - plate).max() <= 2 and np.abs(plate_back.astype(int) - plate).max() <= 2


def test_the_update_follows_the_background_and_never_the_person():
    plate = np.full((*SIZE, 3), 100, np.uint8)
    frame = np.full((*SIZE, 3), 160, np.uint8)  # a new, brighter background (beyond any light fit: see below)
    person = np.zeros(SIZE, bool)
    person[10:30, 20:30] = True
    mp = MaintainedPlate(plate, fps=10, update_s=1.0)
    for _ in range(10):  # one time constant
        mp.compensated(frame)
        mp.update(frame, person)
    current = mp.plate.astype(float)
    # Background: 100 + 60 * (1 - exp(-1)); the person's box and its margin: untouched.
    assert abs(current[0, 0, 0] - (100 + 60 * (1 - math.exp(-1)))) <= 1
    assert (current[person] == 100).all() and current[12, 31, 0] == 100  # 2 px right of the box: in the margin (8 px at 240 rows)


def _moved_box_marked_until(seg, plate: np.ndarray, fps: float, seconds: float) -> float | None:
    """Seconds until a textured box pasted into every frame (not into the plate) is last marked."""
    box = np.random.default_rng(9).integers(0, 255, (16, 16, 3)).astype(np.uint8)
    marked_until = None
    for i in range(int(seconds * fps)):
        frame = plate.copy()
        frame[10:26, 20:36] = box
        if (seg.segment(frame)[10:26, 20:36] > 0.5).mean() > 0.01:
            marked_until = i / fps
    return marked_until


class _RuleOnMaintained:
    """The plate rule on a maintained plate, updated where the rule does not mark: what a site model does with
    an object its network calls background."""

    def __init__(self, plate: np.ndarray, fps: float) -> None:
        self.mp = MaintainedPlate(plate, fps=fps)

    def segment(self, frame: np.ndarray) -> np.ndarray:
        prob = plate_probability(frame, self.mp.compensated(frame))
        self.mp.update(frame, None)
        return prob


def test_a_moved_object_is_background_again_within_the_stated_time():
    """A textured box pasted from some time on, not into the plate: with the plate updated where the method
    calls background it stops being marked within 10 s at 25 fps (the default time constant's promise,
    humanseg.maintained_plate); plate-diff, which knows no appearance and marks it, absorbs it 10x slower; a fixed
    plate marks it for ever."""
    assert DEFAULT_UPDATE_S * math.log(441 / 25) <= 10.05  # the bound for the largest RGB difference
    plate = make_plate(SIZE, np.random.default_rng(1))
    until = _moved_box_marked_until(_RuleOnMaintained(plate, 25), plate, 25, 12)
    assert until is not None and 2.0 < until < 10.0, until
    until = _moved_box_marked_until(PlateDiffSegmenter(plate, fps=5), plate, 5, 120)
    assert until is not None and 10.0 < until < 10 * DEFAULT_UPDATE_S * math.log(441 / 25), until
    fixed = PlateDiffSegmenter(plate, follow_plate=False)
    assert _moved_box_marked_until(fixed, plate, 5, 2) == pytest.approx(2 - 1 / 5)


def test_a_light_step_keeps_the_person_and_the_plate_follows():
    rng = np.random.default_rng(2)
    plate = make_plate(SIZE, rng)
    seg = PlateDiffSegmenter(plate, fps=5, plate_update_s=2.0)
    fixed = PlateDiffSegmenter(plate, follow_plate=False)
    ious, fixed_ious, means = [], [], []
    for i in range(40):
        gain = 1.0 if i < 10 else 0.75  # a light switched off at frame 10
        dark = np.clip(plate.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        frame, mask = add_person(dark, np.random.default_rng(100 + i))  # a person somewhere new each frame
        truth = mask > 127
        ious.append(_iou(seg.segment(frame) > 0.5, truth))
        fixed_ious.append(_iou(fixed.segment(frame) > 0.5, truth))
        means.append(float(seg.background().mean()))
    assert min(ious[10:]) > 0.8, ious
    assert np.mean(fixed_ious[10:]) < 0.5  # without it the whole frame lights up
    assert means[-1] < means[9] - 0.5 * (1 - 0.75) * float(plate.mean())  # more than halfway toward the dark frames


def test_the_nearest_of_several_plates_is_chosen():
    rng = np.random.default_rng(3)
    day = make_plate(SIZE, rng)
    night = (rng.integers(0, 255, (*SIZE, 3))).astype(np.uint8)  # another look, not a light change of the day
    mp = MaintainedPlate([day, night], update_s=0)
    frame, _ = add_person(night, rng)
    assert np.abs(mp.compensated(frame).astype(int) - night).mean() < 2
    seg = PlateDiffSegmenter(day, plates=[night])
    assert (seg.segment(night) > 0.5).mean() < 0.01


def test_fixed_plate_gives_the_old_masks_bit_for_bit():
    rng = np.random.default_rng(4)
    plate = make_plate(SIZE, rng)
    seg = PlateDiffSegmenter(plate, follow_plate=False)
    assert not seg.stateful and PlateDiffSegmenter(plate).stateful
    for i in range(5):
        frame, _ = add_person(np.clip(plate * (1 - 0.05 * i), 0, 255).astype(np.uint8), rng)
        assert np.array_equal(seg.segment(frame), plate_probability(frame, plate))


def test_errors_name_the_fix():
    plate = np.zeros((*SIZE, 3), np.uint8)
    with pytest.raises(ValueError, match="update_s"):
        MaintainedPlate(plate, update_s=-1)
    with pytest.raises(ValueError, match="plate of this camera"):
        MaintainedPlate(plate).compensated(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="at least one plate"):
        MaintainedPlate([])


@functools.cache
def _tiny_plate_model() -> Path:
    """A plate model (frame + plate + difference) overfit on the tiny set: it knows the figures by appearance."""
    from humanseg.train import TrainConfig, run_training

    root = Path(tempfile.mkdtemp(prefix="humanseg-tiny-plate-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    dataset = write_tiny_dataset(root / "dataset", n=14, n_val=2, empty_every=5)
    config = TrainConfig(
        model="segnet-fast-plate", size=SIZE, batch_size=4, lr=3e-3, schedule="constant", augment="none",
        epochs=32, minutes=None, val_every=96, seed=0, threads=1,
    )  # fmt: skip
    run_training(config, dataset, root / "run")
    return root / "run" / "best.pt"


def test_site_model_keeps_a_person_standing_still_for_30_s():
    from humanseg.segmenters.segnet import SegNetSegmenter

    ckpt = _tiny_plate_model()
    from humanseg.checkpoint import load_checkpoint

    _, info = load_checkpoint(ckpt, device="cpu")
    plate = info.plate
    frame, mask = add_person(plate, np.random.default_rng(5))
    truth = mask > 127
    seg = SegNetSegmenter(ckpt, device="cpu", fps=2)  # 2 fps keeps 30 s short: 60 frames
    assert seg.stateful and seg.follow_plate
    fixed_mask = SegNetSegmenter(ckpt, device="cpu", follow_plate=False).segment(frame) > 0.5
    first = seg.segment(frame) > 0.5
    assert _iou(first, truth) > 0.5 and _iou(first, fixed_mask) > 0.98  # a tiny model: it finds most of the figure
    for _ in range(59):
        last = seg.segment(frame) > 0.5
    assert _iou(last, truth) >= _iou(first, truth) - 0.02
    assert np.abs(seg.background().astype(int) - plate)[truth].mean() < 2  # never learnt under the person
    # Off: the old masks bit for bit; reset() returns to the captured plate.
    fixed = SegNetSegmenter(ckpt, device="cpu", follow_plate=False)
    assert np.array_equal(fixed.segment(frame), SegNetSegmenter(ckpt, device="cpu", follow_plate=False).segment(frame))
    seg.reset()
    assert np.array_equal(seg.background(), plate)
    # Both runtimes take the per-frame plates (flip averaging mirrors them), batched or not.
    torch_seg = SegNetSegmenter(ckpt, device="cpu", runtime="torch", flip_tta=True)
    seg.flip_tta = True
    frames = [frame, np.clip(frame * 0.8, 0, 255).astype(np.uint8), frame]
    got, ref = seg.segment_batch(frames), torch_seg.segment_batch(frames)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, ref, strict=True)) < 1e-4


def test_the_network_sees_a_darker_warmer_frame_in_the_captured_light(monkeypatch):
    """After a light step (gain 0.6, a warm cast), the network's input is the frame as the captured plate's light
    shows it (within rounding), not the dark frame; ``captured_light=False`` hands it the dark frame. The masks of
    the dark frame then match those of the frame in the captured light."""
    from humanseg.checkpoint import load_checkpoint
    from humanseg.segmenters.segnet import SegNetSegmenter

    ckpt = _tiny_plate_model()
    plate = load_checkpoint(ckpt, device="cpu")[1].plate
    frame, _ = add_person(plate, np.random.default_rng(7))
    dark = np.clip(frame * np.array([0.66, 0.6, 0.54]) + 4, 0, 255).astype(np.uint8)
    seen: dict[bool, list[np.ndarray]] = {}
    masks: dict[bool, np.ndarray] = {}
    for on in (True, False):
        seg = SegNetSegmenter(ckpt, device="cpu", captured_light=on)
        seg.segment(frame)  # the first frame (captured light) gives the mask the next fit leaves out
        real_net = seg._net

        def recording(frames, plates, real=real_net, on=on):
            seen[on] = frames  # what the network is handed for the dark frame
            return real(frames, plates)

        monkeypatch.setattr(seg, "_net", recording)
        masks[on] = seg.segment(dark) > 0.5
    from humanseg.models import resize_image

    want = resize_image(frame, seen[True][0].shape[:2]).astype(int)
    assert np.abs(seen[True][0].astype(int) - want).mean() < 2.5  # rounding through two lookup tables
    assert np.abs(seen[False][0].astype(int) - want).mean() > 25
    own = SegNetSegmenter(ckpt, device="cpu").segment(frame) > 0.5
    # A tiny 48x64 model: the mask in the captured light is the frame's own but for edge pixels (IoU 0.94 measured);
    # in the dark frame's light it loses part of the figure. How much depends on the tiny model, which trains to
    # different weights on another CPU's kernels: IoU 0.23 here, 0.75 on CI's machine (0.96 in captured light).
    on_iou, off_iou = _iou(masks[True], own), _iou(masks[False], own)
    assert on_iou > 0.9 and off_iou < on_iou - 0.15


def test_cli_fixed_plate_gives_the_old_masks_and_the_default_follows(tmp_path):
    from PIL import Image

    from humanseg.cli import main
    from humanseg.segment import segment_video
    from humanseg.video import open_frames

    rng = np.random.default_rng(6)
    plate = make_plate((96, 128), rng)
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(12):  # a light switched off at frame 4, a person walking
        dark = np.clip(plate * (1.0 if i < 4 else 0.7), 0, 255).astype(np.uint8)
        Image.fromarray(add_person(dark, np.random.default_rng(50 + i))[0]).save(clip / f"{i:06d}.png")
    Image.fromarray(plate).save(tmp_path / "plate.png")

    def masks(out):
        return list(open_frames(next(out.glob("*_mask.mp4"))))

    args = ["segment", str(clip), "-s", "plate-diff", "--plate", str(tmp_path / "plate.png"), "--masks-only"]
    assert main([*args, "--fixed-plate", "--out", str(tmp_path / "fixed")]) == 0
    assert main([*args, "--out", str(tmp_path / "follow")]) == 0
    # A plate-free method beside it: the plate goes only to plate-diff, as without the flags.
    mix = [*args[:3], "plate-diff", "mog2", *args[4:], "--plate-update-s", "0", "--out", str(tmp_path / "mix")]
    assert main(mix) == 0
    old = PlateDiffSegmenter(plate, follow_plate=False)
    segment_video(clip, [old], tmp_path / "old", masks_only=True, side_by_side=False)
    fixed, follow, old_masks = masks(tmp_path / "fixed"), masks(tmp_path / "follow"), masks(tmp_path / "old")
    assert all(np.array_equal(a, b) for a, b in zip(fixed, old_masks, strict=True))
    # After the step the fixed plate marks most of the frame, the followed one does not.
    assert np.mean([(f[..., 0] > 127).mean() for f in fixed[4:]]) > 0.5
    assert np.mean([(f[..., 0] > 127).mean() for f in follow[4:]]) < 0.2


def test_the_drift_variants_are_what_they_say():
    from humanseg.drift import drifted, moved_box

    frame = np.full((40, 60, 3), 200, np.uint8)
    count = 11
    first, last = drifted(frame, 0, count, "ramp"), drifted(frame, count - 1, count, "ramp")
    assert (first == 200).all()
    # Last frame: gain 0.65, red x 1.08, blue x 0.92: 200 * 0.65 * (1.08, 1, 0.92) = (140.4, 130, 119.6).
    assert last[0, 0].tolist() == [140, 130, 120]
    # Halfway: 200 * 0.825 * (1.04, 1, 0.96) = (171.6, 165, 158.4).
    assert drifted(frame, 5, count, "ramp")[0, 0].tolist() == [172, 165, 158]
    assert (drifted(frame, 4, count, "step") == 200).all() and (drifted(frame, 5, count, "step") == 150).all()
    where, texture = moved_box((40, 60))
    assert drifted(frame, 2, count, "moved", start=3) is frame
    moved = drifted(frame, 3, count, "moved", start=3)
    inside = np.zeros((40, 60), bool)
    inside[where] = True
    assert np.array_equal(moved[where], texture) and (moved[~inside] == 200).all() and inside.sum() == 64


class _SiteModelLike:
    """The plate rule on a maintained plate, the update kept off a person the method recognises by appearance
    (``person``: what a site model's network keeps marking) but not off a moved object it calls background."""

    def __init__(self, plate: np.ndarray, fps: float, person: np.ndarray) -> None:
        self.mp, self.person = MaintainedPlate(plate, fps=fps), person

    def segment(self, frame: np.ndarray) -> np.ndarray:
        prob = plate_probability(frame, self.mp.compensated(frame))
        self.mp.update(frame, self.person)
        return prob


def test_a_moved_object_that_stays_leaves_the_mask_within_10_s_and_a_still_person_stays():
    """Issue 11's goal at the default update time, 25 fps: a textured box put down at t0 = 2 s (not in the plate)
    is no longer marked from at most t0 + 10 s on, while a person standing still the whole 32 s, whom the method
    keeps marking, is never absorbed (the update never writes under the mask or its margin)."""
    fps, t0, seconds = 25, 50, 32
    plate = make_plate((48, 96), np.random.default_rng(11))
    left, person = add_person(plate[:, :48].copy(), np.random.default_rng(12))
    scene = plate.copy()
    scene[:, :48] = left
    person_mask = np.zeros((48, 96), bool)
    person_mask[:, :48] = person > 127
    box = (slice(16, 32), slice(64, 80))  # far right: well clear of the person and its margin
    texture = np.random.default_rng(13).integers(0, 255, (16, 16, 3)).astype(np.uint8)
    seg = _SiteModelLike(plate, fps, person_mask)
    last_marked, prob = None, None
    for i in range(seconds * fps):
        frame = scene.copy()
        if i >= t0:
            frame[box] = texture
        prob = seg.segment(frame)
        if i >= t0 and (prob[box] > 0.5).mean() > 0.01:
            last_marked = i
    assert last_marked is not None  # it was marked when it appeared
    free_from = last_marked + 1  # the first frame from which the box is no longer marked
    print(f"moved box: background again {(free_from - t0) / fps:.2f} s after it was put down")
    assert free_from <= t0 + 10 * fps, (free_from - t0) / fps
    assert _iou(prob > 0.5, person_mask) > 0.9  # 30 s after the box, the person is still marked
    assert np.array_equal(seg.mp.plate[person_mask], plate[person_mask])  # never learnt under the person


def _light_step_clip(path: Path, plate: np.ndarray, fps: int, seconds: int) -> None:
    """An H.264 clip of the empty scene at ``fps``: the captured light for 1 s, then a light switched off
    (gain 0.75) for the rest of ``seconds``."""
    from humanseg.video import H264Writer

    dark = np.clip(plate * 0.75, 0, 255).astype(np.uint8)
    with H264Writer(path, fps) as writer:
        for i in range(seconds * fps):
            writer.write(plate if i < fps else dark)


def test_the_clips_frame_rate_reaches_the_plate_update(tmp_path):
    """The update time is in seconds: the same light step in a 10 fps and a 25 fps clip is absorbed alike. The
    CLI writes each following plate's end state beside the captured one; from how much of the step is left in the
    end plate, exp(-t / update_s), the seconds of update are read back: 3 s of dark frames for both (a 10 fps clip
    counted at 25 fps would give 1.2 s)."""
    from PIL import Image

    from humanseg.cli import main
    from humanseg.video import read_image

    plate = make_plate((96, 128), np.random.default_rng(7))
    Image.fromarray(plate).save(tmp_path / "plate.png")
    dark = plate.astype(float) * 0.75
    seconds = {}
    for fps in (10, 25):
        clip = tmp_path / f"step{fps}.mp4"
        _light_step_clip(clip, plate, fps, 4)
        out = tmp_path / f"out{fps}"
        args = ["segment", str(clip), "-s", "plate-diff", "--plate", str(tmp_path / "plate.png"), "--masks-only",
                "--plate-update-s", "2", "--out", str(out)]  # fmt: skip
        assert main(args) == 0
        assert np.array_equal(read_image(out / "plate-diff_plate_captured.png"), plate)
        end = read_image(out / "plate-diff_plate_end.png").astype(float)
        left = (end - dark).mean() / (plate - dark).mean()  # share of the step not yet absorbed
        seconds[fps] = -2.0 * math.log(left)
    assert seconds[10] == pytest.approx(3.0, abs=0.25) and seconds[25] == pytest.approx(3.0, abs=0.25), seconds
    assert abs(seconds[10] - seconds[25]) <= 0.2, seconds  # within two frames of the 10 fps clip
    # The captured plate only: no plate images are written.
    fixed = tmp_path / "fixed"
    assert main([*args[:-1], str(fixed), "--fixed-plate"]) == 0
    assert not list(fixed.glob("*_plate_*.png"))


def test_the_frame_rate_can_change_between_clips():
    plate = np.full((*SIZE, 3), 100, np.uint8)
    mp = MaintainedPlate(plate, fps=25, update_s=2.0)
    mp.fps = 10
    assert mp.alpha == pytest.approx(1 - math.exp(-1 / 20))
    with pytest.raises(ValueError, match="clip's frame rate"):
        mp.fps = 0
