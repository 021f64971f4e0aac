"""The site benchmark's report: ``results.json``, ``run.json``, ``report.md`` and ``f_measure.png``.

``results`` is ``{sequence: {method: row}}`` (rows as :func:`humanseg.evaluate.evaluate_sequence` gives them, plus
``status``, ``still_f_measure`` and ``still_frames``; a method that could not run has ``status: "skipped"`` and a
``reason``); ``run`` holds the settings, sources, timings and versions (see :mod:`humanseg.site_benchmark`).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from humanseg.evaluate import STILL_IOU, STILL_SECONDS, format_cell
from humanseg.files import atomic_write

#: Files of the run folder this module writes (the benchmark refuses to overwrite them without --overwrite).
OUTPUT_FILES = ("results.json", "run.json", "report.md", "f_measure.png")

_COLUMNS = (
    ("f_measure", "F-measure", "{:.3f}"),
    ("iou", "IoU", "{:.3f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("still_f_measure", "still F", "{:.3f}"),
    ("flicker", "flicker", "{:.4f}"),
    ("ms_per_frame", "ms/frame", "{:.1f}"),
)
_STILL = [k for k, _, _ in _COLUMNS].index("still_f_measure")


def _table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table rows, one per method, the best F-measure in bold; still F is followed by its frame count."""
    head = ["method"] + [t for _, t, _ in _COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(_COLUMNS)]
    best = _winner(rows)
    for method, r in rows.items():
        label = f"**{method}**" if method == best else method
        if r.get("status") == "skipped":
            lines.append(f"| {label} | skipped: {r.get('reason', '')} |" + " |" * (len(_COLUMNS) - 1))
            continue
        cells = [format_cell(r.get(k), f) for k, _, f in _COLUMNS]
        cells[_STILL] += f" ({r.get('still_frames', 0)})"
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return lines


def _winner(rows: dict[str, dict[str, Any]]) -> str | None:
    ran = {m: r["f_measure"] for m, r in rows.items() if r.get("f_measure") is not None}
    return max(ran, key=ran.get) if ran else None


def _drift_table(drift: dict[str, dict[str, Any]], unchanged: dict[str, dict[str, Any]]) -> list[str]:
    """The drift probe of one sequence (run.json ``drift``): F per variant and method beside the unchanged F, and
    how many seconds the moved object stays marked."""
    methods = list(next(iter(drift.values())))
    lines = ["Drift probe (the plate as captured, frames changed; humanseg.drift):", "",
             "| method | unchanged | " + " | ".join(drift) + " | moved object marked for (s) |",
             "|---|---|" + "---|" * len(drift) + "---|"]  # fmt: skip
    for m in methods:
        base = unchanged.get(m.removesuffix(" fixed plate"), {}).get("f_measure") if "fixed" not in m else None
        cells = [f"{drift[v][m]['f_measure']:.3f}" for v in drift]
        until = drift.get("moved", {}).get(m, {}).get("moved_marked_until_s")
        lines.append(f"| {m} | {'' if base is None else f'{base:.3f}'} | " + " | ".join(cells)
                     + f" | {'' if until is None else until} |")  # fmt: skip
    return [*lines, ""]


def mean_over_sequences(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method, the mean of each table metric over the sequences where it ran (``sequences`` = how many)."""
    methods = list(dict.fromkeys(m for rows in results.values() for m in rows))
    out = {}
    for m in methods:
        ran = [rows[m] for rows in results.values() if m in rows and rows[m].get("status") == "ok"]
        row: dict[str, Any] = {"status": "ok" if ran else "skipped", "sequences": len(ran)}
        if not ran:
            row["reason"] = "did not run on any sequence"
        for key, _, _ in _COLUMNS:
            vals = [r[key] for r in ran if r.get(key) is not None]
            row[key] = float(np.mean(vals)) if vals else None
        row["still_frames"] = sum(r.get("still_frames") or 0 for r in ran)
        out[m] = row
    return out


def _plate_setting(s: dict[str, Any]) -> str:
    """How the plate methods treated their plate (runs from before issue 11 had a fixed plate)."""
    if "fixed_plate" not in s:
        return "as captured"
    if s["fixed_plate"]:
        return "as captured (--fixed-plate)"
    return f"follows the site: light compensation, update time {s['plate_update_s']:g} s at {s['fps']:g} fps"


def _composite_flag(settings: dict[str, Any]) -> str:
    """The run's composite settings as the ``--composite`` flag that sets them (empty: the builder's defaults)."""
    items = (settings.get("composite") or {}).items()
    text = [f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in items]
    return f", `--composite {' '.join(text)}`" if text else ""


def report_markdown(results: dict[str, dict[str, Any]], run: dict[str, Any]) -> str:
    """The human-readable report: settings, a table per sequence with its winner, the mean over sequences."""
    from humanseg.models import get_preset

    s = run["settings"]
    t = run["timings"]
    size = f"{s['size'][0]}x{s['size'][1]}" if s.get("size") else "plate size (at most 480 rows)"
    skip = {None: "auto", True: "yes", False: "no"}[s["skip_first"]]
    fitted = s.get("site_scale", False)  # runs from before the site scale have no such setting
    perspective = s["perspective"] or (
        "the site's own, fitted per sequence from plate-difference blobs of its input frames (the generic view "
        "where too few people)" if fitted else "generic surveillance view (dataset_builder default)"
    )  # fmt: skip
    site_scale = (
        "fitted per sequence (person height -> working scale; input-sized windows where the network tiles)"
        if fitted else "off (--no-site-scale)"
    )  # fmt: skip
    site_actors = (
        "harvested from each sequence's own input frames with its plate (method plate, never its ground truth)"
        if s.get("site_actors", False) else "no"
    )  # fmt: skip
    lines = [
        "# Site benchmark",
        "",
        f"Site model `{run['model_method']}` (preset `{s['model']}`), trained per sequence on composites of the "
        "site plate and actor silhouettes from other footage, against generic baselines, scored on the real "
        "frames with the CDnet protocol (F-measure etc. from pixel counts summed over the scored frames).",
        "",
        "## Settings",
        "",
        "| setting | value |",
        "|---|---|",
        f"| training budget | {s['minutes']:g} min per sequence (dataset building and scoring come on top) |",
        f"| model preset | {s['model']} |",
        "| site model output | "
        + (
            "network + plate completion (plate-difference blobs it covers for at least a quarter are added) |"
            if get_preset(s["model"]).needs_plate
            else "network |"
        ),  # fmt: skip
        "| estimated plates | temporal median of the input frames, "
        + (f"people marked by {s['plate_people']} left out |" if s.get("plate_people") else "motion masking only |"),
        f"| composites | {s['count']} per sequence, size {size}, seed {s['seed']}{_composite_flag(s)} |",
        f"| perspective | {perspective} |",
        f"| site scale | {site_scale} |",
        f"| site actors | {site_actors} |",
        f"| baselines | {', '.join(s['baselines']) or 'none'} |",
        f"| skip first scored frame | {skip} |",
        f"| plate (site model, plate-diff) | {_plate_setting(s)} |",
        f"| still person | GT foreground IoU >= {STILL_IOU} with the frame {STILL_SECONDS:g} s earlier "
        f"at {s['fps']:g} fps |",
        "| actor sources | "
        + ", ".join(f"{n} ({a['silhouettes']} silhouettes)" for n, a in run["actors"].items())
        + " |",
        f"| device | {run['versions'].get('device', '')} |",
        f"| total time | {t['total_s'] / 60:.1f} min |",
        "",
        "Columns: F-measure, IoU, precision, recall over all scored frames; *still F*: F-measure on the frames "
        "where a person has not moved for 2 s (frame count in brackets); *flicker*: mean mask change on pixels "
        "whose input did not change (lower is steadier); ms/frame: segmentation time only. Bold: the best "
        "F-measure.",
        "",
    ]
    for name, rows in results.items():
        meta = run["sequences"][name]
        tt = t["sequences"][name]
        winner = _winner(rows)
        lines += [
            f"## {name}",
            "",
            f"- footage: `{meta['path']}` ({meta['frame_wh'][0]}x{meta['frame_wh'][1]}), {meta['scored_frames']} scored "
            f"frames (first skipped: {'yes' if meta['skip_first'] else 'no'}), {len(meta['still_frames'])} with a "
            "still person",
            f"- plate: {meta['plate']['source']} ({meta['plate']['detail']})",
            f"- site scale: {meta.get('scale_note', 'not recorded')}; composites "
            f"{meta['dataset']['size'][0]}x{meta['dataset']['size'][1]}"
            + (" (windows of the plate at the working scale)" if meta["dataset"].get("tiled") else ""),
            "- actor sources: " + ", ".join(
                f"{a} ({run['actors'][a]['silhouettes']} silhouettes)" if a in run["actors"] else a
                for a in meta["actor_sources"])
            + (f" (left out, being this sequence: {', '.join(meta['actor_sources_left_out'])})"
               if meta["actor_sources_left_out"] else ""),
            f"- training: {meta['train']['steps']} steps, {meta['train']['epochs']} epochs in "
            f"{meta['train']['elapsed_s']:.0f} s on {meta['train']['device']}",
            f"- time: plate {tt['plate_s']:.1f} s, dataset {tt['build_s']:.1f} s, training {tt['train_s']:.1f} s, "
            f"scoring {sum(tt['eval_s'].values()):.1f} s",
            "",
            *_table(rows),
            "",
            f"Winner: **{winner}** (F-measure {rows[winner]['f_measure']:.3f})." if winner else "No method ran.",
            "",
            f"![montage of {name}]({name}/montage.png)",
            "",
        ]  # fmt: skip
        if meta.get("drift"):
            lines += _drift_table(meta["drift"], rows)
    if len(results) > 1:
        means = mean_over_sequences(results)
        lines += [
            f"## Mean over {len(results)} sequences",
            "",
            *_table(means),
            "",
            "Winners per sequence: " + ", ".join(f"{n}: {_winner(rows)}" for n, rows in results.items()) + ".",
            "",
        ]
    lines += ["![F-measure per sequence and method](f_measure.png)", ""]
    if run["skipped"]:
        lines += ["## Skipped baselines", ""] + [f"- {m}: {why}" for m, why in run["skipped"].items()] + [""]
    return "\n".join(lines)


def f_measures(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{sequence: {method: F}}`` of a run's ``results.json`` (methods without a score left out): what its chart
    draws."""
    return {s: {m: r["f_measure"] for m, r in rows.items() if r.get("f_measure") is not None}
            for s, rows in results.items()}  # fmt: skip


def write_outputs(out: Path, results: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """Write ``OUTPUT_FILES`` into ``out`` from what has been scored so far; returns ``{"results", "run"}``."""
    from humanseg.plots import bar_chart

    _write_json(out / "results.json", results)
    _write_json(out / "run.json", run)
    if results:
        bar_chart(f_measures(results), out / "f_measure.png", title="F-measure per sequence and method", ylabel="F-measure")
        atomic_write(out / "report.md", report_markdown(results, run))
    return {"results": results, "run": run}


def versions() -> dict[str, str]:
    """Versions of what produced the numbers (humanseg, Python, torch, OpenCV, NumPy, MediaPipe when installed),
    the CPU count and the device."""
    import cv2
    import torch

    from humanseg import __version__
    from humanseg.device import choose_device

    out = {
        "humanseg": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "cpus": str(os.cpu_count()),
        "device": f"cuda ({torch.cuda.get_device_name(0)})" if choose_device().type == "cuda" else "cpu",
    }
    try:
        from importlib.metadata import version

        out["mediapipe"] = version("mediapipe")
    except Exception:  # not installed: leave it out
        pass
    return out


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
