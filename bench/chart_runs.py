"""One F-measure chart for several finished site-benchmark runs (e.g. the originals and their x3 padded copies).

    python bench/chart_runs.py out/final-orig out/final-x3=" x3" --out docs/dev_results/f_measure_orig_x3.png

Each ``RUN`` is a ``--out`` folder of ``python -m humanseg site-benchmark``; ``RUN=SUFFIX`` appends SUFFIX to its
sequence names so runs of the same sequences stay apart. Every run gets its own "mean" group (its sequences only),
so the originals' and the padded copies' means are not mixed. Light: reads ``results.json`` files, draws one PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from humanseg.plots import bar_chart, with_mean  # noqa: E402
from humanseg.site_report import f_measures  # noqa: E402


def chart_values(runs: list[tuple[Path, str]]) -> dict[str, dict[str, float]]:
    """``{group: {method: F}}`` for the runs' sequences (named ``<sequence><suffix>``), each run followed by its mean."""
    values: dict[str, dict[str, float]] = {}
    for out_dir, suffix in runs:
        path = out_dir / "results.json"
        if not path.is_file():
            raise SystemExit(f"{out_dir}: no results.json; give the --out folder of a finished site-benchmark run")
        results = json.loads(path.read_text())
        run = {f"{seq}{suffix}": scores for seq, scores in f_measures(results).items()}
        if len(run) > 1:  # with_mean names its group "mean": one per run, named like its sequences
            run = with_mean(run)
            run[f"mean{suffix}"] = run.pop("mean")
        values.update(run)
    return values


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN[=SUFFIX]", help="site-benchmark --out folders")
    p.add_argument("--out", required=True, type=Path, help="the PNG to write")
    p.add_argument("--title", default="F-measure per sequence and method")
    args = p.parse_args(argv)
    runs = [(Path(r.split("=", 1)[0]), r.split("=", 1)[1] if "=" in r else "") for r in args.runs]
    chart = bar_chart(chart_values(runs), args.out, title=args.title, ylabel="F-measure", add_mean=False)
    print(chart)


if __name__ == "__main__":
    main()
