"""The one plate-difference rule (humanseg.plate): numpy and torch agree, and every user gets the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humanseg import plate as plate_rule
from humanseg.models import ModelConfig, build_model, compose_input, images_to_tensor
from humanseg.segmenters.plate_diff import PlateDiffSegmenter


def _pair(h: int = 240, w: int = 320, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random plate and a frame that differs from it by a smooth field plus noise, so every part of the ramp
    (distance 25..45) and both sides of it occur, with blobs big enough for the morphology to matter."""
    rng = np.random.default_rng(seed)
    plate = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    field = 30 * (1 + np.sin(xx / 9.0) * np.cos(yy / 7.0))  # 0..60 per channel
    noise = rng.normal(0, 4, (h, w, 3))
    frame = np.clip(plate.astype(np.float64) + field[..., None] / np.sqrt(3) + noise, 0, 255).round().astype(np.uint8)
    return frame, plate


# Float32 rounding of the distance (computed on 0..255 values in numpy, on 0..1 values times 255 in torch)
# moves a ramp value by at most a few 1e-6; 1e-4 leaves room and is far below anything a threshold sees.
TOLERANCE = 1e-4


def test_numpy_and_torch_agree_with_the_same_window():
    frame, plate = _pair()
    ours = plate_rule.plate_probability(frame, plate, window="square")
    theirs = plate_rule.plate_probability_torch(images_to_tensor(frame), images_to_tensor(plate))[0, 0].numpy()
    assert ours.dtype == np.float32 and ours.shape == frame.shape[:2]
    assert 0.05 < float((ours > 0.5).mean()) < 0.95  # both sides of the threshold occur
    assert float(np.abs(ours - theirs).max()) <= TOLERANCE


def test_window_shape_is_the_only_difference_between_segmenter_and_prior():
    frame, plate = _pair(seed=1)
    ellipse = plate_rule.plate_probability(frame, plate)
    square = plate_rule.plate_probability(frame, plate, window="square")
    torch_square = plate_rule.plate_probability_torch(images_to_tensor(frame), images_to_tensor(plate))[0, 0].numpy()
    # The windows differ (a 3x3 ellipse is a cross): on this noisy field 4.2% of the pixels change sides of 0.5,
    # where the noise straddles the threshold; on a solid person box only its 4 corners do (test_models).
    differ = (ellipse > 0.5) != (torch_square > 0.5)
    assert 0 < float(differ.mean()) < 0.05
    assert float(np.abs(square - torch_square).max()) <= TOLERANCE


def test_segmenter_output_is_the_rule():
    frame, plate = _pair(seed=2)
    seg = PlateDiffSegmenter(plate, follow_plate=False)  # the captured plate (a maintained one: its own tests)
    assert np.array_equal(seg.segment(frame), plate_rule.plate_probability(frame, plate))
    custom = PlateDiffSegmenter(plate, threshold=20, ramp=0, open_radius=0, close_radius=2, follow_plate=False)
    expect = plate_rule.plate_probability(frame, plate, plate_rule.PlateRule(20, 0, 0, 2))
    assert np.array_equal(custom.segment(frame), expect)


def test_untrained_prior_model_outputs_the_rule():
    frame, plate = _pair(h=120, w=160, seed=3)
    config = ModelConfig("unet", width=0.0625, inputs="frame+plate+diff", input_size=(120, 160), prior=True)
    model = build_model(config).eval()
    x = compose_input(images_to_tensor(frame), images_to_tensor(plate), config.inputs)
    prob = model.predict(x)[0].numpy()
    prior = plate_rule.plate_probability_torch(x[:, :3], x[:, 3:6], height=120)[0, 0].numpy()
    # Zero last layer: the model's person probability is the prior, clamped to [0.02, 0.98].
    expect = np.clip(prior, 0.02, 0.98)
    assert float(np.abs(prob - expect).max()) < 1e-4


def test_radii_scale_with_height():
    rule = plate_rule.DEFAULT_RULE
    assert (rule.threshold, rule.ramp, rule.low) == (35.0, 20.0, 25.0)
    assert rule.radii(240) == (1, 3)
    assert rule.radii(480) == (2, 6)
    assert rule.radii(60) == (0, 1)  # 0.25 rounds to 0: the opening is off at 60 rows
    assert plate_rule.PlateRule(open_radius=0).radii(480) == (0, 6)


def test_hard_rule_is_the_largest_channel_difference():
    plate = np.full((2, 3, 3), 100, np.uint8)
    frame = plate.copy()
    frame[0, 0] = (131, 100, 100)  # one channel over 30
    frame[0, 1] = (120, 120, 120)  # every channel 20: Euclidean 34.6, but no channel over 30
    frame[1, 2] = (70, 100, 100)  # darker by 30: not more than 30
    assert plate_rule.changed(frame, plate, 30).tolist() == [[True, False, False], [False, False, False]]
    assert plate_rule.channel_difference(frame, plate)[0].tolist() == [31, 20, 0]


def test_bad_parameters_name_the_value_and_the_fix():
    frame, plate = _pair(h=8, w=8)
    with pytest.raises(ValueError, match="window 'round'.*ellipse, square"):
        plate_rule.plate_probability(frame, plate, window="round")
    with pytest.raises(ValueError, match="square windows only.*'ellipse'"):
        plate_rule.plate_probability_torch(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), window="ellipse")
    with pytest.raises(ValueError, match="plate size 4x8 does not match frame size 8x8"):
        plate_rule.plate_probability(frame, plate[:, :4])
    with pytest.raises(ValueError, match=r"ramp must be in \[0, 2 \* threshold\) = \[0, 20\), got 25"):
        plate_rule.PlateRule(10, 25)
    with pytest.raises(ValueError, match="threshold must be > 0"):
        plate_rule.PlateRule(0)
    with pytest.raises(ValueError, match="radii must be >= 0, got open=-1"):
        plate_rule.PlateRule(open_radius=-1)


def _float_rule(frame: np.ndarray, plate: np.ndarray, rule: plate_rule.PlateRule) -> np.ndarray:
    """The rule as first written, on floats: distance, ramp, then morphology on probabilities."""
    prob = plate_rule.ramp_probability(plate_rule.rgb_distance(frame, plate), rule)
    return plate_rule.morphology(prob, rule, frame.shape[0])


@pytest.mark.parametrize(
    "rule",
    [
        plate_rule.DEFAULT_RULE,
        plate_rule.PlateRule(threshold=35.0, ramp=0.0),  # hard: a 0 and a 1 only
        plate_rule.PlateRule(threshold=20.3, ramp=7.7, open_radius=2, close_radius=0),
        plate_rule.PlateRule(threshold=5.0, ramp=9.0),  # ramp starting at distance 0.5
        plate_rule.PlateRule(threshold=150.0, ramp=100.0),
    ],
)
def test_integer_codes_give_the_float_rule_bit_for_bit(rule: plate_rule.PlateRule) -> None:
    rng = np.random.default_rng(1)
    plate = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    # Every distance from 0 to far beyond the ramp, in blobs and as noise.
    frame = np.clip(plate.astype(int) + rng.integers(-90, 91, plate.shape), 0, 255).astype(np.uint8)
    frame[30:90, 40:80] = 255 - plate[30:90, 40:80]
    assert np.array_equal(plate_rule.plate_probability(frame, plate, rule), _float_rule(frame, plate, rule))


def test_rules_beyond_distance_255_use_floats() -> None:
    far = plate_rule.PlateRule(threshold=300.0, ramp=100.0)
    assert plate_rule.code_table(far) is None
    frame, plate = _pair(h=16, w=16)
    assert np.array_equal(plate_rule.plate_probability(frame, plate, far), _float_rule(frame, plate, far))
    with pytest.raises(ValueError, match="beyond RGB distance 255"):
        plate_rule.distance_codes(frame, plate, far)
