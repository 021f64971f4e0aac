"""`python -m humanseg site-benchmark SEQ_DIR [SEQ_DIR ...] (--actors SRC [SRC ...] | --site-actors) --minutes M --out DIR`.

Per sequence: site plate, the site's scale fitted from its own frames, composite dataset, a model trained for at
most M minutes, then the model and the baselines scored on the real frames. Writes DIR/results.json, run.json, report.md, f_measure.png and
DIR/<sequence>/montage.png; prints the report's path and the F-measure table. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "build a site dataset, train a model on it and score it against the baselines on the real footage"
#: ``--skip-first`` values: ``auto`` lets the evaluator decide.
SKIP_FIRST_CHOICES = {"auto": None, "yes": True, "no": False}


def _presets() -> str:
    try:
        from humanseg.models import PRESETS

        return ", ".join(PRESETS)
    except ImportError:  # torch missing: the run itself reports it
        return "see humanseg.models.PRESETS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanseg.maintained_plate import DEFAULT_UPDATE_S
    from humanseg.site_benchmark import DEFAULT_BASELINES, DEFAULT_COUNT, DEFAULT_FPS, DEFAULT_PLATE_PEOPLE

    parser.add_argument(
        "sequences", nargs="+", type=Path, metavar="SEQ_DIR",
        help="labelled sequence folder(s) of fixed cameras in CDnet layout (input/, groundtruth/, optional "
        "ROI.bmp, temporalROI.txt, empty_bg*.jpg); the plate is empty_bg*.jpg, else estimated from input/",
    )  # fmt: skip
    parser.add_argument(
        "--actors", nargs="+", type=Path, default=[], metavar="SRC",
        help="actor sources with person masks (DAVIS JPEGImages/+Annotations/ or CDnet layout); a source that is "
        "one of the SEQ_DIRs is used only for the other sequences (leave-one-out); needed unless --site-actors",
    )  # fmt: skip
    parser.add_argument(
        "--site-actors", action="store_true",
        help="also harvest actor silhouettes from each sequence's own input frames with its plate, as the app does "
        "(never reads its ground truth); with --actors, both sets are used",
    )  # fmt: skip
    parser.add_argument(
        "--minutes", type=float, required=True, metavar="M",
        help="training time budget per sequence in minutes (dataset building and scoring come on top)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--model", default=None, metavar="PRESET", help=f"model preset ({_presets()}); default: the training default"
    )
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        metavar="N",
        help=f"composites per sequence (default {DEFAULT_COUNT})",
    )
    parser.add_argument(
        "--size", default=None, metavar="HxW",
        help="composite size in pixels, e.g. 240x320 (default: the model's input size when the site scale tiles, "
        "else the plate's size, scaled down to at most 480 rows)",
    )  # fmt: skip
    parser.add_argument(
        "--perspective", default=None, metavar="ROW:H,ROW:H",
        help="two reference people (feet row : height) in composite pixels, frame pixels when the site scale tiles; "
        "default: the site's own, fitted from plate-difference blobs of its input frames, else a generic "
        "surveillance view (never fitted to the actors, who come from other cameras)",
    )  # fmt: skip
    parser.add_argument(
        "--no-site-scale", action="store_true",
        help="do not fit each sequence's person size from its own frames (its perspective, working scale and "
        "input-sized windowed composites for cameras with more pixels than the network needs): the composites "
        "as before",
    )  # fmt: skip
    parser.add_argument(
        "--composite", nargs="+", default=[], metavar="NAME=VALUE",
        help="composite settings of dataset_builder.composite.CompositeConfig for this run, e.g. "
        "border_cut_fraction=0 or brightness=0.3 shadow_strength=0.2,0.5 (one training lever changed on its own; "
        "recorded in run.json and the report)",
    )  # fmt: skip
    parser.add_argument(
        "--plate-people", default=DEFAULT_PLATE_PEOPLE, metavar="NAME",
        help=f"segmenter that marks people in the frames an estimated plate is made from, so that a person "
        f"standing still most of the clip is left out (default {DEFAULT_PLATE_PEOPLE}; 'none': motion masking only)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the dataset, model init and batch order (default 0)"
    )
    parser.add_argument(
        "--baselines", nargs="*", default=list(DEFAULT_BASELINES), metavar="NAME",
        help=f"baselines to score beside the site model (default: {' '.join(DEFAULT_BASELINES)}; `--baselines` alone: "
        "none). plate-diff gets the site plate; a baseline whose model file is missing and cannot be fetched "
        "is reported as skipped",
    )  # fmt: skip
    parser.add_argument(
        "--skip-first", default="auto", choices=list(SKIP_FIRST_CHOICES),
        help="leave the first scored frame out (auto: as the evaluator decides, i.e. for SBI sequences whose "
        "first frame is numbered 0 and has an unreliable mask)",
    )  # fmt: skip
    parser.add_argument(
        "--fps", type=float, default=DEFAULT_FPS,
        help=f"frame rate of the footage, to find the frame 2 s earlier for the still-person score (default {DEFAULT_FPS:g})",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=None, help="processes building composites (default: CPU cores, at most 8)"
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default=None,
        help="training/inference device (default: CUDA when available)",
    )
    parser.add_argument(
        "--drift",
        action="store_true",
        help="also score the drift probe per sequence (light ramp, light step, a moved object; the plate as captured): "
        "the site model and plate-diff with the plate that follows the site and with the fixed plate, and MOG2 "
        "(run.json, sequences.NAME.drift)",
    )
    parser.add_argument(
        "--fixed-plate",
        action="store_true",
        help="the site model and plate-diff compare with the plate as captured, not one that follows the site's "
        "light and moved objects (the drift probe runs both either way)",
    )
    parser.add_argument(
        "--plate-update-s",
        type=float,
        default=DEFAULT_UPDATE_S,
        metavar="S",
        help=f"time constant of the followed plate's update in seconds, counted at --fps (default {DEFAULT_UPDATE_S:g}; "
        "0 = light compensation only)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def parse_skip_first(text: str) -> bool | None:
    """``auto`` -> None (the evaluator decides), ``yes`` -> True, ``no`` -> False."""
    try:
        return SKIP_FIRST_CHOICES[text.lower()]
    except KeyError:
        raise ValueError(f"--skip-first must be one of {', '.join(SKIP_FIRST_CHOICES)}, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from dataset_builder.composite import parse_overrides
    from humanseg.site_benchmark import SiteBenchmarkConfig, run_site_benchmark
    from humanseg.site_report import mean_over_sequences
    from humanseg.sizes import parse_size

    options = {}
    if args.workers is not None:
        options["workers"] = args.workers
    config = SiteBenchmarkConfig(
        sequences=args.sequences, actors=args.actors, out=args.out, minutes=args.minutes, model=args.model,
        count=args.count, size=parse_size(args.size) if args.size else None, seed=args.seed,
        perspective=args.perspective, plate_people=None if args.plate_people == 'none' else args.plate_people,
        baselines=tuple(args.baselines), skip_first=parse_skip_first(args.skip_first), fps=args.fps,
        device=args.device, overwrite=args.overwrite, drift=args.drift, site_scale=not args.no_site_scale,
        site_actors=args.site_actors, fixed_plate=args.fixed_plate, plate_update_s=args.plate_update_s,
        composite=parse_overrides(args.composite), **options,
    )  # fmt: skip
    out = run_site_benchmark(config, progress=not args.no_progress)
    results = out["results"]
    table = dict(results)
    if len(results) > 1:
        table["mean"] = mean_over_sequences(results)
    for name, rows in table.items():
        cells = []
        for method, r in rows.items():
            f = r.get("f_measure")
            cells.append(f"{method} {f:.3f}" if f is not None else f"{method} skipped")
        print(f"{name}: F-measure " + ", ".join(cells))
    print(f"report: {config.out / 'report.md'}")
    print(f"results: {config.out / 'results.json'}", file=sys.stderr)
    return 0
