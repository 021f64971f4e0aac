"""humanseg.footage and `python -m humanseg segment FOLDER`: whole folders of synthetic clips, exact summaries,
an interrupted run that --skip-done continues, and a broken clip that the run reports and goes past."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import humanseg.segmenters as segmenters_pkg
from humanseg.cli import main
from humanseg.footage import SUMMARY_HEADER, find_clips, is_footage, segment_folder
from humanseg.segmenters import Segmenter
from humanseg.video import H264Writer, VideoError

H, W = 48, 64


class Red(Segmenter):
    """Foreground = strongly red pixels; counts the frames it segmented and the clips (resets) it started."""

    name = "red"
    stateful = True

    def __init__(self, stop_after: int | None = None) -> None:
        self.frames = 0
        self.resets = 0
        self.stop_after = stop_after

    def reset(self) -> None:
        self.resets += 1

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        if self.stop_after is not None and self.frames == self.stop_after:
            raise KeyboardInterrupt  # the user pressed Ctrl-C half way through a clip
        self.frames += 1
        return (frame[..., 0].astype(int) - frame[..., 2] > 120).astype(np.float32)


def write_clip(path: Path, people: int, frames: int) -> Path:
    """``frames`` frames with ``people`` 8 x 16 red blocks standing apart (even positions: H.264 keeps them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with H264Writer(path, 10.0) as writer:
        for _ in range(frames):
            f = np.full((H, W, 3), (40, 80, 120), np.uint8)
            for k in range(people):
                f[16:32, 4 + 14 * k : 12 + 14 * k] = (250, 30, 30)
            writer.write(f)
    return path


@pytest.fixture
def footage(tmp_path: Path) -> Path:
    """a.mp4 (1 person, 6 frames), b.mp4 (3 people, 4 frames), broken.mp4 (text), sub/c.mp4 (2 people, 5)."""
    root = tmp_path / "footage"
    write_clip(root / "a.mp4", 1, 6)
    write_clip(root / "b.mp4", 3, 4)
    (root / "broken.mp4").write_text("not a video")
    (root / "notes.txt").write_text("not a clip either")
    write_clip(root / "sub" / "c.mp4", 2, 5)
    return root


def summary(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [] or list(rows[0]) == list(SUMMARY_HEADER)
    return rows


def brief(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """The exact columns of summary rows (seconds and ms/frame are timings, checked to be numbers)."""
    for r in rows:
        if r["status"] == "done":
            assert float(r["seconds"]) > 0 and float(r["ms_per_frame"]) >= 0
    return [
        (r["clip"], r["method"], r["status"], r["frames"], r["mean_count"], r["max_count"], r["folder"]) for r in rows
    ]


def test_find_clips_in_folders_and_globs(footage: Path) -> None:
    assert [p.name for p in find_clips([footage])] == ["a.mp4", "b.mp4", "broken.mp4"]
    assert [p.relative_to(footage).as_posix() for p in find_clips([footage], recursive=True)] == [
        "a.mp4", "b.mp4", "broken.mp4", "sub/c.mp4",
    ]  # fmt: skip
    assert [p.name for p in find_clips([str(footage / "[ab].mp4"), footage / "a.mp4"])] == ["a.mp4", "b.mp4"]
    assert [p.name for p in find_clips([str(footage / "**" / "c.mp4")], recursive=True)] == ["c.mp4"]
    assert is_footage(footage) and is_footage(str(footage / "*.mp4")) and not is_footage(footage / "a.mp4")
    assert not is_footage(footage / "sub" / "missing") and is_footage(footage / "sub")
    with pytest.raises(VideoError, match=r"sub: no video files .*; add --recursive to look in its subfolders"):
        find_clips([_only_subfolders(footage)])
    with pytest.raises(VideoError, match=r"nothing\*.mp4: no video files"):
        find_clips([str(footage / "nothing*.mp4")])


def _only_subfolders(footage: Path) -> Path:
    root = footage.parent / "nested" / "sub"
    write_clip(root / "deep" / "d.mp4", 1, 2)
    return root


def test_a_folder_gives_one_folder_per_clip_and_an_exact_summary(footage: Path, tmp_path: Path) -> None:
    red = Red()
    out = tmp_path / "out"
    result = segment_folder(footage, [red], out, recursive=True, stats=True, side_by_side=False)
    assert (result.ran, result.skipped, result.failed) == (4, 0, 1)
    assert red.resets == 3 and red.frames == 6 + 4 + 5  # one segmenter, reset before each readable clip
    assert brief(summary(out / "summary.csv")) == [
        ("a.mp4", "red", "done", "6", "1.000", "1", "a"),
        ("b.mp4", "red", "done", "4", "3.000", "3", "b"),
        ("broken.mp4", "", "error", "", "", "", ""),
        ("sub/c.mp4", "red", "done", "5", "2.000", "2", "sub/c"),
    ]
    assert "broken.mp4: not a readable video" in summary(out / "summary.csv")[2]["error"]
    assert sorted(p.name for p in (out / "b").iterdir()) == sorted(
        ["clip.json", "red_mask.mp4", "red_overlay.mp4", "red_counts.csv", "red_counts.png", "red_occupancy.npy",
         "red_occupancy.png"]
    )  # fmt: skip
    assert (out / "b" / "red_counts.csv").read_text().splitlines()[1:] == [
        "0,0.000,3,384", "1,0.100,3,384", "2,0.200,3,384", "3,0.300,3,384",
    ]  # fmt: skip
    assert not (out / "broken").exists()
    assert not [p for p in out.rglob(".*")]  # no temporary folder left behind


def test_an_interrupted_run_is_continued_by_skip_done(footage: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        segment_folder(footage, [Red(stop_after=6 + 2)], out, side_by_side=False)  # stops in b, its 3rd frame
    assert sorted(p.name for p in out.iterdir()) == ["a", "summary.csv"]  # b's partial folder was removed
    assert brief(summary(out / "summary.csv")) == [("a.mp4", "red", "done", "6", "1.000", "1", "a")]
    done_a = (out / "a" / "red_mask.mp4").stat().st_mtime_ns

    red = Red()
    result = segment_folder(footage, [red], out, skip_done=True, side_by_side=False)
    assert (result.ran, result.skipped, result.failed) == (2, 1, 1)  # b and broken.mp4 run; a is done
    assert red.resets == 1 and red.frames == 4  # only b was segmented (broken.mp4 cannot be opened)
    assert (out / "a" / "red_mask.mp4").stat().st_mtime_ns == done_a  # untouched
    assert brief(summary(out / "summary.csv")) == [
        ("a.mp4", "red", "done", "6", "1.000", "1", "a"),
        ("b.mp4", "red", "done", "4", "3.000", "3", "b"),
        ("broken.mp4", "", "error", "", "", "", ""),
    ]
    # Without --skip-done a clip's folder is replaced by a new complete one.
    segment_folder([footage / "a.mp4", footage / "b.mp4"], [Red()], out, side_by_side=False)
    assert (out / "a" / "red_mask.mp4").stat().st_mtime_ns != done_a
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "summary.csv"]


def test_a_killed_run_leaves_a_partial_folder_that_is_not_done(footage: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / ".a.partial-dead").mkdir(parents=True)  # what a killed process (no cleanup) leaves
    (out / ".a.partial-dead" / "red_mask.mp4").write_bytes(b"half")
    result = segment_folder([footage / "a.mp4"], [Red()], out, skip_done=True, side_by_side=False)
    assert result.ran == 1 and sorted(p.name for p in out.iterdir()) == ["a", "summary.csv"]


def test_links_are_clips_of_their_own_and_a_clip_named_twice_runs_once(footage: Path, tmp_path: Path) -> None:
    (footage / "sub" / "a_link.mp4").symlink_to(footage / "a.mp4")
    clips = find_clips([footage / "sub", footage / "sub" / "c.mp4", str(footage / "sub" / ".." / "sub" / "*.mp4")])
    assert [p.name for p in clips] == ["a_link.mp4", "c.mp4"]
    result = segment_folder(footage / "sub", Red(), tmp_path / "out", side_by_side=False)  # one method, no list
    assert [(r.clip, r.folder, r.max_count) for r in result.rows] == [("a_link.mp4", "a_link", 1), ("c.mp4", "c", 2)]


def test_same_stem_clips_keep_their_suffix(tmp_path: Path) -> None:
    write_clip(tmp_path / "in" / "x.mp4", 1, 2)
    write_clip(tmp_path / "in" / "x.mkv", 2, 2)
    result = segment_folder(tmp_path / "in", [Red()], tmp_path / "out", side_by_side=False)
    assert [(r.clip, r.folder, r.max_count) for r in result.rows] == [("x.mkv", "x_mkv", 2), ("x.mp4", "x_mp4", 1)]


@pytest.fixture
def red_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    real_get_class = segmenters_pkg.get_class
    monkeypatch.setitem(segmenters_pkg.REGISTRY, "stub-red", "tests:Red")
    monkeypatch.setattr(segmenters_pkg, "get_class", lambda name: Red if name == "stub-red" else real_get_class(name))


def test_cli_runs_a_folder_reports_the_broken_clip_and_skips_done(
    footage: Path, tmp_path: Path, red_registry, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = ["segment", str(footage), "-s", "stub-red", "--out", str(out), "--no-side-by-side", "--skip-done"]
    assert main(args) == 1  # a clip failed: the exit status says so, after the others ran
    printed = capsys.readouterr().out
    assert "2 clip(s) segmented, 0 skipped (done by an earlier run), 1 failed" in printed
    assert "failed: broken.mp4: " in printed and f"summary: {out / 'summary.csv'}" in printed
    assert [r["clip"] for r in summary(out / "summary.csv")] == ["a.mp4", "b.mp4", "broken.mp4"]
    (footage / "broken.mp4").unlink()
    assert main(args + ["--recursive", "--stats"]) == 0
    assert "1 clip(s) segmented, 2 skipped" in capsys.readouterr().out
    assert (out / "sub" / "c" / "red_counts.csv").is_file() and not (out / "a" / "red_counts.csv").exists()
    # A quoted glob is a folder run too.
    assert main(["segment", str(footage / "[b]*.mp4"), "-s", "stub-red", "--out", str(tmp_path / "g")]) == 0
    assert [r["clip"] for r in summary(tmp_path / "g" / "summary.csv")] == ["b.mp4"]
    assert (tmp_path / "g" / "b" / "side_by_side.mp4").is_file()


def test_cli_perspective_is_read_at_the_first_clip_that_opens(
    tmp_path: Path, red_registry, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "0bad.mp4").write_text("not a video")
    write_clip(tmp_path / "in" / "a.mp4", 1, 3)
    out = tmp_path / "out"
    # A person is 20 px tall everywhere: 0.18 * 20^2 = 72 px, so each 8 x 16 block (128 px) is 1.78 -> 2 people.
    args = ["segment", str(tmp_path / "in"), "-s", "stub-red", "--perspective", "10:20,40:20", "--out", str(out)]
    assert main(args) == 1
    rows = summary(out / "summary.csv")
    assert [(r["clip"], r["status"], r["mean_count"], r["max_count"]) for r in rows] == [
        ("0bad.mp4", "error", "", ""),
        ("a.mp4", "done", "2.000", "2"),
    ]
    assert "failed: 0bad.mp4" in capsys.readouterr().out
