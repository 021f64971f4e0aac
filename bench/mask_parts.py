"""Score a finished site-benchmark run's saved masks on parts of each frame (near the border, on the truth's
outline, ...): the loop that ``edge_band.py`` and ``outline_band.py`` share.

Each part is scored as the benchmark scores the whole frame (CDnet labels: 0 and 50 negative, 255 positive, 85 and
170 and outside the ROI unscored), summed over the scored frames the run saved. Light: reads PNG files, no network.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from humanseg.files import atomic_write  # noqa: E402
from humanseg.metrics import Confusion, count, label_masks, scores  # noqa: E402
from humanseg.video import Sequence, load_sequence, read_label  # noqa: E402

# (the truth's positive pixels, its scored pixels) -> {part name: where that part lies}, one frame at a time
Split = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]
# {sequence: {method: {part: {f_measure, precision, recall, positives, errors}}}}
PartTable = dict[str, dict[str, dict[str, dict[str, float]]]]


def part_scores(out_dir: Path, split_for: Callable[[Sequence], Split]) -> PartTable:
    """Each method's scores on each part of the frames of the run in ``out_dir``; ``split_for(sequence)`` gives the
    function that cuts that sequence's frames into parts (``positives``: the truth's person pixels scored there;
    ``errors``: false positives and negatives there). A method that saved no masks for a sequence has no entry."""
    run_path = out_dir / "run.json"
    if not run_path.is_file():
        raise SystemExit(f"{run_path} not found: give the --out folder of a finished site-benchmark run")
    run = json.loads(run_path.read_text())
    table: PartTable = {}
    for name, seq_info in run["sequences"].items():
        seq = load_sequence(seq_info["path"])
        split = split_for(seq)
        labels = {it.label.name: it.label for it in seq.items if it.label is not None}
        table[name] = {}
        for method in run["methods"]:
            folder = out_dir / name / "masks" / method
            saved = sorted(folder.glob("*.png")) if folder.is_dir() else []
            if not saved:
                continue
            totals: dict[str, Confusion] = {}
            for path in saved:
                positive, scored = label_masks(read_label(labels[path.name]), seq.roi)
                pred = read_label(path) >= 128
                for part, where in split(positive, scored).items():
                    totals[part] = totals.get(part, Confusion()) + count(pred, positive, scored & where)
            table[name][method] = {
                part: {
                    **{k: scores(c)[k] for k in ("f_measure", "precision", "recall")},
                    "positives": c.tp + c.fn,
                    "errors": c.fp + c.fn,
                }
                for part, c in totals.items()
            }
    return table


def run_parser(description: str, json_name: str) -> argparse.ArgumentParser:
    """The options every such script has: the run's folder, and where its table goes (``--json``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("out_dir", type=Path, help="the --out folder of a finished site-benchmark run")
    p.add_argument("--json", type=Path, default=None, help=f"where to write the table (default OUT_DIR/{json_name})")
    return p


def save_table(table: PartTable, args: argparse.Namespace, json_name: str) -> None:
    """Write ``table`` to ``--json``, or beside the run's own files."""
    atomic_write(args.json or args.out_dir / json_name, json.dumps(table, indent=2).encode())


def markdown_rows(table: PartTable, columns: list[str], cells: Callable[[dict | None], list[str]]) -> list[str]:
    """A markdown table with one row per method and ``columns`` per sequence (headed "<sequence> <column>");
    ``cells(scores)`` gives one method's cells on one sequence (``scores`` None where it saved no masks)."""
    names = list(table)
    methods = list(dict.fromkeys(m for per in table.values() for m in per))
    head = " | ".join(f"{n} {c}" for n in names for c in columns)
    lines = [f"| method | {head} |", "|---|" + "---:|" * (len(columns) * len(names))]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(c for n in names for c in cells(table[n].get(m))) + " |")
    return lines
