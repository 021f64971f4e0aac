"""Where a site model's frame time goes, part by part, on frames with people in view (the throughput issue's profile).

    python bench/profile_site_model.py CHECKPOINT [--frames 100] [--sizes 320x240,720x576] [--json profile.json]

The frames and plate are those of ``bench/bench_throughput.py`` (CDnet pedestrians resized, its empty image as the
plate). The trained-model segmenter runs them as the video path does (:func:`humanseg.segment.segment_frames`,
its batches), each of its parts timed where it is called: the plate that follows the site, the frame and plate
mapped to the captured light, resizing and the change test (the gate, or the tiles' placement), the network
(ONNX Runtime on the CPU, the uint8 -> float conversion included), plate completion and the plate's update. The
remainder is the loop and the batching. Decoding a frame and encoding a mask frame, timed alone on the same frames,
complete the masks-only path. Prints a table per size (ms/frame and share of the segmenter's time) and writes
JSON. Not a test: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from bench.bench_segmenters import WARMUP, load_frames  # noqa: E402
from bench.bench_throughput import _clip, stage_ms  # noqa: E402
from humanseg.maintained_plate import MaintainedPlate  # noqa: E402
from humanseg.segment import batch_size_of, segment_frames  # noqa: E402
from humanseg.segmenters import create_segmenter  # noqa: E402

#: (attribute of the segmenter or of its maintained plate, the part's name), in the order a frame meets them.
PARTS = [
    ("seg._compensated", "plate follows the site (light fit, plate choice)"),
    ("plate.in_captured_light", "frame and plate to the captured light"),
    ("seg._whole", "whole frame: resize, gate (network excluded)"),
    ("seg._tiled", "tiles: resize, change test, placement (network excluded)"),
    ("seg._net", "network (ONNX Runtime, uint8 -> float included)"),
    ("seg._completed", "plate completion (shadow rule included)"),
    ("plate.update", "plate update"),
]


class Timers:
    """Wraps methods of live objects so each call adds its own wall time (the time of wrapped calls inside it
    excluded, so the network is not counted again in the resizing that calls it) to a named total."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._inner: list[float] = []  # per active call: time spent in wrapped calls inside it
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        inner: Callable = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._inner.append(0.0)
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent = (time.perf_counter() - t0) * 1000.0
                nested = self._inner.pop()
                self.ms[name] += spent - nested
                self.calls[name] += 1
                if self._inner:
                    self._inner[-1] += spent

        self._undo.append((owner, attr, owner.__dict__[attr] if attr in vars(owner) else None))
        setattr(owner, attr, timed)

    def restore(self) -> None:
        """Puts back what :meth:`wrap` replaced (a class's methods stay wrapped for every later instance)."""
        for owner, attr, before in reversed(self._undo):
            if before is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, before)
        self._undo.clear()


def profile_size(checkpoint: str, size: tuple[int, int], n: int, folder: Path) -> dict[str, Any]:
    w, h = size
    frames, plate, source = load_frames(n, w, h)
    frames = frames[: n + WARMUP]
    seg = create_segmenter("segnet", checkpoint=checkpoint, plate=plate, device="cpu")
    batch = batch_size_of(seg)
    try:
        list(segment_frames(frames[:WARMUP], [seg], batch_size=batch))  # builds the maintained plate, warms up
        timers = Timers()
        # The plate's methods are wrapped on its class: a new clip builds a new maintained plate.
        owners = {"seg": seg, "plate": MaintainedPlate}
        for dotted, name in PARTS:
            owner, attr = dotted.split(".")
            timers.wrap(owners[owner], attr, name)
        try:
            t0 = time.perf_counter()
            for _ in segment_frames(frames[WARMUP:], [seg], batch_size=batch):
                pass
            total = (time.perf_counter() - t0) * 1000.0 / n
        finally:
            timers.restore()
    finally:
        seg.close()
    per = {name: timers.ms[name] / n for _, name in PARTS if name in timers.ms}
    per["rest (loop, batching, probabilities to masks)"] = total - sum(per.values())
    stages = stage_ms(_clip(folder / f"clip_{w}x{h}.mp4", frames[WARMUP:]), frames[WARMUP:], folder)
    return {"size": f"{w}x{h}", "frames": n, "source": source, "batch": batch, "segmenter_ms": total,
            "parts_ms": per, "network_calls": timers.calls.get(PARTS[4][1], 0), **stages}


def print_profile(result: dict[str, Any]) -> None:
    total = result["segmenter_ms"]
    print(f"\n{result['size']}: {result['source']}; batch {result['batch']}, "
          f"{result['network_calls']} network calls for {result['frames']} frames")
    print("| part | ms/frame | share of the segmenter |\n|---|---:|---:|")
    for name, ms in result["parts_ms"].items():
        print(f"| {name} | {ms:.2f} | {100.0 * ms / total:.0f}% |")
    print(f"| **segmenter, all parts** | **{total:.2f}** | 100% |")
    print(f"| decoding a frame, alone | {result['decode_ms']:.2f} | |")
    print(f"| encoding a mask frame, alone | {result['encode_mask_ms']:.2f} | |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="the site model's checkpoint (.pt)")
    parser.add_argument("--frames", type=int, default=100, help="frames timed per size (default 100)")
    parser.add_argument("--sizes", default="320x240,720x576", help="WIDTHxHEIGHT,... (default 320x240,720x576)")
    parser.add_argument("--json", type=Path, default=Path("profile_site_model.json"), help="where to write results")
    args = parser.parse_args()
    if not Path(args.checkpoint).is_file():
        parser.error(f"checkpoint {args.checkpoint!r} not found; give a .pt file written by training")
    if args.frames < 1:
        parser.error(f"--frames must be >= 1, got {args.frames}")
    try:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must look like 320x240,720x576, got {args.sizes!r}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in sizes:
            results.append(profile_size(args.checkpoint, (w, h), args.frames, Path(tmp)))
            print_profile(results[-1])
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwritten {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
