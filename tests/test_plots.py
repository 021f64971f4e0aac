"""Charts: the PNG files a user opens, and the numbers behind the mean group."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from humanseg.plots import bar_chart, training_curves, with_mean


def _assert_png_with_content(path, min_width=300):
    assert path.is_file()
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width >= min_width and img.height >= 200
        pixels = np.asarray(img.convert("RGB"))
    # Not a blank canvas: bars/lines in several colours.
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10


def test_with_mean_averages_each_method_over_its_groups():
    values = {"pedestrians": {"mog2": 0.6, "knn": 0.5}, "hall": {"mog2": 0.8, "knn": float("nan")}}
    groups = with_mean(values)
    assert list(groups) == ["pedestrians", "hall", "mean"]
    assert groups["mean"]["mog2"] == pytest.approx(0.7)
    assert groups["mean"]["knn"] == pytest.approx(0.5)  # NaN is left out, not averaged in
    assert values == {"pedestrians": {"mog2": 0.6, "knn": 0.5}, "hall": {"mog2": 0.8, "knn": values["hall"]["knn"]}}
    assert math.isnan(values["hall"]["knn"])  # the input is not modified


def test_bar_chart_writes_png(tmp_path):
    values = {
        "pedestrians": {"mog2": 0.59, "knn": 0.55, "plate-diff": np.float32(0.7)},
        "HallAndMonitor": {"mog2": 0.6, "knn": 0.52, "plate-diff": 0.4},
        "CaVignal": {"mog2": 0.3, "knn": 0.35},
    }
    out = bar_chart(values, tmp_path / "sub" / "f.png", title="F-measure", ylabel="F")
    assert out == tmp_path / "sub" / "f.png"
    _assert_png_with_content(out)


def test_bar_chart_rejects_empty(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        bar_chart({}, tmp_path / "f.png")


def test_training_curves_tolerates_missing_validation(tmp_path):
    history = [{"step": s, "loss": 1.0 / (s + 1), "lr": 1e-3 * (1 - s / 100)} for s in range(0, 100, 5)]
    for s, f in ((20, 0.41), (40, 0.63), (60, 0.71)):
        history.append({"step": s, "val_f": f})
    history.append({"step": 80, "loss": 0.05, "lr": 2e-4, "val_f": None})
    history.append({"type": "done"})  # no step: skipped
    _assert_png_with_content(training_curves(history, tmp_path / "curves.png"))

    only_loss = [SimpleNamespace(step=s, loss=2.0 - s / 10, lr=None, val_f=None) for s in range(10)]
    _assert_png_with_content(training_curves(only_loss, tmp_path / "loss_only.png"))

    # A run that has produced nothing yet still gives an (empty) chart rather than an error.
    assert training_curves([], tmp_path / "empty.png").is_file()
