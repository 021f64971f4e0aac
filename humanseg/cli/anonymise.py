"""`python -m humanseg anonymise CLIP -s METHOD --style blur|pixelate|fill|erase --out OUT.mp4`."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "hide the people in a video (blur, pixelate, fill or erase them) and write it as H.264; audio is dropped"


def _colour(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"expected R,G,B with each value in 0..255 (e.g. 128,128,128), got {text!r}")
    return values  # type: ignore[return-value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanseg.anonymise import STYLES
    from humanseg.cli import live
    from humanseg.segmenters import available  # the registry imports no backend: cheap

    # A string, not a Path: Path("rtsp://host/x") would fold the URL's "//".
    parser.add_argument(
        "video", help="video file (mp4/avi/mkv/webm), image folder, or live stream (rtsp://... URL, /dev/videoN)"
    )
    parser.add_argument(
        "--segmenter",
        "-s",
        required=True,
        metavar="NAME",
        help=f"the method that finds people ({', '.join(available())})",
    )
    parser.add_argument(
        "--style",
        required=True,
        choices=STYLES,
        help="blur or pixelate people, fill them with one colour, or erase them (show the empty scene: needs a plate)",
    )
    parser.add_argument("--out", "-o", type=Path, required=True, help="output video (.mp4); audio is not copied")
    parser.add_argument("--checkpoint", type=Path, help="trained checkpoint for the segnet method")
    parser.add_argument(
        "--plate", type=Path, help="empty-scene image of this camera: for plate-based methods and for --style erase"
    )
    parser.add_argument(
        "--margin",
        type=int,
        metavar="PX",
        help="grow each person's mask by PX pixels (default: 10%% of each person's height, at least 2 px)",
    )
    parser.add_argument(
        "--colour", type=_colour, default=(128, 128, 128), metavar="R,G,B", help="--style fill colour (default gray)"
    )
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--step", type=int, default=1, metavar="K", help="use every K-th frame (default 1)")
    live.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from humanseg.anonymise import anonymise_video
    from humanseg.cli import check_clip_options
    from humanseg.stream import is_stream

    if is_stream(args.video):
        from humanseg.cli import live

        return live.anonymise(args)
    check_clip_options(args)
    result = anonymise_video(
        Path(args.video),
        args.segmenter,
        args.out,
        args.style,
        plate=args.plate,
        checkpoint=args.checkpoint,
        margin_px=args.margin,
        colour=args.colour,
        max_frames=args.max_frames,
        step=args.step,
        progress=True,
    )
    print(
        f"{result.frames} frames of {result.size[0]}x{result.size[1]} in {result.seconds:.1f} s: "
        f"{result.segmenter} {result.segment_ms:.1f} ms/frame, hiding ({args.style}) {result.anonymise_ms:.1f} ms/frame"
    )
    print(f"written to {result.path} (video only: audio is not copied)")
    return 0
