"""What each inference-time part of the site model gives on its own: the checkpoints of a finished site-benchmark
run re-scored with one part switched off at a time.

    python bench/ablate_site_model.py OUT_DIR [--json OUT_DIR/ablation.json] [--drift]

For every sequence in ``OUT_DIR/run.json`` the site model's checkpoint is scored (the same evaluator, frames and
first-frame rule as the benchmark, the plate that follows the site as in the benchmark) as it is, and with:
``tiles=False`` (the whole frame resized to the network's input, as before the working scale; only where the
site is tiled), ``tile_fit=True`` (tiles of each change's own size, the cheaper candidate; tiled sites only),
``tile_blend=False`` (overlapping tiles merged by their maximum, as before the blend; tiled sites only),
``tile_overlap=64`` (input-sized tiles over a change share at least 64 px, so the blend has room at every seam),
``shadow_rule=False`` (plate completion adds shadow-like pixels too), ``shadow_holes=False`` (the shadow rule
cuts shadow-like holes inside a person too, as before), ``complete=False`` (the
network alone), ``captured_light=False`` (the network sees the frame in its own light, the plate compensated to
it); and with ``flip_tta=True`` (the mirrored frame averaged in) or ``scale_tta`` (the frame at 0.8 and/or 1.25 times
the scale the network sees it at, averaged in), candidate levers. ``--drift``: each sequence's
light ramp and light step copies (:mod:`humanseg.drift`, the plate as captured) are scored too, as columns
``NAME ramp`` and ``NAME step``. Training-time
parts (the site's own perspective, border-cut people, attached floor shadows) need a model trained without
them: compare benchmark runs for those. Not a test; CPU-heavy: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from humanseg.drift import drifted_sequence  # noqa: E402
from humanseg.evaluate import evaluate_sequence  # noqa: E402
from humanseg.files import atomic_write  # noqa: E402
from humanseg.segmenters import create_segmenter  # noqa: E402

#: Variant name -> the segmenter options that differ from the default.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "whole frame (no tiles)": {"tiles": False},
    "tiles fitted to the changes": {"tile_fit": True},
    "tiles merged by their maximum": {"tile_blend": False},
    "tiles overlapping by 64 px": {"tile_overlap": 64},
    "no shadow rule": {"shadow_rule": False},
    "shadow-like holes cut too": {"shadow_holes": False},
    "network alone": {"complete": False},
    "network in the frame's light": {"captured_light": False},
    "flip averaging (2x cost)": {"flip_tta": True},
    "scale 0.8 averaged in": {"scale_tta": (0.8,)},
    "scale 1.25 averaged in": {"scale_tta": (1.25,)},
    "scales 0.8 and 1.25 averaged in": {"scale_tta": (0.8, 1.25)},
}


def ablate(
    out_dir: Path, variants: list[str] | None = None, sequences: list[str] | None = None, drift: bool = False
) -> dict[str, dict[str, dict[str, float]]]:
    """``{column: {variant: {f_measure, precision, recall, ms_per_frame}}}`` for the run in ``out_dir``, a column
    per sequence (and, with ``drift``, per drifted copy); the times are of one process on this machine: compare
    them within the table only."""
    run_path = out_dir / "run.json"
    if not run_path.is_file():
        raise SystemExit(f"{run_path} not found: give the --out folder of a site-benchmark run")
    run = json.loads(run_path.read_text())
    fps = float(run["settings"].get("fps", 25.0))
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, seq in run["sequences"].items():
        if sequences and name not in sequences:
            continue
        checkpoint = (seq.get("train") or {}).get("checkpoint")
        if not checkpoint:
            print(f"{name}: no checkpoint in run.json (the run did not train it), skipped", file=sys.stderr)
            continue
        tiled = bool((seq.get("scale") or {}).get("tiled"))
        with tempfile.TemporaryDirectory(prefix="ablate_drift_") as tmp:
            columns = {name: Path(seq["path"])}
            for kind in ("ramp", "step") if drift else ():
                columns[f"{name} {kind}"] = drifted_sequence(seq["path"], Path(tmp) / kind, kind)[0]
            for column, folder in columns.items():
                table[column] = {}
                for variant, options in VARIANTS.items():
                    if variants and variant not in variants:
                        continue
                    if {"tiles", "tile_fit", "tile_blend", "tile_overlap"} & options.keys() and not tiled:
                        continue  # the same masks as the default: the site runs whole frames anyway
                    seg = create_segmenter("segnet", checkpoint=checkpoint, fps=fps, **options)
                    try:
                        result = evaluate_sequence(folder, seg, skip_first=seq.get("skip_first"), progress=True)
                    finally:
                        seg.close()
                    keys = ("f_measure", "precision", "recall", "ms_per_frame")
                    table[column][variant] = {k: float(result[k]) for k in keys}
                    print(f"{column} / {variant}: F {result['f_measure']:.3f}", file=sys.stderr)
    return table


def markdown(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """One row per variant, F (precision / recall) and ms/frame per sequence; '-' where a variant does not
    apply."""
    names = list(table)
    lines = ["| site model | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for variant in [v for v in VARIANTS if any(v in table[n] for n in names)]:  # the variants that ran
        cells = []
        for name in names:
            s = table[name].get(variant)
            cells.append(
                f"{s['f_measure']:.3f} ({s['precision']:.3f} / {s['recall']:.3f}), {s['ms_per_frame']:.0f} ms"
                if s
                else "-"
            )
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="the --out folder of a finished site-benchmark run")
    ap.add_argument("--json", type=Path, default=None, help="where to write the table (default OUT_DIR/ablation.json)")
    ap.add_argument("--variants", nargs="+", default=None, help=f"only these variants (of {list(VARIANTS)})")
    ap.add_argument("--sequences", nargs="+", default=None, help="only these sequences of the run")
    ap.add_argument("--drift", action="store_true", help="also score the light ramp and step copies of each sequence")
    a = ap.parse_args()
    table = ablate(a.out_dir, a.variants, a.sequences, a.drift)
    atomic_write(a.json or a.out_dir / "ablation.json", json.dumps(table, indent=2).encode())
    print(markdown(table))


if __name__ == "__main__":
    main()
