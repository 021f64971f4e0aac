"""Training images/s and inference frames/s of every model preset on this machine (not a test).

    .venv/bin/python bench/bench_models.py                     # all presets, 240x320 and 360x640
    .venv/bin/python bench/bench_models.py --presets segnet-fast unet-fast --sizes 240x320 --max-seconds 5

Each cell: one warm-up, then timed iterations until ``--iters`` or ``--max-seconds`` (at least one).
Training = augmentation (default recipe) + forward + loss + backward + AdamW step on random images, batch
``--batch-size``; inference = ``model.predict`` on one frame (latency -> frames/s). Both with the default
(contiguous) memory layout and with channels_last. Numbers on a shared machine are lower bounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from humanseg.models import PRESETS, build_model, compose_input, count_parameters  # noqa: E402
from humanseg.train import _Loss  # noqa: E402
from humanseg.trainset import augment_batch  # noqa: E402


def _timed(fn, iters: int, max_seconds: float) -> float:
    """Seconds per call: one warm-up, then up to ``iters`` calls or ``max_seconds``."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < iters and (not times or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def bench(preset: str, size: tuple[int, int], channels_last: bool, batch: int, iters: int, max_s: float) -> dict:
    torch.manual_seed(0)
    config = PRESETS[preset].replace(input_size=size)
    model = build_model(config)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    h, w = size
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, h, w), dtype=torch.uint8, generator=g)
    masks = torch.randint(0, 2, (batch, h, w), dtype=torch.uint8, generator=g)
    plates = images.clone() if config.needs_plate else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = _Loss("ce+dice")

    def train_step() -> None:
        frames, target, plate = augment_batch(images, masks, plates, "default", g)
        x = compose_input(frames, plate, config.inputs).contiguous(memory_format=fmt)
        loss = loss_fn(model(x), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    train_s = _timed(train_step, iters, max_s)
    model.eval()
    x1 = compose_input(torch.rand(1, 3, h, w), torch.rand(1, 3, h, w) if plates is not None else None, config.inputs)
    x1 = x1.contiguous(memory_format=fmt)
    infer_s = _timed(lambda: model.predict(x1), iters, max_s)
    return {
        "preset": preset,
        "size": f"{h}x{w}",
        "layout": "channels_last" if channels_last else "contiguous",
        "params_m": count_parameters(model) / 1e6,
        "train_img_s": batch / train_s,
        "infer_fps": 1.0 / infer_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--sizes", nargs="+", default=["240x320", "360x640"], metavar="HxW")
    parser.add_argument("--batch-size", type=int, default=2, help="training batch (default 2)")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per cell at most (default 5)")
    parser.add_argument("--max-seconds", type=float, default=8.0, help="time per cell and mode at most (default 8)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, training batch {args.batch_size}")
    print("| preset | size | layout | params (M) | train images/s | inference frames/s |")
    print("|---|---|---|---:|---:|---:|")
    for preset in args.presets:
        for size in sizes:
            for channels_last in (False, True):
                r = bench(preset, size, channels_last, args.batch_size, args.iters, args.max_seconds)
                print(f"| {r['preset']} | {r['size']} | {r['layout']} | {r['params_m']:.2f} | "
                      f"{r['train_img_s']:.2f} | {r['infer_fps']:.2f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
