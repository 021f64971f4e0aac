"""Throughput of the video path, side by side in one process: the site model vs MOG2 vs plate-diff vs MediaPipe.

    python bench/bench_throughput.py [--frames 200] [--sizes 320x240,720x576] [--checkpoint CKPT]
                                     [--json bench_throughput.json] [--rss-minutes M]

For each frame size, one H.264 clip is written from the same frames (CDnet pedestrians resized when the shared
data is present, else a synthetic scene; the plate is the scene's empty image), and every method is measured on
it: as a segmenter (ms/frame over frames in memory, through :func:`humanseg.segment.segment_frames`, so the site
model gets its batches), end to end with masks only (`segment --masks-only`: decode, segment, encode the mask
video) and with all outputs (mask + overlay + side-by-side videos), with each number's ratio to MOG2's. The
stages of the site model's masks-only run are timed apart too (decoding alone, writing the mask video alone), to
show where the time goes.

The site model: ``--checkpoint`` if given, else the default preset (``unet-fast-prior``) untrained, with the scene's
plate. Its weights do not change its cost, and an untrained prior model outputs the plate difference, so plate
completion sees person-shaped masks. Rows: the network alone (completion off) and with completion (the default).
MediaPipe is skipped, with the reason, when its model file is not cached (nothing is downloaded). Two more rows,
``..., empty scene``: the site model and MOG2 on a clip of the plate with sensor noise (nobody in view, as most
hours of a site's day), the site model's ratio to MOG2 on that clip. Not a test:
run it on an idle machine; the load average is printed with the table and written to the JSON.

``--rss-minutes M``: instead, memory over a long clip: a generated 1280x720 clip of M minutes at ``--rss-fps``
frames/s (default 25; many recorders keep long footage at a few frames/s) through the site model's masks-only
path, the process's resident memory sampled every 5 s (a table by minute of processing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from bench.bench_segmenters import WARMUP as LOADED_WARMUP  # noqa: E402
from bench.bench_segmenters import load_frames  # noqa: E402
from humanseg.segment import batch_size_of, segment_frames, segment_video  # noqa: E402
from humanseg.segmenters import Segmenter, create_segmenter  # noqa: E402
from humanseg.video import H264Writer, open_frames  # noqa: E402

WARMUP = 8  # frames segmented before timing (model load, first-call allocations, oneDNN kernel choice)


def site_model(checkpoint: str | None, plate: np.ndarray, folder: Path, *, complete: bool) -> Segmenter:
    """The trained-model segmenter: ``checkpoint``, else the default preset untrained (see the module docstring)."""
    if checkpoint is None:
        import torch

        from humanseg.checkpoint import save_checkpoint
        from humanseg.models import DEFAULT_PRESET, build_model

        checkpoint = str(folder / "untrained.pt")
        if not Path(checkpoint).exists():
            torch.manual_seed(0)
            save_checkpoint(checkpoint, build_model(DEFAULT_PRESET), plate=plate)
    seg = create_segmenter("segnet", checkpoint=checkpoint, plate=plate, device="cpu")
    seg.complete = complete
    return seg


def segmenter_ms(seg: Segmenter, frames: list[np.ndarray]) -> float:
    """Mean ms/frame of ``seg`` over ``frames`` after :data:`WARMUP` frames, batched as the video path does."""
    list(segment_frames(frames[:WARMUP], [seg], batch_size=batch_size_of(seg)))
    t0 = time.perf_counter()
    for _ in segment_frames(frames, [seg], batch_size=batch_size_of(seg)):
        pass
    return (time.perf_counter() - t0) * 1000.0 / len(frames)


def end_to_end_ms(seg: Segmenter, clip: Path, out: Path, *, masks_only: bool) -> float:
    """Wall-clock ms per frame of :func:`segment_video` on ``clip`` (reading, segmenting and writing)."""
    result = segment_video(clip, seg, out, masks_only=masks_only)
    return result.seconds * 1000.0 / result.frames


def stage_ms(clip: Path, frames: list[np.ndarray], out: Path) -> dict[str, float]:
    """ms/frame of decoding ``clip`` alone and of encoding a mask video alone (the pipeline's other stages)."""
    t0 = time.perf_counter()
    with open_frames(clip) as reader:
        n = sum(1 for _ in reader)
    decode = (time.perf_counter() - t0) * 1000.0 / n
    masks = [((f[..., 0] > 128).astype(np.uint8) * 255) for f in frames]
    t0 = time.perf_counter()
    with H264Writer(out / "mask_only_encode.mp4") as writer:
        for m in masks:
            writer.write(m)
    encode = (time.perf_counter() - t0) * 1000.0 / len(masks)
    return {"decode_ms": decode, "encode_mask_ms": encode}


def measure_size(size: tuple[int, int], n: int, checkpoint: str | None, folder: Path) -> dict[str, Any]:
    w, h = size
    # load_frames adds its own warm-up frames: ask for enough that n frames remain after this script's WARMUP
    frames, plate, source = load_frames(n + WARMUP - LOADED_WARMUP, w, h)
    assert plate is not None  # load_frames always gives the scene's plate
    clip = _clip(folder / f"clip_{w}x{h}.mp4", frames[WARMUP:])
    # An empty scene (the plate with sensor noise, through the codec like real footage): what most hours of a
    # surveillance day look like, where the site model runs the plate test and no network.
    rng = np.random.default_rng(0)
    empty = [(plate + rng.normal(0.0, 2.0, plate.shape)).clip(0, 255).astype(np.uint8) for _ in frames]
    empty_clip = _clip(folder / f"empty_{w}x{h}.mp4", empty[WARMUP:])
    site = "site model, with completion"
    # label -> (segmenter, frames, clip, the MOG2 row it is compared with)
    cases: dict[str, tuple[Callable[[], Segmenter], list[np.ndarray], Path, str]] = {
        "site model, network only": (lambda: site_model(checkpoint, plate, folder, complete=False), frames, clip, "mog2"),
        site: (lambda: site_model(checkpoint, plate, folder, complete=True), frames, clip, "mog2"),
        "mog2": (lambda: create_segmenter("mog2"), frames, clip, "mog2"),
        "plate-diff (given plate)": (lambda: create_segmenter("plate-diff", plate=plate), frames, clip, "mog2"),
        "mediapipe": (lambda: create_segmenter("mediapipe"), frames, clip, "mog2"),
        f"{site}, empty scene": (lambda: site_model(checkpoint, plate, folder, complete=True), empty, empty_clip,
                                 "mog2, empty scene"),  # fmt: skip
        "mog2, empty scene": (lambda: create_segmenter("mog2"), empty, empty_clip, "mog2, empty scene"),
    }
    rows: dict[str, dict[str, Any]] = {}
    for label, (build, own_frames, own_clip, _) in cases.items():
        try:
            seg = build()
        except (ValueError, FileNotFoundError, ImportError, RuntimeError) as err:
            rows[label] = {"skipped": str(err).splitlines()[0][:160]}
            continue
        try:
            seg_ms = segmenter_ms(seg, own_frames)
            masks = end_to_end_ms(seg, own_clip, folder / "masks", masks_only=True)
            everything = end_to_end_ms(seg, own_clip, folder / "all", masks_only=False)
        finally:
            seg.close()
        rows[label] = {"segmenter_ms": seg_ms, "masks_only_ms": masks, "all_outputs_ms": everything}
        print(f"  {w}x{h} {label}: {rows[label]}", file=sys.stderr, flush=True)
    for label, row in rows.items():
        base = rows[cases[label][3]]
        for key in ("segmenter_ms", "masks_only_ms", "all_outputs_ms"):
            if key in row:
                row[key.replace("_ms", "_x_mog2")] = row[key] / base[key]
    return {"size": f"{w}x{h}", "frames": n, "source": source, "stages": stage_ms(clip, frames, folder), "rows": rows}


def _clip(path: Path, frames: list[np.ndarray]) -> Path:
    """``frames`` written to an H.264 clip at ``path`` (25 fps)."""
    with H264Writer(path, 25.0) as writer:
        for f in frames:
            writer.write(f)
    return path


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux /proc; elsewhere the peak so far, from getrusage)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def rss_curve(minutes: float, checkpoint: str | None, folder: Path, fps: int = 25) -> list[tuple[float, float, int]]:
    """(seconds, resident MB, frames done) every 5 s while the site model segments a generated 1280x720 clip of
    ``minutes`` minutes at ``fps`` frames/s (masks only)."""
    import threading

    w, h = 1280, 720
    n = int(minutes * 60 * fps)
    _, plate, _ = load_frames(1, w, h)
    assert plate is not None
    clip = folder / "long.mp4"
    with H264Writer(clip, fps) as writer:
        for i in range(n):
            frame = plate.copy()
            x = (i * 4) % (w - 80)
            frame[200:560, x : x + 80] = (200, 40, 60)  # a "person" walking across, again and again
            writer.write(frame)
    seg = site_model(checkpoint, plate, folder, complete=True)
    samples: list[tuple[float, float, int]] = []
    done = threading.Event()
    frames_done = [0]

    def sample() -> None:
        t0 = time.perf_counter()
        while not done.wait(5.0):
            samples.append((time.perf_counter() - t0, resident_mb(), frames_done[0]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        segment_video(clip, seg, folder / "long_out", masks_only=True,
                      progress=lambda k, _total: frames_done.__setitem__(0, k))  # fmt: skip
    finally:
        done.set()
        sampler.join()
        seg.close()
    return samples


def print_table(results: list[dict[str, Any]]) -> None:
    print("| size | method | segmenter ms/frame (x MOG2) | end to end, masks only: f/s (x MOG2 time) | "
          "all outputs: f/s (x MOG2 time) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for res in results:
        for label, row in res["rows"].items():
            if "skipped" in row:
                print(f"| {res['size']} | {label} | skipped: {row['skipped']} | | |")
                continue
            print(
                f"| {res['size']} | {label} | {row['segmenter_ms']:.2f} ({row['segmenter_x_mog2']:.1f}x) | "
                f"{1000 / row['masks_only_ms']:.0f} ({row['masks_only_x_mog2']:.2f}x) | "
                f"{1000 / row['all_outputs_ms']:.0f} ({row['all_outputs_x_mog2']:.2f}x) |"
            )
    for res in results:
        s = res["stages"]
        print(f"{res['size']}: decoding alone {s['decode_ms']:.2f} ms/frame, encoding a mask video alone "
              f"{s['encode_mask_ms']:.2f} ms/frame; frames: {res['source']}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames per clip (default 200)")
    parser.add_argument("--sizes", default="320x240,720x576", help="WIDTHxHEIGHT,... (default 320x240,720x576)")
    parser.add_argument("--checkpoint", default=None, help="site model (default: the default preset, untrained)")
    parser.add_argument("--json", type=Path, default=Path("bench_throughput.json"), help="where to write results")
    parser.add_argument("--rss-minutes", type=float, help="measure memory over a generated clip this long instead")
    parser.add_argument("--rss-fps", type=int, default=25, help="frame rate of that clip (default 25)")
    args = parser.parse_args()
    if args.rss_minutes is not None:
        if args.rss_minutes <= 0 or args.rss_fps < 1:
            raise SystemExit(f"--rss-minutes must be > 0 and --rss-fps >= 1, got {args.rss_minutes} and {args.rss_fps}")
        with tempfile.TemporaryDirectory(prefix="bench_throughput_") as tmp:
            samples = rss_curve(args.rss_minutes, args.checkpoint, Path(tmp), args.rss_fps)
        print("| minute | resident MB (max in that minute) | frames done |\n|---|---|---|")
        for minute in range(int(samples[-1][0] // 60) + 1):
            inside = [s for s in samples if minute * 60 <= s[0] < (minute + 1) * 60]
            if inside:
                print(f"| {minute} | {max(s[1] for s in inside):.0f} | {inside[-1][2]} |")
        args.json.write_text(json.dumps({"rss_samples": samples}, indent=1))
        return 0
    if args.frames < 1:
        raise SystemExit(f"--frames must be >= 1, got {args.frames}")
    try:  # WIDTHxHEIGHT, as bench_segmenters.py (and the tables) write them
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    except ValueError:
        raise SystemExit(f"--sizes must be WIDTHxHEIGHT,... e.g. 320x240,720x576; got {args.sizes!r}") from None
    load_before = os.getloadavg()
    import torch

    with tempfile.TemporaryDirectory(prefix="bench_throughput_") as tmp:
        results = [measure_size((w, h), args.frames, args.checkpoint, Path(tmp)) for w, h in sizes]
    machine = {
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }  # fmt: skip
    print(f"{machine['cpu_count']} CPU cores, torch threads {machine['torch_threads']}; load average (1, 5, 15 min) "
          f"before {tuple(round(x, 2) for x in load_before)}, after {tuple(round(x, 2) for x in os.getloadavg())}")  # fmt: skip
    print_table(results)
    args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
