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


#: matplotlib's tab10 colours, in the order bar_chart gives them to methods.
TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]


def _bar_heights(pixels: np.ndarray, colour: tuple[int, int, int]) -> list[int]:
    """Heights in pixels of the bars of one colour, left to right, above the axis line they all stand on."""
    mask = np.abs(pixels - np.asarray(colour)).sum(axis=2) < 10
    bottoms = [int(np.nonzero(col)[0].max()) for col in mask.T if col.any()]
    base = max(set(bottoms), key=bottoms.count)  # the axis (the legend's patch lies below it)
    columns = mask[: base + 1].any(axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], columns.astype(int), [0]])))
    return [base + 1 - int(np.nonzero(mask[: base + 1, a:b].any(axis=1))[0].min()) for a, b in edges.reshape(-1, 2)]


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
    # Each method's bars are drawn in its tab10 colour, left to right per group (mean group last), and their
    # heights are proportional to the values: one pixels-per-unit scale for every bar (y axis 0..1.05).
    pixels = np.asarray(Image.open(out).convert("RGB")).astype(int)
    expected = with_mean(values)
    scales = []
    for colour, method in zip(TAB10, ["mog2", "knn", "plate-diff"], strict=False):
        heights = _bar_heights(pixels, colour)
        wanted = [float(g[method]) for g in expected.values() if method in g]
        assert len(heights) == len(wanted), (method, heights)
        scales += [h / v for h, v in zip(heights, wanted, strict=True)]
    assert max(scales) - min(scales) < 0.03 * np.mean(scales), scales


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

    # A run that has produced nothing yet still gives a chart rather than an error: the figure's full size
    # (7 x 5.5 in at 110 dpi), with both panels saying what is missing (dark text in the middle of each half).
    empty = training_curves([], tmp_path / "empty.png")
    with Image.open(empty) as img:
        assert img.format == "PNG" and img.size == (770, 605)
        dark = np.asarray(img.convert("L")) < 100
    centre = dark[:, 770 // 3 : 2 * 770 // 3]
    assert centre[100:200].any() and centre[380:480].any()  # "no loss values yet", "no validation yet"
    assert not centre[200:260].any()  # nothing drawn between them but the axes frames


@pytest.mark.parametrize("n_groups", [3, 8])
def test_bar_chart_legend_clears_the_group_names(tmp_path, monkeypatch, n_groups):
    """The legend lies below the axes and over no group name, straight (few groups) or slanted (more than 4)."""
    from humanseg import plots

    seen = {}
    save = plots._save

    def measure(fig, path):  # the laid-out figure as written, before bar_chart closes it
        written = save(fig, path)
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        seen["legend"] = ax.get_legend().get_window_extent(renderer)
        seen["names"] = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        seen["axes"] = ax.get_window_extent(renderer)
        return written

    monkeypatch.setattr(plots, "_save", measure)
    methods = ["site", "mog2", "knn", "gsoc", "plate-diff", "mediapipe"]
    values = {f"sequence {i} x3": {m: 0.1 * (1 + j) for j, m in enumerate(methods)} for i in range(n_groups - 1)}
    bar_chart(values, tmp_path / "f.png")
    legend, names = seen["legend"], seen["names"]
    assert len(names) == n_groups  # with the mean group
    assert legend.y1 < seen["axes"].y0  # display coordinates: y grows upwards
    assert not any(legend.overlaps(name) for name in names), (legend, names)
