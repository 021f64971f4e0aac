"""`python -m humanseg segment VIDEO|FOLDER|GLOB ... --segmenter NAME [NAME ...] --out DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from humanseg.occupancy import HeightAt

HELP = (
    "segment people in a video or a whole folder of clips with one or more methods: mask, overlay and side-by-side "
    "H.264 videos, and on request anonymised videos, people counts and an occupancy heatmap"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanseg.anonymise import STYLES
    from humanseg.cli import live
    from humanseg.maintained_plate import DEFAULT_UPDATE_S
    from humanseg.segmenters import available  # the registry imports no backend: cheap

    parser.add_argument(
        "video",
        nargs="+",
        metavar="VIDEO",
        help="video file (mp4/avi/mkv/webm), image folder, or CDnet/DAVIS folder; or a folder of clips, a glob "
        "pattern (quoted) or several files: then every clip gets its own folder under --out, plus summary.csv; "
        "or a live stream (rtsp://, http(s)://, udp://, tcp:// URL, or /dev/videoN): rotating files until stopped",
    )
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
    parser.add_argument(
        "--fixed-plate",
        action="store_true",
        help="plate methods (plate-diff with --plate, plate models) compare with the plate as captured, instead of "
        "one that follows the site's light and moved objects (a following plate is written as "
        "<method>_plate_captured.png and <method>_plate_end.png, its state after the last frame)",
    )
    parser.add_argument(
        "--plate-update-s",
        type=float,
        metavar="S",
        help=f"time constant of the plate's update in seconds, counted at each clip's own frame rate (default "
        f"{DEFAULT_UPDATE_S}: a moved object is background again within 10 s; 0 = light compensation only)",
    )
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames (of each clip)")
    parser.add_argument("--step", type=int, default=1, metavar="K", help="use every K-th frame (default 1)")
    parser.add_argument("--pngs", action="store_true", help="also write each method's masks as 0/255 PNGs + a zip")
    parser.add_argument("--no-side-by-side", action="store_true", help="skip the side_by_side.mp4 comparison video")
    parser.add_argument(
        "--masks-only",
        action="store_true",
        help="write each method's mask video (and --pngs, --stats, --anonymise) only: no overlay or side-by-side "
        "video (the fast path for long footage)",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="per method: people per frame (counts.csv + counts.png) and an occupancy heatmap (occupancy.npy + .png)",
    )
    parser.add_argument(
        "--perspective",
        metavar="ROW:HEIGHT,ROW:HEIGHT",
        help="two reference people (feet row, height in pixels of the clip): a blob much larger than one person "
        "at its feet row counts as several",
    )
    parser.add_argument(
        "--anonymise",
        choices=STYLES,
        metavar="STYLE",
        help=f"also write each method's anonymised video ({', '.join(STYLES)}; erase needs a plate)",
    )
    parser.add_argument(
        "--margin",
        type=int,
        metavar="PX",
        help="--anonymise: grow each person's mask by PX pixels (default: 10%% of each person's height, >= 2 px)",
    )
    parser.add_argument("--recursive", action="store_true", help="folders: take clips in subfolders too")
    parser.add_argument(
        "--skip-done", action="store_true", help="folders: skip clips whose output folder a finished run left"
    )
    live.add_arguments(parser)


def _height_at(spec: str | None, clips: list[str | Path]) -> HeightAt | None:
    """The --perspective model at the clips' frame height (read from the first clip that opens), or None."""
    if spec is None:
        return None
    from dataset_builder.perspective import PerspectiveModel
    from humanseg.video import VideoError, open_frames

    for clip in clips:
        try:
            with open_frames(clip) as reader:
                return PerspectiveModel.parse(spec, reader.size[1]).height_at
        except VideoError:
            continue  # a broken clip is reported by the run itself
    raise VideoError(f"none of the {len(clips)} clip(s) can be read, so --perspective has no frame height")


def _methods(args: argparse.Namespace) -> tuple[list[Any], Path | None, Path | None]:
    """(methods, plate, checkpoint) for the run: the names as given, or, with --fixed-plate / --plate-update-s,
    the plate methods built here with those options (then they hold the plate and checkpoint themselves, and
    the plate goes on only for what else uses it: another plate-free method erring on it, or erase)."""
    if not args.fixed_plate and args.plate_update_s is None:
        return list(args.segmenter), args.plate, args.checkpoint
    if args.plate_update_s is not None and args.plate_update_s < 0:
        raise ValueError(f"--plate-update-s must be >= 0 seconds, got {args.plate_update_s}")
    from humanseg.segmenters import REGISTRY, capabilities, create_segmenter
    from humanseg.video import read_image

    plate = read_image(args.plate) if args.plate is not None else None
    methods: list[Any] = []
    built_plate = built_ckpt = False
    for name in args.segmenter:
        caps = capabilities(name) if name in REGISTRY else None
        if caps is None or not caps.takes_plate:
            methods.append(name)
            continue
        options: dict[str, Any] = {"follow_plate": not args.fixed_plate}
        if args.plate_update_s is not None:
            options["plate_update_s"] = args.plate_update_s
        if caps.takes_checkpoint and args.checkpoint is not None:
            options["checkpoint"], built_ckpt = args.checkpoint, True
        methods.append(create_segmenter(name, plate=plate, **options))
        built_plate |= plate is not None
    keep_plate = not built_plate or args.anonymise == "erase"
    return methods, args.plate if keep_plate else None, None if built_ckpt else args.checkpoint


def run(args: argparse.Namespace) -> int:
    from humanseg.cli import check_clip_options
    from humanseg.footage import find_clips, is_footage
    from humanseg.stream import is_stream

    if is_stream(args.video[0]):
        from humanseg.cli import live

        return live.segment(args)
    check_clip_options(args)
    if args.margin is not None and args.anonymise is None:
        raise ValueError("--margin sets the anonymised video's margin; add --anonymise STYLE, or drop --margin")
    if len(args.video) > 1 or is_footage(args.video[0], recursive=args.recursive):
        clips = find_clips(args.video, recursive=args.recursive)
        return _run_folder(args, _height_at(args.perspective, list(clips)))
    if args.skip_done or args.recursive:
        raise ValueError(f"--skip-done and --recursive apply to folders of clips; {args.video[0]} is one clip")
    return _run_clip(args, _height_at(args.perspective, args.video[:1]))


def _run_clip(args: argparse.Namespace, height_at: HeightAt | None) -> int:
    from humanseg.segment import ExtraOutputs, segment_video

    extras = ExtraOutputs(anonymise=args.anonymise, margin_px=args.margin, stats=args.stats, height_at=height_at)
    methods, plate, checkpoint = _methods(args)
    result = segment_video(
        args.video[0],
        methods,
        args.out,
        plate=plate,
        checkpoint=checkpoint,
        max_frames=args.max_frames,
        step=args.step,
        save_pngs=args.pngs,
        side_by_side=not args.no_side_by_side,
        progress=True,
        extras=extras,
        masks_only=args.masks_only,
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
            m.anonymised_video.name if m.anonymised_video else None,
            m.plate_end.name if m.plate_end else None,
        ]
        if m.stats is not None:
            files += [
                p.name for p in (m.stats.counts_csv, m.stats.count_chart, m.stats.heatmap_npy, m.stats.heatmap_png)
            ]
        print(f"{m.name:<{width}}  {m.ms_per_frame:8.1f}  {', '.join(f for f in files if f)}")
        if m.mean_count is not None:
            print(f"{'':<{width}}  people per frame: mean {m.mean_count:.2f}, max {m.max_count}")
    if result.side_by_side is not None:
        print(f"side by side: {result.side_by_side}")
    print(f"written to {result.out_dir}")
    return 0


def _run_folder(args: argparse.Namespace, height_at: HeightAt | None) -> int:
    from humanseg.footage import segment_folder

    methods, plate, checkpoint = _methods(args)
    result = segment_folder(
        args.video,
        methods,
        args.out,
        recursive=args.recursive,
        skip_done=args.skip_done,
        plate=plate,
        checkpoint=checkpoint,
        max_frames=args.max_frames,
        step=args.step,
        save_pngs=args.pngs,
        side_by_side=not args.no_side_by_side,
        stats=args.stats,
        anonymise=args.anonymise,
        margin_px=args.margin,
        height_at=height_at,
        progress=True,
        masks_only=args.masks_only,
    )
    done = result.ran - result.failed
    print(f"{done} clip(s) segmented, {result.skipped} skipped (done by an earlier run), {result.failed} failed")
    for row in result.rows:
        if row.status == "error":
            print(f"failed: {row.clip}: {row.error}")
    print(f"summary: {result.summary}")
    return 1 if result.failed else 0
