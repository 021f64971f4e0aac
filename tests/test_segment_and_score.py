"""segment.segment_and_score: one pass that writes the videos and scores, with the numbers evaluate_sequence gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _synthetic_site import Person, background, write_clip
from PIL import Image

from humanseg.evaluate import RESULT_KEYS, evaluate_sequence
from humanseg.segment import segment_and_score
from humanseg.segmenters import Segmenter, create_segmenter
from humanseg.video import probe_video


class Counting(Segmenter):
    """Wraps a backend and counts the frames it is given (one pass reads and segments each frame once)."""

    def __init__(self, inner: Segmenter) -> None:
        self.inner, self.calls = inner, 0
        self.name = inner.name

    def reset(self) -> None:
        self.inner.reset()

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.inner.segment(frame)


@pytest.fixture
def sequence(tmp_path: Path) -> Path:
    """A 16-frame CDnet sequence with shadows, a region of interest and a temporal ROI that leaves out frames."""
    seq = write_clip(
        tmp_path / "seq",
        [Person(10, 60, 40, (200, 40, 40), 5.0), Person(110, 55, 30, (40, 60, 210), -4.0)],
        frames=16, size=(80, 128), shadow=True,
    )  # fmt: skip
    roi = np.full((80, 128), 255, np.uint8)
    roi[:, :12] = 0
    Image.fromarray(roi).save(seq / "ROI.bmp")
    (seq / "temporalROI.txt").write_text("4 15\n")
    return seq


def test_scores_equal_evaluate_sequence(sequence: Path, tmp_path: Path) -> None:
    plate = background(80, 128, seed=0)
    made = [Counting(create_segmenter("mog2")), Counting(create_segmenter("plate-diff", plate=plate))]
    scored = segment_and_score(sequence, made, tmp_path / "out", skip_first=False, save_pngs=True)
    assert all(seg.calls == 16 for seg in made)  # every frame segmented once, for the videos and the scores

    expected = [evaluate_sequence(sequence, create_segmenter("mog2"), skip_first=False)]
    expected.append(evaluate_sequence(sequence, create_segmenter("plate-diff", plate=plate), skip_first=False))
    assert [r["segmenter"] for r in scored.rows] == ["mog2", "plate-diff"]
    for got, want in zip(scored.rows, expected, strict=True):
        assert list(got)[: len(RESULT_KEYS)] == list(RESULT_KEYS)
        for key in RESULT_KEYS:
            if key == "ms_per_frame":
                assert got[key] > 0
            elif isinstance(want[key], float):
                assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), key
            else:
                assert got[key] == want[key], key
        for key in ("frames_run", "first_frame", "last_frame", "skip_first", "threshold", "path"):
            assert got[key] == want[key], key
    assert scored.rows[0]["frames"] == 12 and scored.rows[1]["f_measure"] > 0.5  # frames 4..15 scored
    assert [n for n, _ in scored.rows[1].frames] == list(range(4, 16))  # per-frame counts, as evaluate keeps them
    assert scored.rows[1].frames == expected[1].frames

    result = scored.result
    assert result.frames == 16 and set(result.methods) == {"mog2", "plate-diff"}
    assert probe_video(result.side_by_side)["frames"] == 16
    assert result.methods["plate-diff"].masks_zip.is_file()


def test_no_scored_frame_is_explained(sequence: Path, tmp_path: Path) -> None:
    (sequence / "temporalROI.txt").write_text("100 200\n")
    with pytest.raises(ValueError, match="no frame to score"):
        segment_and_score(sequence, ["mog2"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
