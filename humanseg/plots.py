"""Charts shared by evaluate, train and the app: PNG files drawn with matplotlib's Agg backend.

matplotlib is imported inside the functions (and switched to Agg there), so importing this module is free and
no display is ever needed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only, never a window (servers and tests have no display)
    import matplotlib.pyplot as plt

    return plt


def _finite(value: Any) -> bool:
    # numbers.Real also covers numpy scalars (np.float32 is not a float subclass).
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def with_mean(values: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """A copy of ``values`` (group -> method -> value) with a last group "mean": each method's mean over the
    groups where it has a finite value (methods with none are left out of the mean group)."""
    groups = {str(g): dict(v) for g, v in values.items()}
    methods = list(dict.fromkeys(m for per_method in groups.values() for m in per_method))
    means: dict[str, float] = {}
    for m in methods:
        vals = [float(v[m]) for v in groups.values() if _finite(v.get(m))]
        if vals:
            means[m] = sum(vals) / len(vals)
    groups["mean"] = means
    return groups


def bar_chart(
    values: Mapping[str, Mapping[str, float]],
    path: str | Path,
    title: str = "",
    ylabel: str = "",
    *,
    add_mean: bool = True,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """Grouped bar chart: one group per key of ``values`` (e.g. a sequence), one bar per inner key (a method).

    With ``add_mean`` and more than one group, a last group "mean" (see ``with_mean``) shows each method's mean
    over the groups where it has a value; missing or NaN values are drawn as no bar. Bars are labelled with their
    value.
    ``ylim`` defaults to (0, 1) when every value lies in [0, 1] (scores), else matplotlib's choice.
    Writes a PNG at ``path`` (parent folders are created) and returns the path.
    """
    if not values:
        raise ValueError("bar_chart needs at least one group of values, got an empty mapping")
    groups = with_mean(values) if add_mean and len(values) > 1 else {str(g): dict(v) for g, v in values.items()}
    methods = list(dict.fromkeys(m for per_method in groups.values() for m in per_method))
    plt = _pyplot()
    n_groups, n_methods = len(groups), max(len(methods), 1)
    width = 0.8 / n_methods
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + n_groups * (0.5 + 0.45 * n_methods)), 4.0), dpi=110)
    try:
        all_values = []
        for j, m in enumerate(methods):
            xs, hs = [], []
            for i, per_method in enumerate(groups.values()):
                v = per_method.get(m)
                if _finite(v):
                    xs.append(i - 0.4 + width * (j + 0.5))
                    hs.append(float(v))
            all_values += hs
            bars = ax.bar(xs, hs, width=width * 0.95, label=m, color=plt.cm.tab10(j % 10))
            ax.bar_label(bars, labels=[f"{h:.2f}" for h in hs], fontsize=7, padding=1)
        ax.set_xticks(range(n_groups), list(groups), rotation=20 if n_groups > 4 else 0)
        if add_mean and len(values) > 1:  # set the mean group apart
            ax.axvline(n_groups - 1.5, color="0.7", linewidth=0.8, linestyle="--")
        if ylim is None and all_values and min(all_values) >= 0 and max(all_values) <= 1:
            ylim = (0.0, 1.05)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        # Below the group names, lower when they are slanted (they would run under the legend).
        below = -0.2 if n_groups > 4 else -0.12
        ax.legend(fontsize=8, ncols=min(n_methods, 4), loc="upper left", bbox_to_anchor=(0, below))
        return _save(fig, path)
    finally:
        plt.close(fig)


def _field(event: Any, name: str) -> Any:
    if isinstance(event, Mapping):
        return event.get(name)
    return getattr(event, name, None)


def training_curves(events_or_history: Iterable[Any], path: str | Path, title: str = "Training") -> Path:
    """Loss vs step (top) and validation F-measure vs step (bottom), as a PNG at ``path``.

    ``events_or_history`` holds mappings (or objects with attributes) with ``step`` and any of ``loss``,
    ``val_f`` (and ``lr``, drawn faintly on a right-hand axis of the loss plot when present). Entries without a
    step, or whose value is missing/None/NaN, are skipped for that curve, so a stream mixing training and
    validation events, or a run not yet validated, draws fine. Returns the path.
    """
    loss_pts: list[tuple[float, float]] = []
    lr_pts: list[tuple[float, float]] = []
    val_pts: list[tuple[float, float]] = []
    for event in events_or_history:
        step = _field(event, "step")
        if not _finite(step):
            continue
        for name, pts in (("loss", loss_pts), ("lr", lr_pts), ("val_f", val_pts)):
            value = _field(event, name)
            if _finite(value):
                pts.append((float(step), float(value)))

    plt = _pyplot()
    fig, (ax_loss, ax_val) = plt.subplots(2, 1, figsize=(7.0, 5.5), dpi=110, sharex=True)
    try:
        if loss_pts:
            ax_loss.plot(*zip(*loss_pts, strict=True), color="tab:blue", linewidth=1.2, label="loss")
            if min(v for _, v in loss_pts) > 0 and max(v for _, v in loss_pts) / min(v for _, v in loss_pts) > 20:
                ax_loss.set_yscale("log")  # losses spanning decades read better on a log axis
        else:
            ax_loss.text(0.5, 0.5, "no loss values yet", ha="center", va="center", transform=ax_loss.transAxes)
        if lr_pts:
            ax_lr = ax_loss.twinx()
            ax_lr.plot(*zip(*lr_pts, strict=True), color="0.6", linewidth=0.8, linestyle=":", label="learning rate")
            ax_lr.set_ylabel("learning rate", color="0.5")
            ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax_loss.set_ylabel("training loss")
        ax_loss.set_title(title)
        ax_loss.grid(alpha=0.3)

        if val_pts:
            steps, fs = zip(*val_pts, strict=True)
            ax_val.plot(steps, fs, color="tab:green", marker="o", markersize=3, linewidth=1.2)
            best = max(range(len(fs)), key=fs.__getitem__)
            ax_val.annotate(
                f"best {fs[best]:.3f} @ {int(steps[best])}",
                (steps[best], fs[best]),
                textcoords="offset points",
                xytext=(0, -14),
                ha="center",
                fontsize=8,
            )
            ax_val.set_ylim(0.0, 1.02)
        else:
            ax_val.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax_val.transAxes)
        ax_val.set_ylabel("validation F-measure")
        ax_val.set_xlabel("step")
        ax_val.grid(alpha=0.3)
        return _save(fig, path)
    finally:
        plt.close(fig)


def _save(fig, path: str | Path) -> Path:
    """Lay out and write ``fig`` to ``path`` (folders created); the caller closes the figure."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
