"""H.264 write and read speed (frames/s) at 320x240 and 1280x720; PyAV vs OpenCV decoding.

    python bench/bench_video.py [--frames-small 300] [--frames-large 120]

Writes synthetic clips (textured scene + moving blocks + sensor noise, so x264 has real work) with
humanseg.video.H264Writer, then reads them back with humanseg.video.open_frames (PyAV, RGB out) and with
cv2.VideoCapture (+ BGR->RGB, to compare like for like). Also reports how much the resident memory grows while
streaming (sampled every 10 frames), to show that reading does not hold the clip in memory: compare it with
the raw clip size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from humanseg.video import H264Writer, open_frames, probe_video  # noqa: E402


def synthetic_frames(n: int, w: int, h: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    scene = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 255 // (w + h))], axis=2).astype(np.uint8)
    for i in range(n):
        f = scene.copy()
        for k in range(3):
            x = (i * (3 + k) * w // 200 + k * w // 3) % (w - w // 8)
            y = h // 4 + k * h // 6
            f[y : y + h // 4, x : x + w // 10] = (200, 60 + 50 * k, 40)
        f = cv2.add(f, rng.integers(0, 6, f.shape, dtype=np.uint8))  # sensor noise
        yield f


def rss_mb() -> float:
    """Current resident memory of this process (Linux /proc), in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def bench(w: int, h: int, n: int, folder: Path) -> dict[str, float]:
    path = folder / f"bench_{w}x{h}.mp4"
    # A pool of distinct frames generated up front, cycled, so only encoding is timed and memory stays small.
    pool = list(synthetic_frames(min(n, 60), w, h))
    t0 = time.perf_counter()
    with H264Writer(path, 25.0) as writer:
        for i in range(n):
            writer.write(pool[i % len(pool)])
    write_fps = n / (time.perf_counter() - t0)
    del pool
    info = probe_video(path)
    assert info["codec"] == "h264" and info["frames"] == n

    t0 = time.perf_counter()
    count = 0
    rss_before, rss_peak = rss_mb(), 0.0
    for _ in open_frames(path):
        count += 1
        if count % 10 == 0:
            rss_peak = max(rss_peak, rss_mb())
    pyav_fps = count / (time.perf_counter() - t0)
    read_peak_mb = max(0.0, rss_peak - rss_before)

    cap = cv2.VideoCapture(str(path))
    t0 = time.perf_counter()
    cv_count = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        cv_count += 1
    cv_fps = cv_count / (time.perf_counter() - t0)
    cap.release()
    assert count == cv_count == n, (count, cv_count, n)
    return {
        "write": write_fps,
        "read_pyav": pyav_fps,
        "read_cv2": cv_fps,
        "mb_per_frame": path.stat().st_size / n / 1e6,
        "read_peak_mb": read_peak_mb,
        "clip_mb_raw": n * w * h * 3 / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-small", type=int, default=300, help="frames at 320x240")
    parser.add_argument("--frames-large", type=int, default=120, help="frames at 1280x720")
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}, threads {cv2.getNumThreads()}")
    print(
        f"{'size':>10} {'frames':>6} {'write f/s':>10} {'read PyAV f/s':>14} {'read cv2 f/s':>13} "
        f"{'KB/frame':>9} {'raw clip MB':>11} {'read RSS +MB':>13}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for (w, h), n in (((320, 240), args.frames_small), ((1280, 720), args.frames_large)):
            r = bench(w, h, n, Path(tmp))
            print(
                f"{f'{w}x{h}':>10} {n:>6} {r['write']:>10.1f} {r['read_pyav']:>14.1f} {r['read_cv2']:>13.1f} "
                f"{r['mb_per_frame'] * 1000:>9.1f} {r['clip_mb_raw']:>11.0f} {r['read_peak_mb']:>13.1f}"
            )


if __name__ == "__main__":
    main()
