"""`python -m humanseg segment VIDEO --segmenter NAME [NAME ...] --out DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "segment people in a video with one or more methods: mask, overlay and side-by-side H.264 videos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanseg.segmenters import available  # the registry imports no backend: cheap

    parser.add_argument("video", type=Path, help="video file (mp4/avi/mkv/webm), image folder, or CDnet/DAVIS folder")
    parser.add_argument(
        "--segmenter",
        "-s",
        nargs="+",
        required=True,
        metavar="NAME",
        help=f"one or more methods to run and compare ({', '.join(available())})",
    )
    parser.add_argument("--out", "-o", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--checkpoint", type=Path, help="trained checkpoint for the segnet method")
    parser.add_argument("--plate", type=Path, help="empty-scene image of this camera, for plate-based methods")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--step", type=int, default=1, metavar="K", help="use every K-th frame (default 1)")
    parser.add_argument("--pngs", action="store_true", help="also write each method's masks as 0/255 PNGs + a zip")
    parser.add_argument("--no-side-by-side", action="store_true", help="skip the side_by_side.mp4 comparison video")


def run(args: argparse.Namespace) -> int:
    from humanseg.segment import segment_video

    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.step < 1:
        raise ValueError(f"--step must be >= 1, got {args.step}")
    result = segment_video(
        args.video,
        args.segmenter,
        args.out,
        plate=args.plate,
        checkpoint=args.checkpoint,
        max_frames=args.max_frames,
        step=args.step,
        save_pngs=args.pngs,
        side_by_side=not args.no_side_by_side,
        progress=True,
    )

    print(
        f"{result.frames} frames of {result.size[0]}x{result.size[1]} in {result.seconds:.1f} s "
        f"({result.frames_per_second:.1f} frames/s, all methods and video writing included)"
    )
    width = max(len("method"), *(len(n) for n in result.methods))
    print(f"{'method':<{width}}  ms/frame  outputs")
    for m in result.methods.values():
        files = [
            m.mask_video.name,
            m.overlay_video.name if m.overlay_video else None,
            m.masks_zip.name if m.masks_zip else None,
        ]
        print(f"{m.name:<{width}}  {m.ms_per_frame:8.1f}  {', '.join(f for f in files if f)}")
    if result.side_by_side is not None:
        print(f"side by side: {result.side_by_side}")
    print(f"written to {result.out_dir}")
    return 0
