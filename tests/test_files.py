"""Atomic writes: the target holds the old or the new content, never a partial file, and no temp files stay."""

from __future__ import annotations

import pytest

from humanseg.files import atomic_path, atomic_write


def test_atomic_write_replaces_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "history.json"
    assert atomic_write(target, "[1]") == target
    atomic_write(target, b"[1, 2]", fsync=True)
    assert target.read_text() == "[1, 2]"
    assert [p.name for p in target.parent.iterdir()] == ["history.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "curves.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer crashed"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_temp_name_keeps_the_extension(tmp_path):
    # Writers such as cv2.imwrite and video muxers choose the format from the extension.
    with atomic_path(tmp_path / "clip.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path and tmp.name.startswith(".")
        tmp.write_bytes(b"data")
    assert (tmp_path / "clip.mp4").read_bytes() == b"data"
