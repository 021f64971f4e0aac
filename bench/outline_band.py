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

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from bench.mask_parts import PartTable, markdown_rows, part_scores, run_parser, save_table  # noqa: E402


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

    return part_scores(out_dir, lambda seq: split)  # the band follows each frame's truth, not the sequence


def markdown(table: PartTable, radius: int) -> str:
    """One row per method; per sequence its F as scored, its F with the outline band unscored, and the share of its
    errors (false positives and negatives) that lie in the band."""
    def cells(s: dict | None) -> list[str]:
        if s is None:
            return ["-"] * 3
        errors = s["whole"]["errors"]
        share = f"{s['outline']['errors'] / errors:.0%}" if errors else "-"
        return [f"{s['whole']['f_measure']:.4f}", f"{s['away']['f_measure']:.4f}", share]

    columns = ["F", "F, outline unscored", "errors on the outline"]
    lines = [f"Outline band: {radius} px either side of the truth's edge.", ""]
    return "\n".join(lines + markdown_rows(table, columns, cells))

def main(argv: list[str] | None = None) -> None:
    p = run_parser(__doc__.splitlines()[0], "outline_band.json")
    p.add_argument("--radius", type=int, default=1, help="the band's half-width in pixels (default 1)")
    a = p.parse_args(argv)
    table = outline_scores(a.out_dir, a.radius)
    save_table(table, a, "outline_band.json")
    print(markdown(table, a.radius))


if __name__ == "__main__":
    main()
