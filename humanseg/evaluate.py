"""Run a segmenter over a labelled sequence (CDnet/SBI or DAVIS layout) and score it with the CDnet protocol.

Protocol (the counting rules live in :mod:`humanseg.metrics`):

- the segmenter is reset, then sees EVERY input frame of the sequence in frame-number order, scored or not,
  because background subtractors learn from the frames before the scored ones;
- a pixel is "person" when the segmenter's probability is > ``threshold`` (as ``humanseg.video.mask_to_u8``);
- only scored frames (``Sequence.scored_items``: labelled and inside ``temporalROI.txt``) are counted, and in
  them only pixels labelled 0/50/255 inside ``ROI.bmp``; TP/FP/FN/TN are summed over those frames and the
  metrics are computed once from the sums;
- ``boundary_f`` is the mean over scored frames of the DAVIS boundary F (unscored pixels are void);
- ``flicker`` is :class:`humanseg.metrics.FlickerMeter` over the binary masks of every frame from the first to
  the last scored frame number (warm-up frames before it are left out: subtractors are still learning there);
- ``ms_per_frame`` times the ``segment`` calls only (not file decoding, scoring or model loading), averaged over
  every frame run;
- the result keeps each scored frame's confusion counts, so a subset of frames (e.g. those where a person
  stands still, :func:`still_frames`) is scored by pooling them, without reading masks back from disk.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from humanseg import metrics
from humanseg.progress import bar
from humanseg.segmenters import Segmenter, accepted_options, create_segmenter
from humanseg.video import Sequence as LabelledSequence
from humanseg.video import SequenceItem, load_sequence, read_image, read_label

#: Frame rate assumed for image-folder sequences (they carry none) when locating the frame seconds earlier.
DEFAULT_FPS = 25.0
#: A person "stands still" at frame t when the GT foreground IoU with the frame STILL_SECONDS earlier >= STILL_IOU.
STILL_SECONDS = 2.0
STILL_IOU = 0.8

# The keys every result row has, in the order JSON output and tables use.
RESULT_KEYS = (
    "sequence", "segmenter", "frames", "tp", "fp", "fn", "tn",
    "precision", "recall", "specificity", "fpr", "fnr", "pwc", "f_measure", "iou",
    "boundary_f", "flicker", "ms_per_frame",
)  # fmt: skip


def still_frames(
    seq_dir: str | Path,
    items: Sequence[SequenceItem] | None = None,
    *,
    fps: float = DEFAULT_FPS,
    seconds: float = STILL_SECONDS,
    min_iou: float = STILL_IOU,
) -> list[int]:
    """Frame numbers (among ``items``, default the scored frames) where a person has not moved for ``seconds``.

    Frame t qualifies when its ground-truth foreground (label 255, inside the ROI) is not empty and its IoU with
    the foreground of the reference frame is >= ``min_iou``. The reference is the frame of ``items`` whose number
    is nearest to t - seconds x fps, accepted only if it lies within half the typical spacing of the labelled
    frames (at least 1 frame) from that target, so subsampled sequences work and short clips simply have none.
    """
    seq = load_sequence(seq_dir)
    items = list(seq.scored_items() if items is None else items)
    if len(items) < 2:
        return []
    numbers = np.array([it.number for it in items])
    lag = seconds * fps
    spacing = float(np.median(np.diff(numbers)))
    tolerance = max(1.0, spacing / 2)
    cache: dict[int, np.ndarray] = {}

    def foreground(i: int) -> np.ndarray:
        if i not in cache:
            fg = read_label(items[i].label) == metrics.POSITIVE
            cache[i] = fg & seq.roi if seq.roi is not None else fg
        return cache[i]

    still = []
    for i, item in enumerate(items):
        target = item.number - lag
        j = int(np.argmin(np.abs(numbers - target)))
        if abs(numbers[j] - target) > tolerance or numbers[j] >= item.number:
            continue
        now, before = foreground(i), foreground(j)
        if not now.any():
            continue
        union = np.count_nonzero(now | before)
        if np.count_nonzero(now & before) / union >= min_iou:
            still.append(item.number)
    return still


class SequenceResult(dict):
    """The result row of :func:`evaluate_sequence` (a plain JSON-ready dict) and what it was summed from.

    ``frames``: ``(frame number, metrics.Confusion)`` per scored frame, in frame order, so callers pool any
    subset of frames without re-reading masks; ``masks``: the binary masks asked for with ``keep_masks``.
    """

    def __init__(
        self,
        row: dict[str, Any],
        frames: list[tuple[int, metrics.Confusion]],
        masks: dict[int, np.ndarray],
    ) -> None:
        super().__init__(row)
        self.frames = frames
        self.masks = masks

    def pooled(self, numbers: Iterable[int]) -> metrics.Confusion:
        """The confusion counts summed over the scored frames whose number is in ``numbers``."""
        keep = set(numbers)
        return sum((c for n, c in self.frames if n in keep), metrics.Confusion())


def resolve_skip_first(seq: LabelledSequence, skip_first: bool | None) -> bool:
    """Whether to drop the first scored frame of ``seq``.

    ``True``/``False`` are used as given. ``None`` (automatic) is True only for a CDnet-layout folder whose first
    scored frame is numbered 0: CDnet numbers its frames from 1, so a frame 0 there comes from the SBI sequences
    (masks by Wang et al.), whose frame-0 mask is unreliable (see the data README). DAVIS clips also start at 0
    but their first mask is good, so they are never skipped automatically.
    """
    if skip_first is not None:
        return bool(skip_first)
    scored = seq.scored_items()
    return seq.layout == "cdnet" and bool(scored) and scored[0].number == 0


def frames_to_score(
    seq_dir: str | Path, skip_first: bool | None = None, threshold: float = 0.5
) -> tuple[LabelledSequence, bool, list[SequenceItem]]:
    """The sequence at ``seq_dir``, whether its first scored frame is dropped (:func:`resolve_skip_first`) and
    the frames to score, in order. Raises ``ValueError`` for a ``threshold`` outside [0, 1) or when no frame is
    left to score (naming the labelled frames and the temporal ROI)."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError(
            f"threshold must be in [0, 1) (a pixel is person when probability > threshold), got {threshold}"
        )
    seq = load_sequence(seq_dir)
    skip = resolve_skip_first(seq, skip_first)
    scored = seq.scored_items(skip_first=skip)
    if not scored:
        raise ValueError(
            f"{seq.root}: no frame to score (labelled frames: {sum(it.label is not None for it in seq.items)}, "
            f"temporal ROI: {seq.temporal_roi}); check groundtruth/ and temporalROI.txt"
        )
    return seq, skip, scored


def _describe_plate(plate: Any) -> str | None:
    if plate is None:
        return None
    if isinstance(plate, (str, Path)):
        return str(plate)
    return f"array {tuple(np.shape(plate))}"


def evaluate_sequence(
    seq_dir: str | Path,
    segmenter: str | Segmenter,
    *,
    plate: Any = None,
    checkpoint: str | Path | None = None,
    model_path: str | Path | None = None,
    skip_first: bool | None = None,
    save_masks: str | Path | None = None,
    threshold: float = 0.5,
    boundary_tolerance: float = metrics.DAVIS_BOUNDARY_TOLERANCE,
    keep_masks: Iterable[int] = (),
    progress: bool = False,
) -> SequenceResult:
    """Run ``segmenter`` over the sequence at ``seq_dir`` and score it (protocol in the module docstring).

    ``segmenter``: a registry name (built with ``create_segmenter``, passing ``plate``/``checkpoint``/
    ``model_path`` only when given, and closed afterwards) or a ``Segmenter`` instance (reset here, left open).
    A sequence's ``empty_bg*.jpg`` is never used on its own: pass it as ``plate`` to use it.
    ``skip_first``: drop the first scored frame; None = automatic (see :func:`resolve_skip_first`).
    ``save_masks``: a folder that receives one 0/255 PNG per scored frame, named like its ground-truth file.
    ``keep_masks``: numbers of scored frames whose binary masks the result keeps in memory (``masks``).
    ``progress``: a bar over the frames on stderr (:func:`humanseg.progress.bar`).

    Returns a :class:`SequenceResult`: a dict with the keys of ``RESULT_KEYS`` (``segmenter`` = the segmenter's
    ``label``; ``frames`` = scored frames; counts in pixels; ``pwc`` in percent; ``flicker`` None when no still
    pixel was seen) plus ``frames_run``, ``first_frame``, ``last_frame``, ``skip_first``, ``threshold``,
    ``plate`` and ``path``; its ``frames`` attribute holds each scored frame's confusion counts.
    """
    seq, skip, scored = frames_to_score(seq_dir, skip_first, threshold)
    scored_numbers = {it.number for it in scored}
    first, last = scored[0].number, scored[-1].number

    mask_dir = Path(save_masks) if save_masks is not None else None
    if mask_dir is not None:
        mask_dir.mkdir(parents=True, exist_ok=True)

    options = {"plate": plate, "checkpoint": checkpoint, "model_path": model_path}
    if isinstance(segmenter, Segmenter):
        given = [k for k, v in options.items() if v is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} can only be given with a segmenter name; the instance {segmenter!r} "
                "is already built: pass them to create_segmenter instead"
            )
    elif not isinstance(segmenter, str):
        raise ValueError(f"segmenter must be a registry name or a Segmenter instance, got {type(segmenter).__name__}")
    owned = isinstance(segmenter, str)

    scorer = metrics.SequenceScorer(first, last, seq.roi, boundary_tolerance)
    keep = set(keep_masks)
    masks: dict[int, np.ndarray] = {}
    seconds = 0.0
    seg = create_segmenter(segmenter, **options) if owned else segmenter
    frames = bar(seq.items, desc=f"{seq.name} {seg.label}", unit="frame", enabled=progress, leave=False)
    try:
        seg.reset()
        for item in frames:
            is_scored = item.number in scored_numbers
            # Unscored frames still go through the segmenter; only their image is read.
            frame, label = seq.read(item) if is_scored else (read_image(item.image), None)
            t0 = time.perf_counter()
            prob = seg.segment(frame)
            seconds += time.perf_counter() - t0
            pred = prob > threshold
            scorer.update(item.number, frame, pred, label)
            if is_scored and item.number in keep:
                masks[item.number] = pred
            if is_scored and mask_dir is not None:
                out = mask_dir / Path(item.label.name).with_suffix(".png")
                Image.fromarray(pred.astype(np.uint8) * 255, mode="L").save(out)
    finally:
        frames.close()
        if owned:
            seg.close()

    result: dict[str, Any] = {
        "sequence": seq.name,
        "segmenter": seg.label,
        "frames": len(scored),
        **scorer.result(),
        "ms_per_frame": 1000.0 * seconds / len(seq.items),
        "frames_run": len(seq.items),
        "first_frame": first,
        "last_frame": last,
        "skip_first": skip,
        "threshold": threshold,
        "plate": _describe_plate(plate),
        "path": str(seq.root),
    }
    ordered = {k: result[k] for k in RESULT_KEYS} | {k: v for k, v in result.items() if k not in RESULT_KEYS}
    return SequenceResult(ordered, frames=scorer.frames, masks=masks)


def evaluate_many(
    seq_dirs: Iterable[str | Path],
    segmenter_names: Iterable[str],
    *,
    plate: Any = None,
    checkpoint: str | Path | None = None,
    model_path: str | Path | None = None,
    skip_first: bool | None = None,
    save_masks: str | Path | None = None,
    threshold: float = 0.5,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Evaluate every segmenter on every sequence; one result dict per (sequence, segmenter), sequences outer.

    Each segmenter is built once and reset before each sequence. ``plate``, ``checkpoint`` and ``model_path``
    go to the segmenters whose constructor takes them; one that none of them takes is an error. A plate is one
    camera's empty scene, so ``plate`` needs exactly one sequence. ``save_masks``: masks go to
    ``save_masks/<sequence>/<segmenter>/``.
    """
    seq_dirs = [Path(d) for d in seq_dirs]
    names = list(dict.fromkeys(segmenter_names))
    if not seq_dirs:
        raise ValueError("no sequence folder given")
    if not names:
        raise ValueError("no segmenter name given")
    if plate is not None and len(seq_dirs) > 1:
        raise ValueError(
            f"a plate is the empty scene of one camera but {len(seq_dirs)} sequences were given; "
            "evaluate one sequence at a time with a plate"
        )
    options = {"plate": plate, "checkpoint": checkpoint, "model_path": model_path}
    per_name: dict[str, dict[str, Any]] = {}
    for name in names:
        takes = accepted_options(name)  # also rejects unknown names, listing the valid ones
        per_name[name] = {k: v for k, v in options.items() if v is not None and k in takes}
    for key, value in options.items():
        if value is not None and not any(key in opts for opts in per_name.values()):
            raise ValueError(f"none of the segmenters {', '.join(names)} takes option {key!r}; drop it")

    built: dict[str, Segmenter] = {}
    rows: list[dict[str, Any]] = []
    try:
        for seq_dir in seq_dirs:
            for name in names:
                if name not in built:
                    built[name] = create_segmenter(name, **per_name[name])
                masks = Path(save_masks) / seq_dir.name / name if save_masks is not None else None
                row = evaluate_sequence(
                    seq_dir, built[name], skip_first=skip_first, save_masks=masks, threshold=threshold,
                    progress=progress,
                )  # fmt: skip
                row["plate"] = _describe_plate(per_name[name].get("plate"))
                rows.append(row)
    finally:
        for seg in built.values():
            seg.close()
    return rows


_TABLE_COLUMNS = (
    ("frames", "frames", "{:d}"),
    ("f_measure", "F-measure", "{:.3f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("iou", "IoU", "{:.3f}"),
    ("boundary_f", "boundary F", "{:.3f}"),
    ("pwc", "PWC %", "{:.2f}"),
    ("flicker", "flicker", "{:.4f}"),
    ("ms_per_frame", "ms/frame", "{:.1f}"),
)


def format_cell(value: Any, fmt: str) -> str:
    """A table cell: ``value`` formatted with ``fmt``, or ``-`` for a missing or non-finite value."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return fmt.format(int(value) if fmt == "{:d}" else value)


def mean_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per segmenter with the mean of each metric over its sequences (``sequence`` = "mean",
    ``frames`` = the sum); metrics that are None in some rows are averaged over the others."""
    out = []
    for name in dict.fromkeys(r["segmenter"] for r in rows):
        mine = [r for r in rows if r["segmenter"] == name]
        row: dict[str, Any] = {"sequence": "mean", "segmenter": name, "frames": sum(r["frames"] for r in mine)}
        for key, _, _ in _TABLE_COLUMNS[1:]:
            vals = [r[key] for r in mine if r.get(key) is not None]
            row[key] = float(np.mean(vals)) if vals else None
        out.append(row)
    return out


def results_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table, one line per (sequence, segmenter), then a mean line per segmenter when there are
    several sequences (the mean of the per-sequence metrics, as CDnet averages over videos)."""
    if not rows:
        raise ValueError("no results to tabulate")
    header = ["sequence", "segmenter"] + [title for _, title, _ in _TABLE_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(_TABLE_COLUMNS)) + "|"]
    means = mean_rows(rows) if len({r["sequence"] for r in rows}) > 1 else []
    for r, name in [(r, r["sequence"]) for r in rows] + [(r, "**mean**") for r in means]:
        cells = [name, r["segmenter"]] + [format_cell(r.get(key), fmt) for key, _, fmt in _TABLE_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def f_measure_chart(rows: Sequence[dict[str, Any]], path: str | Path, metric: str = "f_measure") -> Path:
    """Grouped bar chart of ``metric`` per sequence and segmenter, with a mean group; returns the PNG path."""
    from humanseg.plots import bar_chart

    values: dict[str, dict[str, float]] = {}
    for r in rows:
        values.setdefault(r["sequence"], {})[r["segmenter"]] = r[metric]
    title = {"f_measure": "F-measure"}.get(metric, metric)
    return bar_chart(values, path, title=f"{title} per sequence and method", ylabel=title)
