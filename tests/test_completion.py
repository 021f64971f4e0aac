"""Plate completion of the trained-model segmenter, computed only around the network's mask, gives what the
whole-frame computation gives, on real dev frames (skipped where the footage is absent)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from humanseg.models import ModelConfig, build_model, resize_image
from humanseg.plate import plate_probability
from humanseg.segmenters.segnet import COMPLETION_COVER, SegNetSegmenter
from humanseg.video import read_image, read_label

PEDESTRIANS = Path("/work/shared/data/cdnet/pedestrians")


def whole_frame_completion(prob: np.ndarray, frame: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Completion as first written: the plate difference and its blobs over the whole frame."""
    diff = plate_probability(frame, resize_image(plate, frame.shape[:2]))
    n, blobs = cv2.connectedComponents((diff > 0.5).astype(np.uint8), connectivity=8)
    if n <= 1:
        return prob
    area = np.bincount(blobs.ravel(), minlength=n)
    covered = np.bincount(blobs.ravel(), weights=(prob > 0.5).ravel(), minlength=n)
    keep = covered >= COMPLETION_COVER * area
    keep[0] = False
    return np.maximum(prob, np.where(keep[blobs], diff, 0.0)).astype(np.float32)


def _segmenter(plate: np.ndarray) -> SegNetSegmenter:
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", width=0.125, inputs="frame+plate+diff", input_size=(48, 64), prior=True))
    return SegNetSegmenter.from_model(model.eval(), plate, complete=False)  # the network alone: masks to complete


def _masks(frame: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Network-like masks: the labelled people shrunk (a blurred, low-resolution answer), a shifted copy that
    half misses them, and a few stray pixels."""
    person = (label == 255).astype(np.float32)
    shrunk = cv2.erode(cv2.GaussianBlur(person, (0, 0), 2.0), np.ones((5, 5), np.uint8))
    shifted = np.roll(shrunk, (3, 9), axis=(0, 1))
    stray = np.zeros_like(person)
    ys, xs = rng.integers(0, person.shape[0], 40), rng.integers(0, person.shape[1], 40)
    stray[ys, xs] = 0.9
    return [shrunk, shifted, np.maximum(shrunk, stray), np.zeros_like(person)]


@pytest.mark.skipif(not PEDESTRIANS.is_dir(), reason=f"dev footage {PEDESTRIANS} is absent")
@pytest.mark.parametrize("size", [None, (576, 720), (720, 1280)])  # cells of 1, 2 and 3 pixels
def test_completion_around_the_mask_equals_the_whole_frame(size: tuple[int, int] | None) -> None:
    plate = read_image(next(PEDESTRIANS.glob("empty_bg*")))
    seg = _segmenter(plate)
    rng = np.random.default_rng(0)
    images = sorted((PEDESTRIANS / "input").iterdir())
    labels = sorted((PEDESTRIANS / "groundtruth").iterdir())
    compared = changed = 0
    for image, label_path in list(zip(images, labels, strict=True))[::2]:
        frame, label = read_image(image), read_label(label_path)
        if size is not None:
            frame = cv2.resize(frame, size[::-1], interpolation=cv2.INTER_LINEAR)
            label = cv2.resize(label, size[::-1], interpolation=cv2.INTER_NEAREST)
        for prob in [*_masks(frame, label, rng), seg._run([frame])[0]]:
            prob = prob.astype(np.float32)
            new = seg._completed(prob, frame)
            old = whole_frame_completion(prob, frame, plate)
            assert new.dtype == np.float32 and np.array_equal(new, old)
            compared += 1
            changed += int(not np.array_equal(new, prob))
    assert compared >= 100 and changed >= compared // 4  # completion did add blobs in many of them
