"""Milliseconds per frame of each segmenter backend at 320x240 (CPU), one frame at a time.

    python bench/bench_segmenters.py [--frames 100] [--size 320x240] [--checkpoint CKPT] [--rembg-model NAME]

Frames: CDnet pedestrians resized to the bench size when the shared data is present (plate-diff with a plate
uses its empty_bg image), else a synthetic textured scene with a moving block and sensor noise. Each backend
is built once, warmed up on 5 frames (model load, first-call allocations), then timed frame by frame; the
table gives the median and mean ms/frame. Backends that cannot run here (no cached MediaPipe model, no rembg
weights, no SegNet checkpoint) are listed with the reason instead of a number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from humanseg.segmenters import available, create_segmenter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEDESTRIANS = Path(os.environ.get("HUMANSEG_SHARED_DATA", ROOT.parent / "shared" / "data")) / "cdnet" / "pedestrians"
WARMUP = 5


def load_frames(n: int, w: int, h: int) -> tuple[list[np.ndarray], np.ndarray | None, str]:
    """(frames cycled to n, plate or None, description of the source)."""
    if (PEDESTRIANS / "input").is_dir():
        paths = sorted((PEDESTRIANS / "input").iterdir())
        pool = [np.asarray(Image.open(p).convert("RGB").resize((w, h), Image.BILINEAR)) for p in paths]
        plate = np.asarray(Image.open(PEDESTRIANS / "empty_bg000001.jpg").convert("RGB").resize((w, h), Image.BILINEAR))
        source = f"CDnet pedestrians ({len(pool)} frames) resized to {w}x{h}"
    else:
        rng = np.random.default_rng(0)
        plate = rng.integers(40, 210, (h, w, 3)).astype(np.uint8)
        pool = []
        for i in range(60):
            frame = (plate.astype(np.int16) + rng.integers(-4, 5, plate.shape)).clip(0, 255).astype(np.uint8)
            x = (i * 5) % (w - w // 8)
            frame[h // 3 : h // 3 + h // 3, x : x + w // 8] = (200, 60, 40)
            pool.append(frame)
        source = f"synthetic {w}x{h} clip (shared data not found)"
    return [pool[i % len(pool)] for i in range(n + WARMUP)], plate, source


def time_backend(label: str, build, frames: list[np.ndarray]) -> tuple[str, str]:
    try:
        seg = build()
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as err:
        return label, f"not run: {str(err).splitlines()[0][:110]}"
    times = []
    try:
        for i, frame in enumerate(frames):
            t0 = time.perf_counter()
            seg.segment(frame)
            if i >= WARMUP:
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        seg.close()
    med, mean = statistics.median(times), statistics.fmean(times)
    return label, f"{med:8.2f} | {mean:8.2f} | {1000 / mean:7.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="timed frames per backend (default 100)")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--checkpoint", default=None, help="SegNet checkpoint (segnet is skipped without one)")
    parser.add_argument("--rembg-model", default=None, help="rembg model name (default: the backend's default)")
    parser.add_argument("--rembg-model-path", default=None, help="your own ONNX for rembg's u2net_custom session")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    frames, plate, source = load_frames(args.frames, w, h)

    runs = {
        "mog2": lambda: create_segmenter("mog2"),
        "knn": lambda: create_segmenter("knn"),
        "gsoc": lambda: create_segmenter("gsoc"),
        "plate-diff (given plate)": lambda: create_segmenter("plate-diff", plate=plate),
        "plate-diff (running median)": lambda: create_segmenter("plate-diff"),
        "mediapipe": lambda: create_segmenter("mediapipe"),
        "rembg": lambda: create_segmenter(
            "rembg", model_path=args.rembg_model_path, **({"model": args.rembg_model} if args.rembg_model else {})
        ),
        "segnet": lambda: _segnet(args.checkpoint, plate),
    }
    missing = set(available()) - {label.split()[0] for label in runs}
    if missing:
        raise SystemExit(f"bench_segmenters.py does not cover backends {sorted(missing)}: add them to `runs`")

    print(f"frames: {source}; {args.frames} timed frames after {WARMUP} warm-up; {os.cpu_count()} CPU cores")
    print(f"| {'backend':<28} | median ms | mean ms  | frames/s |")
    print(f"|{'-' * 30}|-----------|----------|----------|")
    for label, build in runs.items():
        label, result = time_backend(label, build, frames)
        print(f"| {label:<28} | {result} |")
    return 0


def _segnet(checkpoint: str | None, plate: np.ndarray | None):
    if checkpoint is None:
        raise ValueError("no --checkpoint given")
    return create_segmenter("segnet", checkpoint=checkpoint, plate=plate)


if __name__ == "__main__":
    raise SystemExit(main())
