"""Tiny synthetic fixed-camera footage for the dataset_builder tests (made on the fly, a few KB).

A site is a textured background; people are coloured figures (head, body, legs) with known box and feet row;
clips are written in the CDnet layout (``input/inNNNNNN.png`` + ``groundtruth/gtNNNNNN.png``: 255 person,
50 cast shadow, 170 a one-pixel unknown band) so every loader path of the real data is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def background(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with mild texture (so plates are not flat)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([90 + 60 * x / width, 110 + 50 * y / height, 140 - 40 * x / width], axis=2)
    texture = cv2.GaussianBlur(rng.normal(0, 12, (height, width, 3)).astype(np.float32), (0, 0), 1.5)
    return np.clip(base + texture, 0, 255).astype(np.uint8)


@dataclass
class Person:
    """A walking figure: feet at (x, feet_row), ``height`` px tall, moving ``speed`` px per frame."""

    x: float
    feet_row: int
    height: int
    colour: tuple[int, int, int] = (200, 40, 40)
    speed: float = 3.0


def person_mask(height: int, width_ratio: float = 0.38) -> np.ndarray:
    """Bool mask of a standing figure, exactly ``height`` rows tall (head, torso, two legs)."""
    w = max(5, int(round(height * width_ratio)))
    m = np.zeros((height, w), np.uint8)
    head = max(2, height // 8)
    # Parts at least 3 px wide, so a 3x3 morphological opening keeps the figure's exact height.
    hw = max(3, w // 3)
    cv2.rectangle(m, ((w - hw) // 2, 0), ((w - hw) // 2 + hw - 1, 2 * head), 1, -1)
    cv2.rectangle(m, (w // 5, 2 * head), (w - 1 - w // 5, int(height * 0.58)), 1, -1)
    leg = max(3, w // 5)
    cv2.rectangle(m, (w // 5, int(height * 0.55)), (w // 5 + leg - 1, height - 1), 1, -1)
    cv2.rectangle(m, (w - w // 5 - leg, int(height * 0.55)), (w - 1 - w // 5, height - 1), 1, -1)
    return m.astype(bool)


def person_rgba(height: int, colour=(200, 40, 40), seed: int = 0) -> np.ndarray:
    """RGBA crop of a figure with a 3 px transparent margin."""
    m = person_mask(height)
    rng = np.random.default_rng(seed)
    rgba = np.zeros((height + 6, m.shape[1] + 6, 4), np.uint8)
    body = np.clip(np.array(colour, np.float32) + rng.normal(0, 6, (*m.shape, 3)), 0, 255).astype(np.uint8)
    rgba[3:-3, 3:-3, :3] = body
    rgba[3:-3, 3:-3, 3] = m * 255
    return rgba


def draw(frame: np.ndarray, label: np.ndarray | None, p: Person, *, shadow: bool = False) -> None:
    """Draw person ``p`` on ``frame`` (and 255/50/170 into ``label``) with feet at (p.x, p.feet_row)."""
    m = person_mask(p.height)
    h, w = m.shape
    y0, x0 = p.feet_row - h + 1, int(round(p.x - w / 2))
    fy0, fx0 = max(y0, 0), max(x0, 0)
    fy1, fx1 = min(y0 + h, frame.shape[0]), min(x0 + w, frame.shape[1])
    if fy1 <= fy0 or fx1 <= fx0:
        return
    sub = m[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    if shadow:
        # A flat dark band to the right of the feet: darker ground, same colour.
        sy0, sy1 = p.feet_row - 1, min(p.feet_row + 2, frame.shape[0])
        sx0, sx1 = x0 + w, min(x0 + w + h // 2, frame.shape[1])
        if sx1 > sx0 and sy1 > sy0:
            frame[sy0:sy1, sx0:sx1] = (frame[sy0:sy1, sx0:sx1] * 0.7).astype(np.uint8)
            if label is not None:
                label[sy0:sy1, sx0:sx1] = 50
    frame[fy0:fy1, fx0:fx1][sub] = p.colour
    if label is not None:
        ring = cv2.dilate(sub.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~sub
        label[fy0:fy1, fx0:fx1][ring] = 170
        label[fy0:fy1, fx0:fx1][sub] = 255


def write_clip(root: Path, people: list[Person], frames: int = 20, size: tuple[int, int] = (120, 160), *,
               seed: int = 0, shadow: bool = False, first_number: int = 1, noise: float = 2.0) -> Path:
    """A CDnet-layout clip of ``people`` walking right across a static background; returns ``root``."""
    h, w = size
    bg = background(h, w, seed)
    rng = np.random.default_rng(seed + 1)
    (root / "input").mkdir(parents=True, exist_ok=True)
    (root / "groundtruth").mkdir(exist_ok=True)
    for t in range(frames):
        frame = np.clip(bg + rng.normal(0, noise, bg.shape), 0, 255).astype(np.uint8)
        label = np.zeros((h, w), np.uint8)
        for p in people:
            moved = Person(p.x + p.speed * t, p.feet_row, p.height, p.colour, p.speed)
            draw(frame, label, moved, shadow=shadow)
        n = first_number + t
        Image.fromarray(frame).save(root / "input" / f"in{n:06d}.png")
        Image.fromarray(label).save(root / "groundtruth" / f"gt{n:06d}.png")
    Image.fromarray(bg).save(root / "empty_bg000001.png")
    return root
