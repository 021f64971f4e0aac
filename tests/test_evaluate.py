"""The evaluator: protocol on a hand-counted synthetic sequence, real CDnet/SBI footage, and the CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import humanseg.evaluate as evaluate_module
from humanseg.evaluate import (
    RESULT_KEYS,
    evaluate_many,
    evaluate_sequence,
    f_measure_chart,
    mean_rows,
    resolve_skip_first,
    results_markdown,
    still_frames,
)
from humanseg.metrics import Confusion
from humanseg.progress import bar as progress_bar
from humanseg.segmenters import Segmenter
from humanseg.video import load_sequence

ROOT = Path(__file__).resolve().parents[1]

# Synthetic CDnet sequence, frames 1..6 of 2 x 3 pixels; temporalROI "3 5"; ROI.bmp blocks column 2.
# Labels of the scored frames and the fake segmenter's probabilities (> 0.5 = person), counted by hand:
# frame 3: (0,0) 255/0.9 TP, (0,1) 255/0.2 FN, (1,0) 170 unscored, (1,1) 50 (shadow)/0.9 FP
# frame 4: (0,0) 0/0.1 TN, (0,1) 0/0.9 FP, (1,0) 85 unscored, (1,1) 255/0.8 TP
# frame 5: all 0, all 0.0 -> TN x 4 (column 2 is outside the ROI in every frame)
# -> TP 2, FP 2, FN 1, TN 5. Frames 1, 2 and 6 are all-255 labels predicted 0: scoring any of them would add FNs.
LABELS = {
    3: [[255, 255, 0], [170, 50, 0]],
    4: [[0, 0, 255], [85, 255, 0]],
    5: [[0, 0, 0], [0, 0, 0]],
}
PROBS = {
    3: [[0.9, 0.2, 0.9], [0.9, 0.9, 0.0]],
    4: [[0.1, 0.9, 0.9], [0.9, 0.8, 0.0]],
    5: [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
}


class ScriptedSegmenter(Segmenter):
    """Returns a fixed probability mask per frame; frames carry their number as pixel value (10 x number)."""

    name = "scripted"
    stateful = True

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        self.seen = []

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        number = int(frame[0, 0, 0]) // 10
        self.seen.append(number)
        return np.asarray(PROBS.get(number, np.zeros((2, 3))), dtype=np.float32)


def _palette_png(path: Path, raw: np.ndarray, palette: list[int]) -> None:
    img = Image.fromarray(raw.astype(np.uint8), mode="P")
    img.putpalette(palette)
    img.save(path)


def make_sequence(root: Path, numbers=range(1, 7), temporal_roi: str | None = "3 5", roi=True) -> Path:
    (root / "input").mkdir(parents=True)
    (root / "groundtruth").mkdir()
    for n in numbers:
        Image.fromarray(np.full((2, 3, 3), 10 * n, dtype=np.uint8)).save(root / "input" / f"in{n:06d}.png")
        label = np.asarray(LABELS.get(n, np.full((2, 3), 255)), dtype=np.uint8)
        if n == 4:
            # A palette PNG whose raw indices are not the gray values (index 1 -> 255, 2 -> 85, 0 -> 0).
            raw = np.select([label == 255, label == 85], [1, 2], 0)
            _palette_png(root / "groundtruth" / f"gt{n:06d}.png", raw, [0, 0, 0, 255, 255, 255, 85, 85, 85])
        else:
            Image.fromarray(label, mode="L").save(root / "groundtruth" / f"gt{n:06d}.png")
    if temporal_roi is not None:
        (root / "temporalROI.txt").write_text(temporal_roi + "\n")
    if roi:
        # Like CDnet's office ROI.bmp: raw index 0 means gray 255 (inside); index 1 (gray 0) blocks column 2.
        raw = np.zeros((2, 3), dtype=np.uint8)
        raw[:, 2] = 1
        _palette_png(root / "ROI.bmp", raw, [255, 255, 255, 0, 0, 0])
    return root


@pytest.fixture
def synthetic(tmp_path) -> Path:
    return make_sequence(tmp_path / "synth")


def test_protocol_hand_counted(synthetic, tmp_path, monkeypatch):
    seg = ScriptedSegmenter()
    seg.seen = [99]  # state left over from an earlier video must be cleared
    bars = []

    def recording_bar(iterable, **options):  # humanseg.progress.bar, drawn into a string instead of stderr
        bars.append((progress_bar(iterable, **options, file=io.StringIO()), options))
        return bars[-1][0]

    monkeypatch.setattr(evaluate_module, "bar", recording_bar)
    result = evaluate_sequence(synthetic, seg, save_masks=tmp_path / "masks", progress=True)
    assert seg.resets == 1
    assert seg.seen == [1, 2, 3, 4, 5, 6]  # every frame, in order, scored or not
    [(frames, options)] = bars
    assert frames.n == frames.total == 6 and options["enabled"] is True  # one bar step per frame run
    assert options["desc"] == "synth scripted"
    assert list(result)[: len(RESULT_KEYS)] == list(RESULT_KEYS)
    assert (result["tp"], result["fp"], result["fn"], result["tn"]) == (2, 2, 1, 5)
    assert result["frames"] == 3 and result["frames_run"] == 6
    assert (result["first_frame"], result["last_frame"], result["skip_first"]) == (3, 5, False)
    assert result["precision"] == pytest.approx(2 / 4)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f_measure"] == pytest.approx(4 / 7)
    assert result["iou"] == pytest.approx(2 / 5)
    assert result["pwc"] == pytest.approx(30.0)
    assert result["specificity"] == pytest.approx(5 / 7)
    assert 0.0 <= result["boundary_f"] <= 1.0
    assert result["ms_per_frame"] >= 0.0
    # Flicker over frames 3..5 (their pixel values differ by 10 > still threshold): no still pixel -> None.
    assert result["flicker"] is None
    json.dumps(result)  # every value is JSON-serialisable

    # One 0/255 PNG per scored frame, named like its ground truth, holding prob > 0.5.
    saved = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert saved == ["gt000003.png", "gt000004.png", "gt000005.png"]
    for n in (3, 4, 5):
        mask = np.asarray(Image.open(tmp_path / "masks" / f"gt{n:06d}.png"))
        assert mask.dtype == np.uint8
        np.testing.assert_array_equal(mask, (np.asarray(PROBS[n]) > 0.5).astype(np.uint8) * 255)


def test_per_frame_confusions_kept_masks_and_label(synthetic, tmp_path):
    seg = ScriptedSegmenter()
    seg.label = "site-scripted"  # a trained model's one table name
    files = sorted(tmp_path.rglob("*"))
    result = evaluate_sequence(synthetic, seg, keep_masks=[4, 6])
    # Frame by frame as counted by hand above (column 2 is outside the ROI): they sum to the totals.
    assert result.frames == [
        (3, Confusion(tp=1, fp=1, fn=1, tn=0)),
        (4, Confusion(tp=1, fp=1, fn=0, tn=1)),
        (5, Confusion(tp=0, fp=0, fn=0, tn=4)),
    ]
    assert result.pooled([3, 5]) == Confusion(tp=1, fp=1, fn=1, tn=4)
    assert result.pooled(n for n, _ in result.frames) == Confusion(tp=2, fp=2, fn=1, tn=5)
    # Only scored frames' masks are kept (6 is outside the temporal ROI); nothing is written to disk.
    assert list(result.masks) == [4]
    np.testing.assert_array_equal(result.masks[4], np.asarray(PROBS[4]) > 0.5)
    assert result["segmenter"] == "site-scripted"
    assert json.loads(json.dumps(result)) == dict(result)  # the extras stay off the JSON row
    assert sorted(tmp_path.rglob("*")) == files


def test_still_frames_by_hand(tmp_path):
    # Every 2nd frame is labelled (subsampled like SBI); fps 1 and 4 s -> the reference is the frame 4 earlier.
    def box(x: int, size: int = 10) -> np.ndarray:
        label = np.zeros((16, 40), np.uint8)
        label[2 : 2 + size, x : x + size] = 255
        return label

    labels = {
        0: box(0),
        2: box(8),
        4: box(16),
        6: box(24),  # moving: references 0, 2 do not overlap
        8: box(28),
        10: box(28),  # reference 6 (x 24): IoU 60/140 -> moving
        12: box(28),  # reference 8: identical -> still
        14: box(29),  # reference 10, 1 px shift: IoU 90/110 = 0.82 -> still
        16: np.zeros((16, 40), np.uint8),  # nobody there -> not still
        18: box(28),  # reference 14: IoU 0.82 -> still
        20: box(28),  # reference 16 is empty -> not still
        22: box(30),  # reference 18, 2 px shift: IoU 80/120 = 0.67 -> moving
    }
    root = tmp_path / "seq"
    (root / "input").mkdir(parents=True)
    (root / "groundtruth").mkdir()
    for n, label in labels.items():
        Image.fromarray(np.zeros((*label.shape, 3), np.uint8)).save(root / "input" / f"in{n:06d}.png")
        Image.fromarray(label).save(root / "groundtruth" / f"gt{n:06d}.png")
    assert still_frames(root, fps=1.0, seconds=4.0) == [12, 14, 18]
    # A lag that falls between labelled frames uses the nearest one (within half the spacing).
    assert still_frames(root, fps=1.0, seconds=3.5) == [12, 14, 18]
    # A lag longer than the clip: no frame has a reference, so none is still.
    assert still_frames(root, fps=25.0, seconds=2.0) == []


def test_threshold_and_skip_first(synthetic):
    strict = evaluate_sequence(synthetic, ScriptedSegmenter(), threshold=0.85)
    # Only the 0.9 pixels stay positive: frame 3 (0,0) TP, (1,1) shadow FP; frame 4 (0,1) FP, (1,1) 0.8 -> FN.
    assert (strict["tp"], strict["fp"], strict["fn"], strict["tn"]) == (1, 2, 2, 5)
    skipped = evaluate_sequence(synthetic, ScriptedSegmenter(), skip_first=True)
    # Frame 3 dropped: frame 4 TP 1, FP 1, TN 1; frame 5 TN 4.
    assert (skipped["tp"], skipped["fp"], skipped["fn"], skipped["tn"]) == (1, 1, 0, 5)
    assert skipped["frames"] == 2 and skipped["first_frame"] == 4 and skipped["skip_first"] is True


def test_automatic_skip_first_only_for_frame_zero_in_cdnet_layout(tmp_path):
    sbi_like = load_sequence(make_sequence(tmp_path / "sbi", numbers=range(0, 4), temporal_roi=None, roi=False))
    assert resolve_skip_first(sbi_like, None) is True
    assert resolve_skip_first(sbi_like, False) is False
    cdnet_like = load_sequence(make_sequence(tmp_path / "cd", numbers=range(1, 4), temporal_roi=None))
    assert resolve_skip_first(cdnet_like, None) is False
    result = evaluate_sequence(tmp_path / "sbi", ScriptedSegmenter())
    assert result["skip_first"] is True and result["first_frame"] == 1 and result["frames"] == 3


def test_flicker_measured_on_still_frames(tmp_path):
    # Identical frames (value 10 each) and a mask that alternates: flicker 1.0 over the scored span.
    root = tmp_path / "still"
    make_sequence(root, numbers=range(1, 5), temporal_roi=None, roi=False)
    for p in (root / "input").iterdir():
        Image.fromarray(np.full((2, 3, 3), 10, dtype=np.uint8)).save(p)

    class Blinker(Segmenter):
        name = "blinker"

        def __init__(self):
            self.t = 0

        def _segment(self, frame):
            self.t += 1
            return np.full(frame.shape[:2], float(self.t % 2), dtype=np.float32)

    assert evaluate_sequence(root, Blinker())["flicker"] == 1.0


def test_errors_name_the_problem(synthetic, tmp_path):
    with pytest.raises(ValueError, match="valid names"):
        evaluate_sequence(synthetic, "no-such-method")
    with pytest.raises(ValueError, match="segmenter name"):
        evaluate_sequence(synthetic, ScriptedSegmenter(), plate=np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="threshold"):
        evaluate_sequence(synthetic, ScriptedSegmenter(), threshold=1.5)
    (synthetic / "temporalROI.txt").write_text("100 200\n")
    with pytest.raises(ValueError, match="no frame to score"):
        evaluate_sequence(synthetic, ScriptedSegmenter())


def test_evaluate_many_table_and_chart(tmp_path):
    a = make_sequence(tmp_path / "seq_a")
    b = make_sequence(tmp_path / "seq_b", numbers=range(1, 5), temporal_roi="2 4")
    rows = evaluate_many([a, b], ["mog2", "knn"], save_masks=tmp_path / "masks")
    assert [(r["sequence"], r["segmenter"]) for r in rows] == [
        ("seq_a", "mog2"), ("seq_a", "knn"), ("seq_b", "mog2"), ("seq_b", "knn"),
    ]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "masks" / "seq_b" / "knn").iterdir()) == [
        "gt000002.png", "gt000003.png", "gt000004.png",
    ]  # fmt: skip
    table = results_markdown(rows)
    assert table.count("\n") == 2 + 4 + 2  # header, rule, 4 runs, 2 mean lines
    assert "| **mean** | mog2 |" in table
    chart = f_measure_chart(rows, tmp_path / "f.png")
    with Image.open(chart) as img:
        assert img.format == "PNG" and img.width > 300

    with pytest.raises(ValueError, match="one sequence at a time"):
        evaluate_many([a, b], ["plate-diff"], plate=np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="takes option 'checkpoint'"):
        evaluate_many([a], ["mog2", "knn"], checkpoint=tmp_path / "x.pt")


def test_results_markdown_mean_rows_by_hand():
    rows = [
        {"sequence": "s1", "segmenter": "m", "frames": 10, "f_measure": 0.5, "precision": 0.4, "recall": 0.8,
         "iou": 0.3, "boundary_f": 0.2, "pwc": 1.0, "flicker": None, "ms_per_frame": 2.0},
        {"sequence": "s2", "segmenter": "m", "frames": 20, "f_measure": 0.7, "precision": 0.6, "recall": 0.9,
         "iou": 0.5, "boundary_f": 0.4, "pwc": 3.0, "flicker": 0.01, "ms_per_frame": 4.0},
    ]  # fmt: skip
    (mean,) = mean_rows(rows)
    assert mean["frames"] == 30
    assert mean["f_measure"] == pytest.approx(0.6)
    assert mean["pwc"] == pytest.approx(2.0)
    assert mean["flicker"] == pytest.approx(0.01)  # None left out
    table = results_markdown(rows)
    assert "| s1 | m | 10 | 0.500 | 0.400 | 0.800 | 0.300 | 0.200 | 1.00 | - | 2.0 |" in table
    assert "| **mean** | m | 30 | 0.600 | 0.500 | 0.850 | 0.400 | 0.300 | 2.00 | 0.0100 | 3.0 |" in table


# ---------------------------------------------------------------------------------------------------------
# Real footage (skips where the shared data folder is absent)


def _scored_pixels(seq_dir: Path, skip_first: bool = False) -> int:
    seq = load_sequence(seq_dir)
    total = 0
    for item in seq.scored_items(skip_first=skip_first):
        gt = np.asarray(Image.open(item.label).convert("L"))
        inside = np.isin(gt, (0, 50, 255))
        if seq.roi is not None:
            inside &= seq.roi
        total += int(inside.sum())
    return total


def test_mog2_on_pedestrians(pedestrians):
    r = evaluate_sequence(pedestrians, "mog2")
    assert r["frames"] == 51 and r["frames_run"] == 51
    assert r["tp"] + r["fp"] + r["fn"] + r["tn"] == _scored_pixels(pedestrians)
    # OpenCV's MOG2 with defaults scored F 0.594 here when measured independently.
    assert r["f_measure"] == pytest.approx(0.594, abs=0.01)


def test_plate_diff_on_pedestrians_with_and_without_plate(pedestrians):
    plate = sorted(pedestrians.glob("empty_bg*.jpg"))[0]
    with_plate = evaluate_sequence(pedestrians, "plate-diff", plate=plate)
    without = evaluate_sequence(pedestrians, "plate-diff")
    assert with_plate["plate"] == str(plate) and without["plate"] is None
    # The sequence's empty_bg is never picked up silently: without a plate the method learns its own.
    assert with_plate["f_measure"] != without["f_measure"]
    assert with_plate["f_measure"] > 0.8  # 0.95 measured with the default plate-diff settings


def test_cli_json_and_saved_masks_match_a_plain_recount(pedestrians, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable, "-m", "humanseg", "evaluate", str(pedestrians), "--segmenter", "mog2",
        "--save-masks", str(tmp_path / "masks"), "--json", str(tmp_path / "out.json"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert json.loads((tmp_path / "out.json").read_text()) == result
    assert set(RESULT_KEYS) <= set(result)
    assert result["sequence"] == "pedestrians" and result["segmenter"] == "mog2"

    # Recount from the saved PNGs, the ground truth and ROI.bmp with plain numpy.
    roi = np.asarray(Image.open(pedestrians / "ROI.bmp").convert("L")) > 127
    first, last = map(int, (pedestrians / "temporalROI.txt").read_text().split())
    tp = fp = fn = tn = 0
    saved = sorted((tmp_path / "masks").glob("gt*.png"))
    for path in saved:
        assert first <= int(path.stem[2:]) <= last
        pred = np.asarray(Image.open(path)) == 255
        gt = np.asarray(Image.open(pedestrians / "groundtruth" / path.name).convert("L"))
        pos, neg = (gt == 255) & roi, ((gt == 0) | (gt == 50)) & roi
        tp += int((pred & pos).sum())
        fn += int((~pred & pos).sum())
        fp += int((pred & neg).sum())
        tn += int((~pred & neg).sum())
    assert len(saved) == result["frames"] == 51
    assert (tp, fp, fn, tn) == (result["tp"], result["fp"], result["fn"], result["tn"])
    assert result["f_measure"] == pytest.approx(2 * tp / (2 * tp + fp + fn), rel=0, abs=1e-15)


def test_sbi_sequences_skip_frame_zero_automatically(hall):
    r = evaluate_sequence(hall, "gsoc")
    assert r["skip_first"] is True and r["first_frame"] == 1
    assert r["tp"] + r["fp"] + r["fn"] + r["tn"] == _scored_pixels(hall, skip_first=True)
    # OpenCV's GSOC with defaults scored F 0.668 here when measured independently.
    assert r["f_measure"] == pytest.approx(0.668, abs=0.02)


def test_cli_several_runs_print_a_table_and_write_json_and_chart(tmp_path, capsys, monkeypatch):
    from humanseg.cli import main

    a = make_sequence(tmp_path / "seq_a")
    b = make_sequence(tmp_path / "seq_b")
    out = tmp_path / "res" / "results.json"
    assert main(["evaluate", str(a), str(b), "--segmenter", "mog2", "--json", str(out), "--no-skip-first"]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("| sequence | segmenter | frames | F-measure |")
    assert "| **mean** | mog2 | 6 |" in stdout
    rows = json.loads(out.read_text())
    assert [(r["sequence"], r["frames"]) for r in rows] == [("seq_a", 3), ("seq_b", 3)]
    assert (tmp_path / "res" / "results_f_measure.png").is_file()  # the chart sits next to --json

    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(a), "--segmenter", "mog2", "knn"]) == 0
    assert (tmp_path / "f_measure.png").is_file()  # no --json: the chart goes to the working folder
    # A user mistake is one line on stderr and exit status 2.
    assert main(["evaluate", str(a), "--segmenter", "mog2", "--plate", str(tmp_path / "none.jpg")]) == 2
    assert "does not take option(s) plate" in capsys.readouterr().err


def test_cavignal_without_temporal_roi_scores_every_labelled_frame_but_frame_zero(cavignal):
    r = evaluate_sequence(cavignal, "mog2")
    labelled = [it for it in load_sequence(cavignal).items if it.label is not None]
    assert r["skip_first"] is True and r["first_frame"] == 2  # every 2nd frame is kept: 0, 2, 4, ...
    assert r["frames"] == len(labelled) - 1 == 128 and r["frames_run"] == 129
    assert r["tp"] + r["fp"] + r["fn"] + r["tn"] == _scored_pixels(cavignal, skip_first=True) == 128 * 200 * 136
