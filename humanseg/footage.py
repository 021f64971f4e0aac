"""Whole folders of footage: every clip of a folder (or glob) through :func:`humanseg.segment.segment_video`, one
output folder per clip, a summary CSV at the top, and runs that continue where an interrupted one stopped.

Each clip's outputs are written into a hidden temporary folder beside its final one and renamed into place only
when they are complete, so a clip's folder exists exactly when its run finished; ``skip_done`` skips those.
A clip that cannot be read (not a video, truncated, zero frames: a ``VideoError``) gets an ``error`` row in the
summary and the run goes on with the next. The summary is rewritten after every clip, so an interrupted run
leaves one that lists what was done.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from humanseg.files import atomic_write
from humanseg.occupancy import HeightAt
from humanseg.segment import ExtraOutputs, SegmenterLike, SegmentResult, resolve_segmenters, segment_video
from humanseg.video import VIDEO_SUFFIXES, VideoError, open_frames, read_image

if TYPE_CHECKING:
    from tqdm import tqdm

SUMMARY_NAME = "summary.csv"
#: Written last into each clip's folder, before the rename: what the summary row of a done clip says.
RECORD_NAME = "clip.json"
SUMMARY_HEADER = (
    "clip", "method", "status", "frames", "seconds", "ms_per_frame", "mean_count", "max_count", "folder", "error",
)  # fmt: skip
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary: a method on a clip (``status`` ``done``), or a clip that failed (``error``, with
    ``method`` empty and the message). ``clip`` and ``folder`` are relative to the inputs' and outputs' roots."""

    clip: str
    method: str
    status: str
    frames: int | None = None
    seconds: float | None = None
    ms_per_frame: float | None = None
    mean_count: float | None = None
    max_count: int | None = None
    folder: str = ""
    error: str = ""


@dataclass
class FolderResult:
    """What :func:`segment_folder` did: the summary file and its rows, and how many clips were run (failed ones
    included), skipped (done by an earlier run) and failed."""

    out_dir: Path
    summary: Path
    rows: list[SummaryRow]
    ran: int
    skipped: int
    failed: int


def is_footage(source: str | Path, *, recursive: bool = False) -> bool:
    """Whether ``source`` names several clips: a glob pattern, or a folder that holds video files (in its
    subfolders too with ``recursive``). An image folder or a single video is one clip."""
    text = str(source)
    path = Path(text)
    if not path.exists():
        return bool(_GLOB_CHARS & set(text))
    if not path.is_dir():
        return False
    return any(_is_clip(p) for p in (path.rglob("*") if recursive else path.iterdir()))


def _is_clip(path: Path) -> bool:
    # Hidden files are skipped: editors' and our own temporary files start with a dot.
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


def find_clips(sources: Iterable[str | Path], *, recursive: bool = False) -> list[Path]:
    """The video files of ``sources`` (files, folders, glob patterns), sorted, each once. ``recursive``: folders'
    subfolders too, and ``**`` in patterns. Raises ``VideoError`` for a source that names no video file."""
    import glob

    found: list[Path] = []
    for source in sources:
        text = str(source)
        path = Path(text)
        if path.is_dir():
            clips = [p for p in (path.rglob("*") if recursive else path.iterdir()) if _is_clip(p)]
            hint = "" if recursive else "; add --recursive to look in its subfolders"
        elif path.is_file():
            clips = [path]
            hint = ""
        else:
            clips = [Path(p) for p in glob.glob(text, recursive=recursive) if _is_clip(Path(p))]
            hint = "" if _GLOB_CHARS & set(text) else " (no such file or folder)"
        if not clips:
            raise VideoError(f"{text}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))}){hint}")
        found += clips
    return sorted({os.path.abspath(p): p for p in found}.values())  # a clip named twice runs once


def _folder_names(clips: Sequence[Path]) -> tuple[Path, list[Path]]:
    """(root, each clip's output folder relative to the output root): the clip's path under the clips' common
    folder, without its suffix; with the suffix kept (``a_mp4``) where two clips would share a folder."""
    resolved = [Path(os.path.abspath(c)) for c in clips]  # links keep their own names
    root = Path(os.path.commonpath([c.parent for c in resolved]))
    plain = [c.relative_to(root).with_suffix("") for c in resolved]
    clashes = {p for p in plain if plain.count(p) > 1}
    names = [
        p.with_name(f"{p.name}_{c.suffix.lstrip('.').lower()}") if p in clashes else p
        for p, c in zip(plain, resolved, strict=True)
    ]
    return root, names


def _frames_to_run(clip: Path, step: int, max_frames: int | None) -> int:
    """Frames a clip will yield, for the progress bar's total (0 when unknown or unreadable: the run says why)."""
    try:
        with open_frames(clip, step=step, max_frames=max_frames) as reader:
            return reader.frame_count or 0
    except VideoError:
        return 0


def summary_csv_text(rows: Sequence[SummaryRow]) -> str:
    """The summary as CSV text (header :data:`SUMMARY_HEADER`; empty cells where a value does not apply)."""

    def cell(value: object) -> object:
        if value is None:
            return ""
        return f"{value:.3f}" if isinstance(value, float) else value

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_HEADER)
    for row in rows:
        writer.writerow([cell(getattr(row, key)) for key in SUMMARY_HEADER])
    return buffer.getvalue()


def _read_record(folder: Path) -> list[SummaryRow] | None:
    """The rows a finished clip folder recorded, or None when it has no readable record."""
    try:
        data = json.loads((folder / RECORD_NAME).read_text())
        return [SummaryRow(**row) for row in data["rows"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _replace_folder(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` folder to ``final``; an earlier ``final`` is moved aside first and removed after
    (a folder cannot be renamed over a non-empty one), so ``final`` is always a complete run."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale(final: Path) -> None:
    """Temporary folders of this clip that an interrupted (killed) run left behind."""
    if final.parent.is_dir():
        for stale in final.parent.glob(f".{final.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)


def segment_folder(
    sources: str | Path | Iterable[str | Path],
    segmenters: str | SegmenterLike | Sequence[str | SegmenterLike],
    out_dir: str | Path,
    *,
    recursive: bool = False,
    skip_done: bool = False,
    plate: str | Path | np.ndarray | None = None,
    checkpoint: str | Path | None = None,
    max_frames: int | None = None,
    step: int = 1,
    save_pngs: bool = False,
    side_by_side: bool = True,
    stats: bool = False,
    anonymise: str | None = None,
    margin_px: int | None = None,
    height_at: HeightAt | None = None,
    progress: bool = False,
    masks_only: bool = False,
) -> FolderResult:
    """Segment every clip of ``sources`` (folders, glob patterns or files; see :func:`find_clips`) into
    ``out_dir/<clip>/`` as :func:`humanseg.segment.segment_video` does, and write ``out_dir/summary.csv``: one
    row per clip and method (frames, seconds, mean ms/frame, mean and max people per frame), one ``error`` row
    per clip that could not be read.

    ``skip_done``: clips whose folder exists (a finished run: folders are renamed into place when complete) are
    not run again; their rows come from the ``clip.json`` in their folder. Without it a clip's earlier folder is
    replaced. Segmenters are built once and reset before each clip. ``stats``, ``anonymise``, ``margin_px``,
    ``height_at``: as :class:`humanseg.segment.ExtraOutputs` (people are always counted, for the summary).
    ``progress``: one tqdm bar over the frames of all clips still to run; ``masks_only`` as
    :func:`humanseg.segment.segment_video`.
    """
    from humanseg.progress import bar

    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    methods = [segmenters] if isinstance(segmenters, str) or hasattr(segmenters, "segment") else list(segmenters)
    clips = find_clips(items, recursive=recursive)
    out = Path(out_dir)
    out_resolved = Path(os.path.abspath(out))
    clips = [c for c in clips if not Path(os.path.abspath(c)).is_relative_to(out_resolved)]  # not our own outputs
    if not clips:
        raise VideoError(f"{', '.join(map(str, items))}: the only video files found are under the output folder {out}")
    root, folders = _folder_names(clips)
    extras = ExtraOutputs(anonymise=anonymise, margin_px=margin_px, stats=stats, counts=True, height_at=height_at)
    plate_arr = read_image(plate) if isinstance(plate, (str, Path)) else plate
    out.mkdir(parents=True, exist_ok=True)
    rows_of: dict[int, list[SummaryRow]] = {}  # clip index -> its summary rows
    if skip_done:
        for i, folder in enumerate(folders):
            if (recorded := _read_record(out / folder)) is not None:
                rows_of[i] = recorded
    todo = [i for i in range(len(clips)) if i not in rows_of]
    total = sum(_frames_to_run(clips[i], step, max_frames) for i in todo)
    summary = out / SUMMARY_NAME
    failed = 0
    segs = resolve_segmenters(
        methods, plate=plate_arr, checkpoint=checkpoint, plate_used_elsewhere=anonymise == "erase"
    )
    run = functools.partial(
        segment_video, segmenters=segs, plate=plate_arr, max_frames=max_frames, step=step, save_pngs=save_pngs,
        side_by_side=side_by_side, extras=extras, masks_only=masks_only,
    )  # fmt: skip
    try:
        with bar(total=total or None, desc="segment", unit="frame", enabled=progress) as shown:
            for n, i in enumerate(todo, start=1):
                clip, folder = clips[i], folders[i]
                name = Path(os.path.abspath(clip)).relative_to(root).as_posix()
                shown.set_postfix_str(f"clip {n}/{len(todo)} {name}", refresh=False)
                rows_of[i] = _run_clip(run, clip, name, out, folder, shown)
                failed += rows_of[i][0].status == "error"
                atomic_write(summary, summary_csv_text([r for k in sorted(rows_of) for r in rows_of[k]]))
    finally:
        for seg, given in zip(segs, methods, strict=True):
            if isinstance(given, str) and hasattr(seg, "close"):
                seg.close()  # built here from a name; instances the caller passed stay open
    rows = [r for k in sorted(rows_of) for r in rows_of[k]]
    atomic_write(summary, summary_csv_text(rows))
    return FolderResult(out, summary, rows, ran=len(todo), skipped=len(clips) - len(todo), failed=failed)


def _run_clip(
    run: Callable[..., SegmentResult], clip: Path, name: str, out: Path, folder: Path, shown: tqdm
) -> list[SummaryRow]:
    """Segment one clip (``run``: segment_video with the run's options) into a temporary folder, record its rows
    in it and rename it to ``out/folder``; a clip that cannot be read gives one ``error`` row (and no folder)."""
    final = out / folder
    _remove_stale(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")
    done_before = shown.n

    def update(done: int, _total: int | None) -> None:
        shown.update(done_before + done - shown.n)

    t0 = time.perf_counter()
    try:
        result = run(clip, out_dir=tmp, progress=update)
        rows = [
            SummaryRow(
                clip=name,
                method=m.name,
                status="done",
                frames=result.frames,
                seconds=round(result.seconds, 3),
                ms_per_frame=round(m.ms_per_frame, 3),
                mean_count=round(m.mean_count or 0.0, 3),
                max_count=m.max_count,
                folder=folder.as_posix(),
            )  # fmt: skip
            for m in result.methods.values()
        ]
        atomic_write(tmp / RECORD_NAME, json.dumps({"clip": str(clip), "rows": [asdict(r) for r in rows]}, indent=1))
        _replace_folder(tmp, final)
        return rows
    except VideoError as err:
        seconds = round(time.perf_counter() - t0, 3)
        return [SummaryRow(clip=name, method="", status="error", seconds=seconds, error=str(err))]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
