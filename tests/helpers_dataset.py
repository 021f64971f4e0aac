"""Tiny synthetic datasets in the on-disk layout that dataset_builder writes (docs/ARCHITECTURE.md).

Plates are smooth gradients with grey blocks; "people" are an upright ellipse body and a round head in a
saturated colour with noise, pasted onto a plate. Small enough to train on in seconds, distinct enough that a
tiny network can learn it to IoU > 0.9.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def make_plate(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A grey-ish site plate: a gradient plus a few flat blocks, uint8 H x W x 3."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 90 + 60 * (xx / w) + 30 * (yy / h)
    plate = np.repeat(base[..., None], 3, axis=2) + rng.normal(0, 3, (h, w, 3))
    for _ in range(3):
        y0, x0 = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
        plate[y0 : y0 + int(rng.integers(3, h // 3)), x0 : x0 + int(rng.integers(3, w // 3))] = rng.integers(60, 200)
    return np.clip(plate, 0, 255).astype(np.uint8)


def add_person(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paste one person-like figure; returns (image, mask 0/255)."""
    h, w = image.shape[:2]
    ph = int(rng.integers(h // 3, int(h * 0.7)))
    pw = max(3, ph // 3)
    cy = int(rng.integers(ph // 2, h - ph // 2))
    cx = int(rng.integers(pw, w - pw))
    yy, xx = np.mgrid[0:h, 0:w]
    body = ((yy - (cy + ph * 0.1)) / (ph * 0.4)) ** 2 + ((xx - cx) / (pw * 0.5)) ** 2 <= 1
    head = ((yy - (cy - ph * 0.38)) ** 2 + (xx - cx) ** 2) <= (pw * 0.45) ** 2
    mask = body | head
    colour = rng.permutation(np.array([220, 40, int(rng.integers(40, 220))], dtype=np.float32))
    person = colour + rng.normal(0, 8, (h, w, 3))
    out = image.astype(np.float32)
    out[mask] = person[mask]
    return np.clip(out, 0, 255).astype(np.uint8), mask.astype(np.uint8) * 255


def write_tiny_dataset(
    root: str | Path,
    n: int = 24,
    size: tuple[int, int] = (48, 64),
    n_val: int = 4,
    n_plates: int = 1,
    seed: int = 0,
    empty_every: int = 0,
) -> Path:
    """Write ``n`` composites (the last ``n_val`` in split val) under ``root``; return ``root``.

    ``empty_every``: every k-th sample shows the bare plate (no person), as real datasets include.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks", "plates"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    plates = []
    for k in range(n_plates):
        plate = make_plate(size, rng)
        rel = f"plates/plate{k:03d}.png"
        Image.fromarray(plate).save(root / rel)
        plates.append((rel, plate))
    samples = []
    for i in range(n):
        rel_plate, plate = plates[i % n_plates]
        jitter = np.clip(plate.astype(np.int16) + rng.integers(-4, 5), 0, 255).astype(np.uint8)
        actors = 0 if empty_every and i % empty_every == 0 else int(rng.integers(1, 3))
        image, mask = jitter, np.zeros(size, np.uint8)
        for _ in range(actors):
            image, m = add_person(image, rng)
            mask = np.maximum(mask, m)
        img_rel, mask_rel = f"images/{i:06d}.png", f"masks/{i:06d}.png"
        Image.fromarray(image).save(root / img_rel)
        Image.fromarray(mask, mode="L").save(root / mask_rel)
        split = "val" if i >= n - n_val else "train"
        samples.append({"image": img_rel, "mask": mask_rel, "plate": rel_plate, "split": split, "actors": actors})
    ident = hashlib.sha256(json.dumps([n, list(size), n_val, n_plates, seed, empty_every]).encode()).hexdigest()
    manifest = {
        "format": "humanseg-dataset/1",
        "id": ident,
        "size": list(size),
        "seed": seed,
        "count": n,
        "params": {"synthetic": True},
        "sources": {"plates": [{"path": p, "sha256": ""} for p, _ in plates], "silhouettes": []},
        "splits": {"train": n - n_val, "val": n_val},
        "samples": samples,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


@functools.cache
def trained_tiny_run() -> tuple[Path, Path]:
    """(dataset_dir, run_dir) of segnet-fast trained to overfit a 14-sample set at 48x64 (96 steps, seconds).

    Trained once per test process and shared by the training, segmenter and export tests; removed at exit.
    """
    from humanseg.train import TrainConfig, run_training

    root = Path(tempfile.mkdtemp(prefix="humanseg-tiny-run-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    dataset = write_tiny_dataset(root / "dataset", n=14, n_val=2, empty_every=5)
    config = TrainConfig(
        model="segnet-fast", size=(48, 64), batch_size=4, lr=3e-3, schedule="constant", augment="none",
        epochs=32, minutes=None, val_every=96, seed=0, threads=1,
    )  # fmt: skip
    run_training(config, dataset, root / "run")
    return dataset, root / "run"
