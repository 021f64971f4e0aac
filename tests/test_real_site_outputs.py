"""The camera-site outputs once on the real example site: OpenCV's vtest.avi (PETS 2009 campus, 768x576, people
walking). `bash scripts/fetch_vtest.sh` puts it in examples/data/; without it these tests skip."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from humanseg.footage import segment_folder
from humanseg.segment import ExtraOutputs, segment_video
from humanseg.video import open_frames, probe_video

VTEST = Path(__file__).resolve().parents[1] / "examples" / "data" / "vtest.avi"


@pytest.fixture
def vtest() -> Path:
    if not VTEST.is_file():
        pytest.skip(f"example clip not present: {VTEST} (run `bash scripts/fetch_vtest.sh`)")
    return VTEST


def test_vtest_counts_heatmap_and_erased_video(vtest: Path, tmp_path: Path) -> None:
    extras = ExtraOutputs(anonymise="erase", stats=True)
    result = segment_video(vtest, ["plate-diff"], tmp_path, max_frames=60, side_by_side=False, extras=extras)
    method = result.methods["plate-diff"]
    with open(method.stats.counts_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["frame"]) for r in rows] == list(range(60))
    counts = [int(r["count"]) for r in rows]
    # Two to seven people walk through the first 60 frames; the running-median plate needs a few frames to form.
    assert 2 <= method.max_count <= 9 and max(counts[20:]) >= 2 and method.mean_count > 1
    heat = np.load(method.stats.heatmap_npy)
    assert heat.shape == (576, 768) and 0 < heat.max() <= 1 and (heat > 0).mean() < 0.25
    info = probe_video(method.anonymised_video)
    assert (info["codec"], info["width"], info["height"], info["frames"]) == ("h264", 768, 576, 60)
    # The erased video replaces the people of a frame by the scene behind them, and keeps the rest of the frame.
    last_in = list(open_frames(vtest, max_frames=60))[-1].astype(int)
    last_out = list(open_frames(method.anonymised_video))[-1].astype(int)
    mask = list(open_frames(method.mask_video))[-1][..., 0] > 127
    grown = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    for dy in (-30, 0, 30):  # far beyond any margin (10% of a person's height)
        for dx in (-30, 0, 30):
            grown[np.clip(ys + dy, 0, 575), np.clip(xs + dx, 0, 767)] = True
    assert mask.sum() > 500 and np.abs(last_out[mask] - last_in[mask]).mean() > 8  # people replaced
    assert np.abs(last_out[~grown] - last_in[~grown]).mean() < 4  # elsewhere the frame itself (codec noise)


def test_vtest_as_a_folder_of_footage(vtest: Path, tmp_path: Path) -> None:
    footage = tmp_path / "footage"
    footage.mkdir()
    (footage / "cam1.avi").symlink_to(vtest)
    first = segment_folder(footage, ["mog2"], tmp_path / "out", max_frames=20, side_by_side=False, skip_done=True)
    again = segment_folder(footage, "mog2", tmp_path / "out", max_frames=20, side_by_side=False, skip_done=True)
    assert (first.ran, again.ran, again.skipped) == (1, 0, 1)
    assert [(r.clip, r.method, r.status, r.frames) for r in again.rows] == [("cam1.avi", "mog2", "done", 20)]
    assert again.rows == first.rows  # the summary of a skipped clip is the one its run recorded
