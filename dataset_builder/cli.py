"""`python -m dataset_builder COMMAND ...`: site plates, actor silhouettes, and composite datasets.

    plates       estimate clean plates of the site from a busy clip
    silhouettes  cut people out of a clip (given masks, plate difference, or a segmenter)
    reject       mark silhouettes as rejected (or --undo) after reviewing them
    build        composite a training dataset for the site
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def _plates(args: argparse.Namespace) -> int:
    from dataset_builder.backgrounds import estimate_plates, people_masker, plate_error, save_plates
    from humanseg.checks import check_output_dir
    from humanseg.video import read_image

    check_output_dir(args.out)
    people = people_masker(args.people) if args.people else None
    plates = estimate_plates(args.source, args.count, samples=args.samples, progress=True, people=people)
    paths = save_plates(plates, args.out)
    for path in paths:
        print(path)
    if args.reference:
        ref = read_image(args.reference)
        for path, plate in zip(paths, plates, strict=True):
            err = plate_error(plate, ref)
            print(f"{path.name} vs {args.reference}: mean abs diff {err['mae']:.2f} grey levels, "
                  f"{err['pct_off']:.2f}% pixels off by > 20")
    return 0


def _silhouettes(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dataset_builder.silhouettes import (
        MASK_FILTER,
        ExtractionReport,
        PersonFilter,
        contact_sheet,
        extract_silhouettes,
    )
    from humanseg.checks import check_output_dir, check_output_file

    check_output_dir(args.out)
    if args.sheet:
        check_output_file(args.sheet, "--sheet")
    person = MASK_FILTER if args.method == "masks" else PersonFilter()
    if args.min_height is not None:
        person = replace(person, min_height=args.min_height)
    report = ExtractionReport()
    found = extract_silhouettes(
        args.source, args.method, args.out, step=args.step, max_frames=args.max_frames, person=person,
        plate=args.plate, checkpoint=args.checkpoint, threshold=args.threshold, progress=True, report=report,
    )
    print(f"{len(found)} silhouettes written to {args.out} ({report.summary()})")
    if args.sheet:
        from dataset_builder.backgrounds import encode_png

        Path(args.sheet).write_bytes(encode_png(contact_sheet(args.out)))
        print(f"review sheet: {args.sheet} (cells in silhouettes.json order)")
    return 0


def _reject(args: argparse.Namespace) -> int:
    from dataset_builder.silhouettes import accept, reject

    changed = accept(args.folder, args.names) if args.undo else reject(args.folder, args.names)
    print(f"{changed} silhouette(s) {'accepted again' if args.undo else 'rejected'} in {args.folder}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dataset_builder.build import build_dataset, read_manifest
    from dataset_builder.composite import CompositeConfig, parse_overrides

    config = replace(CompositeConfig(), **parse_overrides(args.composite))
    overrides = {k: v for k, v in {
        "empty_fraction": args.empty_fraction, "shadow_probability": args.shadow_probability,
        "min_height": args.min_height,
    }.items() if v is not None}
    config = replace(config, **overrides)
    manifest = build_dataset(
        args.plates, args.silhouettes or [], args.out, args.count, args.size, args.seed,
        max_actors=args.max_actors, perspective=args.perspective, val_fraction=args.val_fraction,
        config=config, feet_region=args.feet_region, workers=args.workers, overwrite=args.overwrite, progress=True,
    )
    data = read_manifest(manifest)
    p = data["params"]["perspective"]
    print(f"dataset {data['id'][:12]}: {data['count']} samples ({data['splits']['train']} train, "
          f"{data['splits']['val']} val) of {data['size'][0]}x{data['size'][1]} in {args.out}")
    print(f"perspective ({p['origin']}): height = {p['slope']:.3f} * feet_row + {p['intercept']:.1f} px")
    print(f"preview: {Path(args.out) / 'preview.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dataset_builder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plates", help="estimate clean plates of the site from a busy clip")
    p.add_argument("source", help="video file, folder of frames, or CDnet/DAVIS sequence folder of the site")
    p.add_argument("--out", required=True, help="folder for plate000.png ...")
    p.add_argument("--count", type=int, default=1, help="plates from consecutive segments (lighting changes; default 1)")
    p.add_argument("--samples", type=int, default=40, help="frames sampled per plate (default 40)")
    p.add_argument("--reference", help="an empty-scene image: print each plate's difference to it")
    p.add_argument("--people", metavar="SEGMENTER",
                   help="leave out the people this segmenter finds in each frame (e.g. mediapipe), for sites where "
                        "someone stands still most of the clip (default: motion masking only)")
    p.set_defaults(run=_plates)

    p = sub.add_parser("silhouettes", help="cut people out of a clip into RGBA crops + silhouettes.json")
    p.add_argument("source", help="video file, folder of frames, or CDnet/DAVIS sequence folder")
    p.add_argument("--method", required=True,
                   help="masks (the clip's own masks), plate (difference to the clip's median plate: static "
                        "camera, e.g. harvesting the site's own footage), or a humanseg segmenter name "
                        "(mediapipe, rembg, plate-diff, segnet, ...)")
    p.add_argument("--out", required=True, help="silhouettes folder (extractions of other clips in it are kept)")
    p.add_argument("--step", type=int, default=1, help="use every N-th frame (default 1)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--min-height", type=int, help="smallest person kept, px (default 24)")
    p.add_argument("--plate", help="empty-scene image to use instead of the clip's median (plate methods)")
    p.add_argument("--checkpoint", help="trained model for --method segnet")
    p.add_argument("--threshold", type=float, default=30.0, help="plate method: grey-level difference (default 30)")
    p.add_argument("--sheet", help="also write a review contact sheet PNG here")
    p.set_defaults(run=_silhouettes)

    p = sub.add_parser("reject", help="mark silhouettes as rejected so builds skip them")
    p.add_argument("folder", help="silhouettes folder")
    p.add_argument("names", nargs="+", help="file names listed in silhouettes.json")
    p.add_argument("--undo", action="store_true", help="accept them again instead")
    p.set_defaults(run=_reject)

    p = sub.add_parser("build", help="composite a site dataset (images/, masks/, plates/, manifest.json, preview.png)")
    p.add_argument("--plates", nargs="+", required=True, help="plate images or folders of them (one camera view)")
    p.add_argument("--silhouettes", nargs="+", help="silhouettes folders (each sampled with equal weight)")
    p.add_argument("--out", required=True, help="dataset folder (rerun the same command to resume)")
    p.add_argument("--count", type=int, required=True, help="number of samples")
    p.add_argument("--size", help="HxW of the samples, e.g. 240x320 (default: the plates' size)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same dataset)")
    p.add_argument("--max-actors", type=int, help="most people per image (default 3)")
    p.add_argument("--perspective",
                   help="ROW:HEIGHT,ROW:HEIGHT (feet row and person height of two reference people, output "
                        "pixels), or 'auto' (fit to silhouettes harvested from the site). Default: auto when "
                        "enough site silhouettes are given, else a generic view")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of samples for validation (default 0.1)")
    p.add_argument("--feet-region", help="image, white where people may stand (default: anywhere)")
    p.add_argument("--empty-fraction", type=float, help="share of images with no person (default 0.1)")
    p.add_argument("--shadow-probability", type=float, help="share of images with cast shadows (default 0.5)")
    p.add_argument("--min-height", type=float, help="smallest person placed, px (default 14)")
    p.add_argument("--composite", nargs="+", default=[], metavar="NAME=VALUE",
                   help="any other CompositeConfig setting, e.g. brightness=0.3 shadow_strength=0.2,0.5 "
                        "(dataset_builder/composite.py lists them with their defaults)")
    p.add_argument("--workers", type=int, default=1, help="processes (results do not depend on it)")
    p.add_argument("--overwrite", action="store_true", help="replace a different dataset already in --out")
    p.set_defaults(run=_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 2
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return int(run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # User mistakes: one clear line, no traceback.
        print(f"error: {err}", file=sys.stderr)
        return 2
