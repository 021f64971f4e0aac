"""Benchmark of dataset_builder (not a test): compositing speed, plate error, and a preview of a real site.

    python bench/bench_builder.py [--count 600] [--preview /tmp/preview_pedestrians.png] [--json out.json]

1. Composites per second at 320x240 (goal >= 300/s on 2 cores): one process, two processes (the build's
   worker pool), and a whole ``build_dataset`` run with two workers (JPEG + PNG writing included).
2. Plate error on the development sequences: the plate estimated from the busy clip vs the empty scene
   (CDnet pedestrians: ``empty_bg000001.jpg``; HallAndMonitor: frames 0-2 are empty), for the plain temporal
   median and for the refined estimate the builder uses.
3. A dataset for the pedestrians site (plate = its empty background, actors = DAVIS parkour + dance-twirl masks)
   and its preview grid.

Needs the shared data folder (``HUMANSEG_SHARED_DATA`` or ../shared/data); other processes on the machine
change the timings, so the report prints the CPU count and load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset_builder.backgrounds import estimate_plates, median_plate, plate_error  # noqa: E402
from dataset_builder.build import build_dataset  # noqa: E402
from dataset_builder.composite import CompositeConfig, Compositor, prepare_actor  # noqa: E402
from dataset_builder.perspective import PerspectiveModel  # noqa: E402
from dataset_builder.silhouettes import extract_silhouettes, load_silhouettes, read_silhouette  # noqa: E402
from humanseg.video import open_frames, read_image  # noqa: E402

DATA = Path(os.environ.get("HUMANSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
PEDESTRIANS = DATA / "cdnet" / "pedestrians"
HALL = DATA / "sbi" / "HallAndMonitor"
ACTORS = [DATA / "actors" / "parkour", DATA / "actors" / "dance-twirl"]
# Pedestrians site: the walker on the path is ~90 px tall with feet at row ~150 (ground truth); at the far
# edge of the scene (row ~30) the parked bicycle (~1 m) is ~30 px tall, so a person there is ~50 px.
PEDESTRIANS_PERSPECTIVE = "30:50,150:90"


def _compositor(sil_dirs: list[Path], seed: int = 0) -> Compositor:
    plate = cv2.resize(read_image(PEDESTRIANS / "empty_bg000001.jpg"), (320, 240), interpolation=cv2.INTER_AREA)
    actors = []
    for group, d in enumerate(sil_dirs):
        actors += [prepare_actor(read_silhouette(d, s), s.name, group=group, max_height=200) for s in load_silhouettes(d)]
    model = PerspectiveModel.parse(PEDESTRIANS_PERSPECTIVE, 240)
    # The build resizes the 360x240 plate to 320x240: people are narrowed the same way.
    return Compositor([plate], actors, model, CompositeConfig(), seed=seed, width_scale=320 / 360)


_BENCH: dict = {}


def _init(compositor: Compositor) -> None:
    cv2.setNumThreads(1)
    _BENCH["c"] = compositor
    compositor.sample(0)  # build the noise bank before timing


def _run(indices: list[int]) -> int:
    c = _BENCH["c"]
    for i in indices:
        c.sample(i)
    return len(indices)


def bench_speed(sil_dirs: list[Path], count: int) -> dict:
    cv2.setNumThreads(1)
    c = _compositor(sil_dirs)
    c.sample(0)
    t = time.perf_counter()
    for i in range(count):
        c.sample(i)
    one = count / (time.perf_counter() - t)
    actors = np.mean([c.plan(i).actors for i in range(count)])

    ctx = get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx, initializer=_init, initargs=(c,)) as pool:
        list(pool.map(_run, [[0]] * 4))  # workers started and warm
        chunks = [list(range(k, min(k + 50, count * 2))) for k in range(0, count * 2, 50)]
        t = time.perf_counter()
        done = sum(pool.map(_run, chunks))
        two = done / (time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        build_dataset(PEDESTRIANS / "empty_bg000001.jpg", sil_dirs, Path(tmp) / "ds", count, (240, 320), seed=0,
                      perspective=PEDESTRIANS_PERSPECTIVE, workers=2, preview_count=16)
        build = count / (time.perf_counter() - t)
    return {"one_process_per_s": one, "two_processes_per_s": two, "build_two_workers_per_s": build,
            "mean_people_per_image": float(actors)}


def bench_plates() -> list[dict]:
    rows = []
    ped_ref = read_image(PEDESTRIANS / "empty_bg000001.jpg")
    hall_frames = [read_image(HALL / "input" / f"in00000{i}.png") for i in range(3)]
    hall_mean = np.round(np.mean([f.astype(np.float32) for f in hall_frames], axis=0)).astype(np.uint8)
    for name, clip, refs in [
        ("pedestrians", PEDESTRIANS, {"empty_bg000001.jpg": ped_ref}),
        ("HallAndMonitor", HALL, {"mean of frames 0-2": hall_mean, "frame 1": hall_frames[1]}),
    ]:
        frames = list(open_frames(clip))
        idx = np.linspace(0, len(frames) - 1, min(40, len(frames))).round().astype(int)
        stack = np.stack([frames[i] for i in idx])
        t = time.perf_counter()
        refined = estimate_plates(clip)[0]
        seconds = time.perf_counter() - t
        plain = median_plate(stack, refine=False)
        for ref_name, ref in refs.items():
            rows.append({
                "sequence": name, "reference": ref_name, "frames": len(frames), "seconds": seconds,
                "plain_median": plate_error(plain, ref), "refined": plate_error(refined, ref),
                "single_frame": plate_error(frames[len(frames) // 2], ref),
            })
    noise = plate_error(hall_frames[1], hall_frames[2])
    rows.append({"sequence": "HallAndMonitor", "reference": "frame 1 vs frame 2 (noise floor)", "refined": noise})
    return rows


def make_preview(sil_dirs: list[Path], preview: Path, count: int) -> Path:
    out = Path(tempfile.mkdtemp()) / "pedestrians_site"
    build_dataset(PEDESTRIANS / "empty_bg000001.jpg", sil_dirs, out, count, None, seed=0,
                  perspective=PEDESTRIANS_PERSPECTIVE, workers=2)
    shutil.copyfile(out / "preview.png", preview)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600, help="composites per timing run")
    parser.add_argument("--preview", default="/tmp/preview_pedestrians.png")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if not PEDESTRIANS.is_dir():
        print(f"shared data not found at {DATA}; set HUMANSEG_SHARED_DATA", file=sys.stderr)
        return 2

    sil_root = Path(tempfile.mkdtemp())
    sil_dirs = []
    for clip in ACTORS:
        extract_silhouettes(clip, "masks", sil_root / clip.name, step=2)
        sil_dirs.append(sil_root / clip.name)
    print(f"actors: {', '.join(f'{d.name} {len(load_silhouettes(d))}' for d in sil_dirs)} silhouettes")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (other processes share them)")

    speed = bench_speed(sil_dirs, args.count)
    print("\ncompositing at 320x240 (pedestrians plate, DAVIS actors, "
          f"{speed['mean_people_per_image']:.2f} people per image on average):")
    print(f"  one process        {speed['one_process_per_s']:7.0f} composites/s")
    print(f"  two processes      {speed['two_processes_per_s']:7.0f} composites/s   (goal >= 300/s on 2 cores)")
    print(f"  build, 2 workers   {speed['build_two_workers_per_s']:7.0f} samples/s    (JPEG + PNG files, manifest, preview)")

    plates = bench_plates()
    print("\nplate error (mean abs diff in grey levels / % pixels off by > 20):")
    for r in plates:
        line = f"  {r['sequence']:15s} vs {r['reference']:34s}"
        for key in ("single_frame", "plain_median", "refined"):
            if key in r:
                line += f"  {key.replace('_', ' ')} {r[key]['mae']:.2f} / {r[key]['pct_off']:.2f}%"
        print(line)

    ds = make_preview(sil_dirs, Path(args.preview), 64)
    print(f"\npreview of a 64-sample pedestrians-site dataset: {args.preview} (dataset in {ds})")
    if args.json:
        Path(args.json).write_text(json.dumps({"speed": speed, "plates": plates}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
