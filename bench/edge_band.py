"""People at the frame's edge: each method's F-measure on the pixels near the frame's border and on the rest, from
the masks a finished site-benchmark run saved (issue 10's third failure, people entering or leaving at the edge,
probed on footage with ground truth).

    python bench/edge_band.py out/final-orig [--band 0.1] [--json OUT_DIR/edge_band.json]

The band is every pixel within ``band`` x the frame's height of its border; both parts are scored as the benchmark
scores the whole frame (CDnet labels: 0 and 50 negative, 255 positive, 85 and 170 and outside the ROI unscored),
summed over the scored frames that were saved. A padded copy (``pad_sequence.py``) has nothing scored near its
canvas' border: run this on originals. Light: reads PNG files, no network.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from bench.mask_parts import PartTable, Split, markdown_rows, part_scores, run_parser, save_table  # noqa: E402
from humanseg.video import Sequence  # noqa: E402

PARTS = ("edge", "inside")


def border_band(shape: tuple[int, int], width: int) -> np.ndarray:
    """True on the pixels fewer than ``width`` px from the border of an ``shape`` (H, W) frame."""
    band = np.ones(shape, bool)
    band[width : shape[0] - width, width : shape[1] - width] = False
    return band


def edge_scores(out_dir: Path, band: float = 0.1) -> PartTable:
    """``{sequence: {method: {"edge"|"inside": {f_measure, precision, recall, positives, errors}}}}`` for the run
    in ``out_dir`` (``positives``: ground-truth person pixels scored in that part)."""
    if not 0 < band < 0.5:
        raise ValueError(f"band must be a fraction of the frame's height in (0, 0.5), got {band}")

    def split_for(seq: Sequence) -> Split:
        w, h = seq.size
        edge = border_band((h, w), max(1, round(band * h)))
        return lambda positive, scored: {"edge": edge, "inside": ~edge}

    return part_scores(out_dir, split_for)


def markdown(table: PartTable) -> str:
    """One row per method, F at the edge and inside for each sequence ('-' where no person pixel is scored: an F
    of nothing to find says nothing)."""
    names = list(table)
    lines = markdown_rows(
        table, list(PARTS), lambda s: [f"{s[p]['f_measure']:.3f}" if s and s[p]["positives"] else "-" for p in PARTS]
    )
    counts = []  # the same for every method of a sequence: take its first
    for n in names:
        first = next(iter(table[n].values()), None)
        counts += [str(first[p]["positives"]) if first else "-" for p in PARTS]
    lines.append("| person pixels scored | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = run_parser(__doc__.splitlines()[0], "edge_band.json")
    p.add_argument("--band", type=float, default=0.1, help="the band's width, a fraction of the frame's height")
    a = p.parse_args(argv)
    table = edge_scores(a.out_dir, a.band)
    save_table(table, a, "edge_band.json")
    print(markdown(table))


if __name__ == "__main__":
    main()
