"""How much of each method's error lies on the truth's outline: its F-measure as scored, its F-measure with a band
of ``radius`` px around the outline of the truth's people left unscored, and the share of its errors in that band,
from the masks a finished site-benchmark run saved.

    python bench/outline_band.py out/final-orig [--radius 1] [--json OUT_DIR/outline_band.json]

CDnet's ground truth already leaves an "unknown" band (170) around each person unscored; SBI's CaVignal has none, so
there every outline pixel counts and two methods that both find the whole person differ only in how they draw its
edge. This tells an outline-limited score (errors within a pixel or two of the truth's edge) from missed limbs,
shadows and moved objects (errors away from it). Scored as the benchmark scores (0 and 50 negative, 255 positive,
85 and 170 and outside the ROI unscored), summed over the scored frames that were saved. Light: reads PNG files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from bench.mask_parts import PartTable, Split, part_scores  # noqa: E402
from humanseg.files import atomic_write  # noqa: E402
from humanseg.video import Sequence  # noqa: E402


def outline_band(positive: np.ndarray, radius: int) -> np.ndarray:
    """True on the pixels within ``radius`` px (8-connected steps) of the edge between ``positive`` and the rest,
    on both sides. The frame's border is not an edge: a person cut by it has no outline there."""
    if radius < 1:
        raise ValueError(f"radius must be a whole number of pixels >= 1, got {radius}")
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    person = positive.astype(np.uint8)
    # OpenCV pads erode with +inf and dilate with -inf by default, so the border neither adds nor removes a person.
    return (cv2.dilate(person, kernel) > 0) & ~(cv2.erode(person, kernel) > 0)


def outline_scores(out_dir: Path, radius: int = 1) -> PartTable:
    """``{sequence: {method: {"whole"|"outline"|"away": {f_measure, precision, recall, positives, errors}}}}`` for
    the run in ``out_dir``; "away" is the frame with the outline band unscored."""
    outline_band(np.zeros((1, 1), bool), radius)  # the radius' check, before any file is read

    def split(positive: np.ndarray, scored: np.ndarray) -> dict[str, np.ndarray]:
        band = outline_band(positive, radius)
        return {"whole": np.ones_like(band), "outline": band, "away": ~band}

    def split_for(seq: Sequence) -> Split:
        return split

    return part_scores(out_dir, split_for)


def markdown(table: PartTable, radius: int) -> str:
    """One row per method; per sequence its F as scored, its F with the outline band unscored, and the share of its
    errors (false positives and negatives) that lie in the band."""
    names = list(table)
    methods = list(dict.fromkeys(m for per in table.values() for m in per))
    head = " | ".join(f"{n} F | {n} F, outline unscored | {n} errors on the outline" for n in names)
    lines = [
        f"Outline band: {radius} px either side of the truth's edge.",
        "",
        f"| method | {head} |",
        "|---|" + "---:|" * (3 * len(names)),
    ]
    for m in methods:
        cells = []
        for n in names:
            s = table[n].get(m)
            if s is None:
                cells += ["-"] * 3
                continue
            errors = s["whole"]["errors"]
            share = f"{s['outline']['errors'] / errors:.0%}" if errors else "-"
            cells += [f"{s['whole']['f_measure']:.4f}", f"{s['away']['f_measure']:.4f}", share]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path, help="the --out folder of a finished site-benchmark run")
    p.add_argument("--radius", type=int, default=1, help="the band's half-width in pixels (default 1)")
    p.add_argument("--json", type=Path, default=None, help="where to write the table (default OUT_DIR/outline_band.json)")
    a = p.parse_args(argv)
    table = outline_scores(a.out_dir, a.radius)
    atomic_write(a.json or a.out_dir / "outline_band.json", json.dumps(table, indent=2).encode())
    print(markdown(table, a.radius))


if __name__ == "__main__":
    main()
