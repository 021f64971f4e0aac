"""The segnet segmenter: a trained checkpoint applied to frames of any size, with and without a plate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from helpers_dataset import add_person, make_plate, trained_tiny_run

from humanseg.checkpoint import save_checkpoint
from humanseg.models import ModelConfig, build_model, compose_input, images_to_tensor
from humanseg.segmenters import create_segmenter
from humanseg.segmenters.segnet import SegNetSegmenter
from humanseg.video import read_image


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_trained_model_finds_the_person_at_frame_size():
    dataset, run = trained_tiny_run()
    # On the CPU: on a GPU, batch sizes pick other (TF32) kernels, and the comparisons below are about resizing
    # and batching, not about kernels.
    seg = create_segmenter("segnet", checkpoint=run / "best.pt", device="cpu")
    assert isinstance(seg, SegNetSegmenter) and seg.name == "segnet" and seg.input_size == (48, 64)
    assert seg.label == f"site:{run.name}"  # its one name in tables, captions and file names: the run folder
    image = read_image(dataset / "images" / "000001.png")
    truth = read_image(dataset / "masks" / "000001.png")[..., 0] > 127
    # A frame 3x larger than the training size, odd on purpose: the mask comes back at the frame's size.
    frame = cv2.resize(image, (193, 145), interpolation=cv2.INTER_LINEAR)
    prob = seg.segment(frame)
    assert prob.shape == (145, 193) and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    big_truth = cv2.resize(truth.astype(np.uint8), (193, 145), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert _iou(prob > 0.5, big_truth) > 0.85
    # segment_batch: same answers, frames of different sizes in one call.
    batch = seg.segment_batch([frame, image, frame])
    assert [p.shape for p in batch] == [(145, 193), (48, 64), (145, 193)]
    assert np.allclose(batch[0], prob, atol=1e-5) and np.allclose(batch[2], prob, atol=1e-5)
    # Flip averaging: the mean of the frame's answer and the mirrored answer of the mirrored frame.
    averaged = SegNetSegmenter(run / "best.pt", flip_tta=True, device="cpu").segment(frame)
    mirrored = seg.segment(np.ascontiguousarray(frame[:, ::-1]))[:, ::-1]
    assert np.allclose(averaged, 0.5 * (prob + mirrored), atol=2e-3)


def test_plate_model_uses_checkpoint_plate_or_the_callers(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig("segnet", width=0.0625, inputs="frame+plate+diff", input_size=(64, 96))).eval()
    rng = np.random.default_rng(0)
    plate = make_plate((64, 96), rng)
    ckpt = save_checkpoint(tmp_path / "plate.pt", model, plate=plate)
    frame, _ = add_person(cv2.resize(plate, (150, 100)), rng)  # a frame at another size than the model

    # The network alone (completion has its own test), on the CPU like the reference below.
    seg = SegNetSegmenter(ckpt, complete=False, device="cpu", follow_plate=False)  # the captured plate
    assert np.array_equal(seg.plate, plate)
    prob = seg.segment(frame)
    # Reference: resize frame and plate to the model size, run the model, resize back.
    small = cv2.resize(frame, (96, 64), interpolation=cv2.INTER_AREA)
    x = compose_input(images_to_tensor(small), images_to_tensor(plate), "frame+plate+diff")
    ref = cv2.resize(model.predict(x)[0].numpy(), (150, 100), interpolation=cv2.INTER_LINEAR)
    assert prob.shape == (100, 150) and np.allclose(prob, ref, atol=1e-4)

    other_plate = np.full((30, 40, 3), 200, np.uint8)  # any size: resized to the model's
    other = SegNetSegmenter(ckpt, plate=other_plate, device="cpu").segment(frame)
    assert not np.allclose(other, prob, atol=1e-3)
    path = tmp_path / "plate.png"
    cv2.imwrite(str(path), other_plate[..., ::-1])
    from_file = create_segmenter("segnet", checkpoint=ckpt, plate=path, device="cpu").segment(frame)
    assert np.allclose(from_file, other, atol=1e-6)


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="needs a checkpoint"):
        SegNetSegmenter()
    plate_model = build_model(ModelConfig("segnet", width=0.0625, inputs="frame+plate", input_size=(32, 32)))
    no_plate = save_checkpoint(tmp_path / "noplate.pt", plate_model)
    with pytest.raises(ValueError, match="pass plate=IMAGE"):
        SegNetSegmenter(no_plate)
    frame_model = save_checkpoint(tmp_path / "frame.pt", build_model(ModelConfig("segnet", width=0.0625)))
    with pytest.raises(ValueError, match="cannot use a plate"):
        SegNetSegmenter(frame_model, plate=np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        SegNetSegmenter(frame_model).segment(np.zeros((8, 8, 3), np.float32))


def test_from_model_restores_training_mode():
    model = build_model(ModelConfig("segnet", width=0.0625, input_size=(32, 48)))
    model.train()
    seg = SegNetSegmenter.from_model(model)
    out = seg.segment(np.zeros((40, 50, 3), np.uint8))
    assert out.shape == (40, 50) and model.training


class _TopOfLeftBox(torch.nn.Module):
    """A stand-in plate network that finds only the top half of the red box on the left of the frame."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(9, 1, 1)  # a parameter, so the segmenter finds the device
        self.config = ModelConfig("unet", inputs="frame+plate+diff", input_size=(60, 80))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        red = (x[:, 0] > 0.7) & (x[:, 1] < 0.3)
        rows = torch.arange(x.shape[-2])[:, None] < 25
        cols = torch.arange(x.shape[-1])[None, :] < 40
        return (red & rows & cols).float()


def test_plate_completion_adds_the_blobs_the_network_touches():
    rng = np.random.default_rng(1)
    plate = make_plate((60, 80), rng)
    frame = plate.copy()
    frame[10:40, 10:20] = (230, 20, 20)  # a person the network half finds
    frame[10:40, 50:60] = (230, 20, 20)  # a change the network does not call a person
    network_only = SegNetSegmenter.from_model(_TopOfLeftBox(), plate, complete=False).segment(frame) > 0.5
    assert network_only.sum() == 15 * 10 and network_only[10:25, 10:20].all()
    completed = SegNetSegmenter.from_model(_TopOfLeftBox(), plate).segment(frame) > 0.5
    expect = np.zeros((60, 80), bool)
    expect[10:40, 10:20] = True  # the whole left blob; the right one stays out
    assert np.array_equal(completed, expect)
    # A light change that merges with the person into one large blob (network share 150 / 1100 < 1/4) stays out.
    lit = frame.copy()
    lit[40:60, 0:40] = np.clip(lit[40:60, 0:40].astype(int) + 90, 0, 255)
    lit[40:60, 10:20] = (230, 20, 20)  # the person's legs, inside the lit patch, ...
    lit[40:60, 0:10] = 255  # ... and a lit area that is not red
    assert np.array_equal(SegNetSegmenter.from_model(_TopOfLeftBox(), plate).segment(lit) > 0.5, network_only)
    # A frame-only model has no plate to complete with.
    assert SegNetSegmenter.from_model(build_model(ModelConfig("unet", width=0.0625))).complete is False
