"""`python -m humanseg evaluate SEQ_DIR [SEQ_DIR ...] --segmenter NAME [NAME ...]`.

One sequence and one segmenter: stdout is exactly one JSON object (the result of
``humanseg.evaluate.evaluate_sequence``). Otherwise stdout is a markdown table and a bar chart of F-measure is
written. Progress bars and notes go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "score segmenters on labelled CDnet/SBI/DAVIS sequences (CDnet protocol: F-measure, IoU, PWC, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanseg.segmenters import available  # the registry imports no backend: cheap

    parser.add_argument(
        "sequences", nargs="+", type=Path, metavar="SEQ_DIR",
        help="labelled sequence folder(s): CDnet/SBI (input/ + groundtruth/, optional ROI.bmp, temporalROI.txt) "
        "or DAVIS (JPEGImages/ + Annotations/)",
    )  # fmt: skip
    parser.add_argument(
        "--segmenter", "-s", nargs="+", required=True, metavar="NAME",
        help=f"method(s) to score ({', '.join(available())})",
    )  # fmt: skip
    parser.add_argument("--checkpoint", type=Path, help="trained checkpoint, for the methods that take one (segnet)")
    parser.add_argument(
        "--plate", type=Path, metavar="IMG",
        help="empty-scene image of the camera, for the methods that take one (plate-diff, segnet); needs exactly "
        "one SEQ_DIR. A sequence's empty_bg*.jpg is never used unless given here",
    )  # fmt: skip
    parser.add_argument("--model-path", type=Path, help="model file overriding the default (mediapipe, rembg)")
    parser.add_argument(
        "--skip-first", action=argparse.BooleanOptionalAction, default=None,
        help="do (or with --no-skip-first, do not) leave the first scored frame of every SEQ_DIR out; default: automatic, which "
        "skips it only in CDnet-layout folders whose first scored frame is numbered 0 (SBI sequences, whose "
        "frame-0 mask is unreliable)",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=float, default=0.5,
        help="a pixel is person when the method's probability is above this (default 0.5)",
    )  # fmt: skip
    parser.add_argument(
        "--json", type=Path, metavar="OUT.json",
        help="also write the result(s) as JSON: an object for one run, a list for several",
    )  # fmt: skip
    parser.add_argument(
        "--save-masks", type=Path, metavar="DIR",
        help="write each scored frame's predicted mask as a 0/255 PNG named like its ground-truth file: into DIR "
        "for one sequence and method, else into DIR/<sequence>/<method>/",
    )  # fmt: skip
    parser.add_argument(
        "--chart", type=Path, metavar="PNG",
        help="bar chart of F-measure per sequence and method (with a mean group). Written for several runs: by "
        "default next to --json as <OUT>_f_measure.png, else ./f_measure.png; for a single run only if given",
    )  # fmt: skip


def _chart_path(args: argparse.Namespace) -> Path:
    if args.chart is not None:
        return args.chart
    if args.json is not None:
        return args.json.with_name(args.json.stem + "_f_measure.png")
    return Path("f_measure.png")


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def run(args: argparse.Namespace) -> int:
    from humanseg.evaluate import evaluate_many, evaluate_sequence, f_measure_chart, results_markdown

    names = list(dict.fromkeys(args.segmenter))
    options = {"plate": args.plate, "checkpoint": args.checkpoint, "model_path": args.model_path}
    if len(args.sequences) == 1 and len(names) == 1:
        result = evaluate_sequence(
            args.sequences[0], names[0], **options, skip_first=args.skip_first, save_masks=args.save_masks,
            threshold=args.threshold, progress=True,
        )  # fmt: skip
        print(json.dumps(result, indent=2))
        if args.json is not None:
            _write_json(args.json, result)
        if args.chart is not None:
            f_measure_chart([result], args.chart)
            print(f"chart: {args.chart}", file=sys.stderr)
        return 0

    rows = evaluate_many(
        args.sequences, names, **options, skip_first=args.skip_first, save_masks=args.save_masks,
        threshold=args.threshold, progress=True,
    )  # fmt: skip
    print(results_markdown(rows), end="")
    if args.json is not None:
        _write_json(args.json, rows)
    chart = f_measure_chart(rows, _chart_path(args))
    print(f"chart: {chart}", file=sys.stderr)
    return 0
