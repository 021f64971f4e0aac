"""The drift probe added to a finished site-benchmark run: its checkpoints re-scored on the drifted copies of its
sequences, exactly as ``site-benchmark ... --drift`` scores them after training (same function, settings from
``run.json``), without training again.

    python bench/drift_of_run.py OUT_DIR [--sequences NAME ...]

Writes each sequence's ``drift`` into ``OUT_DIR/run.json`` (``drift_added_by`` says by what) and rewrites
``report.md`` with the drift tables; prints one line per sequence and variant. Not a test; CPU-heavy (the three
dev sequences took 2.5 minutes on 2 cores): run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from humanseg.site_benchmark import drift_probe  # noqa: E402
from humanseg.site_report import write_outputs  # noqa: E402
from humanseg.video import load_sequence  # noqa: E402


def add_drift(out_dir: Path, sequences: list[str] | None = None) -> dict:
    """Score the drift probe for the sequences of the run in ``out_dir`` (all, or ``sequences``) and write it into
    the run's files; returns the updated run."""
    run_path, results_path = out_dir / "run.json", out_dir / "results.json"
    if not run_path.is_file() or not results_path.is_file():
        raise SystemExit(f"{out_dir}: no run.json/results.json; give the --out folder of a finished site-benchmark run")
    run = json.loads(run_path.read_text())
    results = json.loads(results_path.read_text())
    unknown = sorted(set(sequences or []) - set(run["sequences"]))
    if unknown:
        raise SystemExit(f"{unknown} not in this run; its sequences are {sorted(run['sequences'])}")
    s = run["settings"]
    for name, seq in run["sequences"].items():
        if sequences and name not in sequences:
            continue
        checkpoint = (seq.get("train") or {}).get("checkpoint")
        if not checkpoint or not Path(checkpoint).is_file():
            raise SystemExit(f"{name}: checkpoint {checkpoint!r} not found; the run's folder must be complete")
        seq["drift"] = drift_probe(
            Path(seq["path"]), load_sequence(seq["path"]), out_dir / name, checkpoint, run["model_method"],
            fps=float(s["fps"]), plate_update_s=float(s["plate_update_s"]), device=s.get("device"),
            skip_first=seq.get("skip_first"), progress=True, say=lambda m: print(m, file=sys.stderr),
        )  # fmt: skip
        seq["drift_added_by"] = "bench/drift_of_run.py (the run's checkpoint, not retrained)"
        write_outputs(out_dir, results, run)  # after each sequence, so an interruption keeps the finished ones
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="the --out folder of a finished site-benchmark run")
    ap.add_argument("--sequences", nargs="+", default=None, help="only these sequences of the run")
    a = ap.parse_args()
    run = add_drift(a.out_dir, a.sequences)
    for name, seq in run["sequences"].items():
        for variant, rows in (seq.get("drift") or {}).items():
            print(f"{name} {variant}: " + ", ".join(f"{m} {r['f_measure']:.3f}" for m, r in rows.items()))


if __name__ == "__main__":
    main()
