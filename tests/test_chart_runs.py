"""bench/chart_runs.py: several site-benchmark runs in one chart, each run with its own mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from bench.chart_runs import chart_values, main


def _run(folder: Path, scores: dict[str, dict[str, float | None]]) -> Path:
    folder.mkdir()
    results = {seq: {m: {"f_measure": f} for m, f in rows.items()} for seq, rows in scores.items()}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_runs_keep_their_sequences_apart_and_their_own_means(tmp_path: Path) -> None:
    orig = _run(tmp_path / "orig", {"a": {"site": 0.9, "plate": 0.8}, "b": {"site": 0.7, "plate": None}})
    padded = _run(tmp_path / "x3", {"a": {"site": 0.6, "plate": 0.4}, "b": {"site": 0.8, "plate": 0.2}})
    values = chart_values([(orig, ""), (padded, " x3")])
    assert list(values) == ["a", "b", "mean", "a x3", "b x3", "mean x3"]
    assert values["b"] == {"site": 0.7}  # an unscored method draws no bar
    assert values["mean"] == pytest.approx({"site": 0.8, "plate": 0.8})  # plate: its one score
    assert values["mean x3"] == pytest.approx({"site": 0.7, "plate": 0.3})


def test_writes_a_png_and_names_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    run = _run(tmp_path / "orig", {"a": {"site": 0.9}})
    main([str(run), "--out", str(tmp_path / "chart.png")])
    assert Image.open(tmp_path / "chart.png").size[0] > 100
    with pytest.raises(SystemExit, match="no results.json"):
        main([str(tmp_path), "--out", str(tmp_path / "other.png")])
