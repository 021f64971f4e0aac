"""humanseg.workspace: site folders, safe handling of uploads (zips, names), clip + masks -> sequence."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from humanseg import workspace as ws
from humanseg.video import H264Writer, load_sequence, open_frames, read_label


def write_clip(path: Path, frames: int, size=(48, 64)) -> list[np.ndarray]:
    """An mp4 whose frame i is flat grey 10 * i (so frames can be told apart after H.264)."""
    out = [np.full((*size, 3), 10 * i + 20, np.uint8) for i in range(frames)]
    with H264Writer(path, fps=10) as w:
        for f in out:
            w.write(f)
    return out


def write_masks(folder: Path, numbers: list[int], size=(48, 64), pattern: str = "gt{:06d}.png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        m = np.zeros(size, np.uint8)
        m[: n + 1, :5] = 255  # n + 1 rows: tells which mask went where
        Image.fromarray(m).save(folder / pattern.format(n))


def test_resolve_workspace_order(tmp_path, monkeypatch):
    monkeypatch.setenv(ws.ENV_VAR, str(tmp_path / "from-env"))
    assert ws.resolve_workspace() == (tmp_path / "from-env").resolve()
    assert ws.resolve_workspace(tmp_path / "given") == (tmp_path / "given").resolve()
    assert (tmp_path / "given").is_dir()
    assert ws.resolve_workspace(tmp_path / "lazy", create=False) == (tmp_path / "lazy").resolve()
    assert not (tmp_path / "lazy").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        ws.resolve_workspace(tmp_path / "file")


@pytest.mark.parametrize("bad", ["", "a b", "../x", ".hidden", "x/y", "-dash", "a" * 65])
def test_bad_names_are_refused(bad):
    with pytest.raises(ValueError, match="not allowed"):
        ws.check_name(bad)


def test_sites_and_their_contents(tmp_path):
    site = ws.open_site(tmp_path, "cam-1", create=True)
    with pytest.raises(FileNotFoundError, match="sites: cam-1"):
        ws.open_site(tmp_path, "other")
    (tmp_path / ".examples").mkdir()  # app-internal folders are not sites
    assert ws.list_sites(tmp_path) == ["cam-1"]
    for run, files in {"a": ["best.pt", "last.pt"], "b": ["last.pt"], "c": []}.items():
        (site.runs_dir / run).mkdir(parents=True)
        for f in files:
            (site.runs_dir / run / f).write_bytes(b"x")
    assert [p.relative_to(site.runs_dir).as_posix() for p in site.checkpoints()] == ["a/best.pt", "b/last.pt"]
    (site.datasets_dir / "done").mkdir(parents=True)
    (site.datasets_dir / "done" / "manifest.json").write_text("{}")
    (site.datasets_dir / "half-built").mkdir()
    assert [d.name for d in site.datasets()] == ["done"]
    extra = tmp_path / "extra.pt"
    extra.write_bytes(b"x")
    assert ws.find_checkpoints(tmp_path, [extra])[-1] == extra


def test_store_file_never_overwrites(tmp_path):
    src = tmp_path / "My Clip (1).MP4"
    src.write_bytes(b"abc")
    first = ws.store_file(src, tmp_path / "in")
    second = ws.store_file(src, tmp_path / "in")
    assert (first.name, second.name) == ("My_Clip_1.mp4", "My_Clip_1_2.mp4")
    assert ws.store_file(src, tmp_path / "in", overwrite=True) == first


def test_extract_zip_refuses_tricks_and_empty_archives(tmp_path):
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(ValueError, match="empty zip"):
        ws.extract_zip(empty, tmp_path / "out")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("ok.png", b"x")
        zf.writestr("../../escape.txt", b"x")
    with pytest.raises(ValueError, match="outside the archive"):
        ws.extract_zip(evil, tmp_path / "out2")
    assert not (tmp_path / "out2").exists() and not (tmp_path / "escape.txt").exists()
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a zip archive"):
        ws.extract_zip(text, tmp_path / "out3")
    ok = tmp_path / "ok.zip"
    with zipfile.ZipFile(ok, "w") as zf:
        zf.writestr("seq/groundtruth/gt000001.png", b"x")
        zf.writestr("__MACOSX/seq/._gt000001.png", b"x")
    out = ws.extract_zip(ok, tmp_path / "out4")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "seq/groundtruth/gt000001.png"
    ]


def test_clip_to_sequence_pairs_masks_with_frames_cdnet_numbering(tmp_path):
    frames = write_clip(tmp_path / "clip.mp4", 6)
    write_masks(tmp_path / "wrapped" / "groundtruth", [2, 4, 9])  # 9 is beyond the clip: left out
    labels = ws.label_folder(tmp_path / "wrapped")
    seq_dir = ws.clip_to_sequence(tmp_path / "clip.mp4", labels, tmp_path / "seq")
    seq = load_sequence(seq_dir)
    assert [it.number for it in seq.items] == [1, 2, 3, 4, 5, 6]  # CDnet counts frames from 1
    assert [it.number for it in seq.scored_items()] == [2, 4]
    # Mask gt000002 belongs to the 2nd frame (grey 30), and keeps its own rows.
    item = seq.items[1]
    frame, label = seq.read(item)
    assert abs(int(frame.mean()) - int(frames[1].mean())) <= 2
    assert (label[:, :5] == 255).sum(axis=0)[0] == 3


def test_clip_to_sequence_davis_numbering_and_errors(tmp_path):
    write_clip(tmp_path / "clip.mp4", 4)
    write_masks(tmp_path / "Annotations", [0, 1], pattern="{:05d}.png")
    seq = load_sequence(ws.clip_to_sequence(tmp_path / "clip.mp4", tmp_path / "Annotations", tmp_path / "seq"))
    assert [it.number for it in seq.scored_items()] == [0, 1]  # numbered from 0 like DAVIS
    assert read_label(seq.scored_items()[1].label)[:2, 0].tolist() == [255, 255]
    write_masks(tmp_path / "far", [50, 60])
    with pytest.raises(ValueError, match="none of the 2 masks"):
        ws.clip_to_sequence(tmp_path / "clip.mp4", tmp_path / "far", tmp_path / "seq2")
    write_masks(tmp_path / "big", [1], size=(20, 20))
    with pytest.raises(ValueError, match="must be the clip's size"):
        ws.clip_to_sequence(tmp_path / "clip.mp4", tmp_path / "big", tmp_path / "seq3")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no numbered mask images"):
        ws.label_folder(tmp_path / "nothing")


def test_import_sequence_zip(tmp_path):
    seq = tmp_path / "src" / "clipA"
    write_masks(seq / "groundtruth", [1, 2])
    write_masks(seq / "input", [1, 2], pattern="in{:06d}.png")
    z = tmp_path / "clipA.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in seq.rglob("*.png"):
            zf.write(p, p.relative_to(seq.parent).as_posix())  # wrapped in a top folder, as zips often are
    out = ws.import_sequence_zip(z, tmp_path / "validation", "clipA")
    assert out == tmp_path / "validation" / "clipA"
    assert len(load_sequence(out).scored_items()) == 2
    assert [p.name for p in (tmp_path / "validation").iterdir()] == ["clipA"]  # no leftovers
    frames_only = tmp_path / "frames.zip"
    with zipfile.ZipFile(frames_only, "w") as zf:
        zf.write(seq / "input" / "in000001.png", "input/in000001.png")
    with pytest.raises(ValueError, match="no masks"):
        ws.import_sequence_zip(frames_only, tmp_path / "validation", "frames")


def test_cut_clip_writes_h264_once(tmp_path):
    write_clip(tmp_path / "long.mp4", 12)
    cut = ws.cut_clip(tmp_path / "long.mp4", tmp_path / "ex" / "short.mp4", max_frames=5)
    with open_frames(cut) as reader:
        assert sum(1 for _ in reader) == 5
    stamp = cut.stat().st_mtime_ns
    assert ws.cut_clip(tmp_path / "long.mp4", cut, max_frames=5).stat().st_mtime_ns == stamp
    assert [p.name for p in cut.parent.iterdir()] == ["short.mp4"]
