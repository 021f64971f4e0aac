"""GPU throughput check (not a test): what one CUDA GPU gives the site model, as a table.

    bash bench/gpu_check.sh                        # on a machine with a GPU; elsewhere it says none was found
    python bench/gpu_check.py --quick --json out.json

Measures, each in this one process unless said otherwise:
1. training images/s through the real training loop (``humanseg.train.train``: data on the GPU, bf16 autocast,
   channels_last) for the default preset at 240x320 and the paper-faithful ``segnet-paper`` at 360x640, on a
   synthetic dataset written to a temporary folder, at the product's default batch (8) and a larger one;
2. inference frames/s of the network alone, batched, bf16 autocast and fp32, at 240x320 and 360x640
   (CUDA events around ``model.predict``; the first calls are warm-up);
3. the trained-model segmenter (``segment_batch``: resize, network, plate completion on the CPU) at 240x320;
4. one ``torchrun --nproc-per-node 1`` training step (nccl) through the CLI, in a subprocess;
5. end to end: ``humanseg.segment.segment_video`` (the pipeline: decoding, batched segmenting and encoding
   overlap) on generated 320x240 and 720x576 H.264 clips, masks only and with all outputs (mask, overlay and
   side-by-side videos), the site model and MOG2 in the same process.
Random weights: speed does not depend on them. Numbers are for the machine it ran on; print them with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cuda"  # --device cpu runs the same code paths on the CPU (a smoke run of this script)
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from humanseg.models import DEFAULT_PRESET, PRESETS, build_model, compose_input  # noqa: E402
from tests.helpers_dataset import make_plate, write_tiny_dataset  # noqa: E402


def _row(rows: list[dict], what: str, config: str, value: float, unit: str, goal: str = "") -> None:
    rows.append({"what": what, "config": config, "value": value, "unit": unit, "goal": goal})
    print(f"| {what} | {config} | {value:,.1f} {unit} | {goal} |", flush=True)


def train_speed(preset: str, size: tuple[int, int], batch: int, seconds: float, tmp: Path) -> float:
    """Images/s of the training loop's steps after a warm-up (validation excluded)."""
    from humanseg.train import TrainConfig, train

    n = 8 * batch + 4 if DEVICE == "cuda" else 8  # 8 steps per epoch on the GPU; the CPU smoke run: 2 steps
    data = tmp / f"data_{size[0]}x{size[1]}_{n}"
    if not (data / "manifest.json").exists():
        write_tiny_dataset(data, n=n, size=size, n_val=4)
    # An epoch budget, not minutes: the first steps (CUDA start-up, cuDNN autotuning) can take most of a short
    # time budget. 8 steps per epoch; the first ~third of the steps are warm-up and not timed.
    epochs = max(2, round(seconds)) if DEVICE == "cuda" else 1
    config = TrainConfig(model=preset, size=size, batch_size=batch, val_every=10**9, minutes=None, epochs=epochs)
    steps: list[tuple[int, float]] = []
    for event in train(config, data, tmp / f"run_{preset}_{batch}", progress=False):
        if event.kind == "step":
            steps.append((event.step, event.elapsed_s))
    if len(steps) < 2:
        raise RuntimeError(f"{preset}: {len(steps)} training step(s); nothing to time")
    warm = min(10, len(steps) // 3)
    (s0, t0), (s1, t1) = steps[warm], steps[-1]
    return (s1 - s0) * batch / max(t1 - t0, 1e-9)


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def infer_speed(preset: str, size: tuple[int, int], batch: int, bf16: bool) -> float:
    """Frames/s of ``model.predict`` on a batch already on the device (after warm-up, synchronised)."""
    config = PRESETS[preset].replace(input_size=size)
    model = build_model(config).to(DEVICE).eval().to(memory_format=torch.channels_last)
    h, w = size
    frames = torch.rand(batch, 3, h, w, device=DEVICE)
    plate = torch.rand(batch, 3, h, w, device=DEVICE) if config.needs_plate else None
    x = compose_input(frames, plate, config.inputs).contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=bf16)
    iters = 20 if DEVICE == "cuda" else 1
    with torch.inference_mode(), ctx:
        for _ in range(3 if DEVICE == "cuda" else 1):
            model.predict(x)
        _sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            model.predict(x)
        _sync()
    return batch * iters / (time.perf_counter() - t0)


def segmenter_speed(preset: str, size: tuple[int, int], batch: int, n: int = 256) -> float:
    """Frames/s of the trained-model segmenter's ``segment_batch`` on uint8 frames (completion included)."""
    from humanseg.segmenters.segnet import SegNetSegmenter

    config = PRESETS[preset].replace(input_size=size)
    model = build_model(config).to(DEVICE).to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    plate = make_plate(size, rng)
    frames = [np.clip(plate.astype(np.int16) + rng.integers(-3, 4, plate.shape), 0, 255).astype(np.uint8)
              for _ in range(n)]  # fmt: skip
    seg = SegNetSegmenter.from_model(model, plate if config.needs_plate else None, batch_size=batch)
    seg.segment_batch(frames[:batch])
    _sync()
    t0 = time.perf_counter()
    seg.segment_batch(frames)
    _sync()
    return n / (time.perf_counter() - t0)


def torchrun_step(tmp: Path) -> tuple[bool, str]:
    """One training step through ``torchrun --nproc-per-node 1 -m humanseg train`` (nccl on CUDA)."""
    data = write_tiny_dataset(tmp / "ddp_data", n=12, size=(240, 320), n_val=4)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "-m", "humanseg", "train",
           str(data), "--out", str(tmp / "ddp_run"), "--epochs", "1", "--batch-size", "8"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - t0
    log = (proc.stdout + proc.stderr).strip().splitlines()
    ok = proc.returncode == 0 and (tmp / "ddp_run" / "last.pt").exists()
    return ok, f"exit {proc.returncode}, {took:.1f} s wall; " + " / ".join(log[-3:])[-300:]


def end_to_end(preset: str, tmp: Path, frames: int = 300) -> dict[tuple[str, str, str], float]:
    """Frames/s of ``segment_video`` (the pipeline: decoding, batched segmenting and encoding overlap) for the site
    model (its default batch size for the device) and MOG2, at 320x240 and 720x576, with masks only
    (``--masks-only``) and with all outputs (mask, overlay and side-by-side videos). Keys: (method, outputs, size)."""
    from humanseg.segment import segment_video
    from humanseg.segmenters import create_segmenter
    from humanseg.segmenters.segnet import SegNetSegmenter
    from humanseg.video import H264Writer

    config = PRESETS[preset]
    model = build_model(config).to(DEVICE).to(memory_format=torch.channels_last)
    out = {}
    for h, w in ((240, 320), (576, 720)):
        rng = np.random.default_rng(1)
        plate = make_plate((h, w), rng)
        clip = tmp / f"clip_{w}x{h}.mp4"
        with H264Writer(clip, 25.0) as writer:
            for i in range(frames):
                frame = plate.copy()
                x = w // 32 + (i * w // 100) % (w * 7 // 8)
                frame[h // 3 : h * 5 // 6, x : x + w // 10] = (200, 40, 60)  # a "person" walking across
                writer.write(frame)
        for name, seg in (
            ("site model", SegNetSegmenter.from_model(model, plate if config.needs_plate else None)),
            ("mog2", create_segmenter("mog2")),
        ):
            for outputs, masks_only in (("masks only", True), ("mask + overlay + side by side", False)):
                result = segment_video(
                    clip, [seg], tmp / f"e2e_{name.replace(' ', '_')}_{w}", masks_only=masks_only
                )
                out[(name, outputs, f"{w}x{h}")] = result.frames_per_second
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings (about half the time)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cpu: run the same steps on the CPU with tiny timings (checks the script, not a GPU)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print(f"no GPU found: torch {torch.__version__} sees no CUDA device, so nothing was measured")
        return 0
    seconds = 0.5 if DEVICE == "cpu" else 10.0 if args.quick else 20.0
    name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {name}, CUDA {torch.version.cuda}, {os.cpu_count()} CPU cores, "
          f"default preset {DEFAULT_PRESET}\n")  # fmt: skip
    print("| what | config | measured | goal (throughput issue) |\n|---|---|---:|---|")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="humanseg-gpu-") as tmp_name:
        tmp = Path(tmp_name)
        big = DEVICE == "cuda"  # the CPU smoke run uses tiny batches: it checks the script, it measures nothing
        for preset, size, batches in ((DEFAULT_PRESET, (240, 320), (8, 64) if big else (2,)),
                                      ("segnet-paper", (360, 640), (8, 32) if big else (2,))):  # fmt: skip
            for batch in batches:
                ips = train_speed(preset, size, batch, seconds, tmp)
                _row(rows, "training", f"{preset} {size[0]}x{size[1]} batch {batch}, bf16", ips, "images/s")
        for preset, size, goal in (
            (DEFAULT_PRESET, (240, 320), ">= 1000 frames/s"),
            (DEFAULT_PRESET, (360, 640), ""),
            ("segnet-paper", (360, 640), ">= 300 frames/s (bf16)"),
        ):
            for batch in (1, 64, 256) if big else (1, 2):
                for bf16 in (True, False):
                    fps = infer_speed(preset, size, batch, bf16)
                    kind = "bf16" if bf16 else "fp32"
                    _row(rows, "inference, network", f"{preset} {size[0]}x{size[1]} batch {batch}, {kind}", fps,
                         "frames/s", goal if batch > 1 and (bf16 or "bf16" not in goal) else "")  # fmt: skip
        for batch in (8, 64) if big else (2,):
            fps = segmenter_speed(DEFAULT_PRESET, (240, 320), batch, n=256 if big else 8)
            _row(rows, "segmenter (resize + network + completion)", f"{DEFAULT_PRESET} 240x320 batch {batch}", fps,
                 "frames/s")  # fmt: skip
        ok, text = torchrun_step(tmp)
        rows.append({"what": "torchrun --nproc-per-node 1 (nccl), one step", "ok": ok, "log": text})
        print(f"| torchrun --nproc-per-node 1 (nccl), one step | {'ok' if ok else 'FAILED'} | {text} | |", flush=True)
        try:
            e2e = end_to_end(DEFAULT_PRESET, tmp, frames=300 if big else 20)
        except ImportError as exc:  # PyAV missing on this machine
            print(f"| end to end | skipped | {exc} | |")
        else:
            for (name, outputs, size), fps in e2e.items():
                _row(rows, f"end to end (segment_video, {outputs})", f"{name}, {size} clip", fps, "frames/s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
