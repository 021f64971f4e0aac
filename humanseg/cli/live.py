"""Live streams for the ``segment`` and ``anonymise`` commands: their extra options and the runs, given a stream
URL or a capture device where a clip would go (:func:`humanseg.stream.is_stream`). Not a command of its own."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from humanseg.stream import LiveResult

# Options of the file commands that have no meaning on an endless stream, with what to do instead.
_FILE_ONLY = {
    "step": "frames are skipped by themselves when segmentation is slower than the camera",
    "pngs": "use the mask videos",
    "stats": "run segment on the recorded overlay files",
    "perspective": "it goes with --stats",
    "recursive": "it applies to folders of clips",
    "skip_done": "it applies to folders of clips",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The live-only options (``--duration``, ``--rotate-minutes``, ``--retries``)."""
    group = parser.add_argument_group("live streams (rtsp://, http(s)://, udp://, tcp:// URLs or /dev/videoN)")
    group.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this many seconds (default: until Ctrl-C)"
    )
    group.add_argument(
        "--rotate-minutes",
        type=float,
        default=10.0,  # as humanseg.stream.DEFAULT_ROTATE_S, not imported here: --help stays light
        metavar="M",
        help="start new output files every M minutes; each is renamed into place when complete (default 10)",
    )
    group.add_argument(
        "--retries", type=int, default=5, metavar="N", help="reconnection tries after the stream drops (default 5)"
    )


def check(args: argparse.Namespace) -> None:
    """Reject options that need a file, and bad live values, before connecting."""
    for option, instead in _FILE_ONLY.items():
        value = getattr(args, option, None)
        if value not in (None, False, 1):
            raise ValueError(f"--{option.replace('_', '-')} does not apply to a live stream: {instead}")
    if getattr(args, "no_side_by_side", False):
        raise ValueError("--no-side-by-side does not apply to a live stream (it writes no side-by-side video)")
    if args.duration is not None and args.duration <= 0:
        raise ValueError(f"--duration must be > 0 seconds, got {args.duration}")
    if args.rotate_minutes <= 0:
        raise ValueError(f"--rotate-minutes must be > 0, got {args.rotate_minutes}")
    if args.retries < 0:
        raise ValueError(f"--retries must be >= 0, got {args.retries}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")


def segment(args: argparse.Namespace) -> int:
    """``segment URL``: each method's mask and overlay (and with --anonymise, anonymised) videos, rotating."""
    check(args)
    if len(args.video) > 1:
        raise ValueError("give one stream at a time (run one command per camera)")
    if args.margin is not None and args.margin < 0:
        raise ValueError(f"--margin must be >= 0 pixels, got {args.margin}")
    if args.margin is not None and args.anonymise is None:
        raise ValueError("--margin sets the anonymised video's margin; add --anonymise STYLE, or drop --margin")
    result = _run(
        args,
        args.video[0],
        args.segmenter,
        args.out,
        kinds=("mask", "overlay"),
        anonymise=args.anonymise,
        margin_px=args.margin,
    )
    return _report(result)


def anonymise(args: argparse.Namespace) -> int:
    """``anonymise URL --out OUT.mp4``: rotating files ``OUT_<start>_<NNNN>.mp4`` beside OUT."""
    check(args)
    if args.margin is not None and args.margin < 0:
        raise ValueError(f"--margin must be >= 0 pixels, got {args.margin}")
    out = Path(args.out)
    result = _run(
        args,
        str(args.video),
        args.segmenter,
        out.parent,
        kinds=("anonymised",),
        anonymise=args.style,
        margin_px=args.margin,
        colour=args.colour,
        naming=lambda method, kind: out.stem,
    )
    return _report(result)


def _run(args: argparse.Namespace, source: str, segmenters: object, out_dir: Path, **options: object) -> LiveResult:
    from humanseg.stream import segment_live, stop_on_sigint

    stop = threading.Event()
    print("live: stop with Ctrl-C; each finished file is renamed into place as it closes")
    with stop_on_sigint(stop):
        return segment_live(
            source,
            segmenters,  # type: ignore[arg-type]
            out_dir,
            plate=args.plate,
            checkpoint=args.checkpoint,
            duration_s=args.duration,
            max_frames=args.max_frames,
            rotate_s=args.rotate_minutes * 60,
            retries=args.retries,
            stop=stop,
            progress=True,
            **options,  # type: ignore[arg-type]
        )


def _report(result: LiveResult) -> int:
    """Print what the run did; exit status 1 when the stream was lost for good (a supervisor may restart it)."""
    w, h = result.size
    print(
        f"{result.frames} frames of {w}x{h} segmented in {result.seconds:.1f} s ({result.frames_per_second:.1f} "
        f"frames/s); {result.skipped} skipped to stay live, {result.reconnects} reconnection(s); ended: {result.stop}"
    )
    width = max(len("method"), *(len(n) for n in result.ms_per_frame))
    print(f"{'method':<{width}}  ms/frame  files")
    for name, ms in result.ms_per_frame.items():
        files = ", ".join(f"{len(paths)} {kind}" for kind, paths in result.files[name].items())
        print(f"{name:<{width}}  {ms:8.1f}  {files}")
    print(f"written to {result.out_dir}")
    if result.error:
        print(f"error: {result.error}")
        return 1
    return 0
