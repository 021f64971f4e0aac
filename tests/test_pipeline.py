"""The video path as a pipeline: overlapping stages, bounded queues, errors that reach the caller, batches for
trained models with the per-frame path's masks, and the masks-only output."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from humanseg.cli import main
from humanseg.models import ModelConfig, build_model
from humanseg.segment import batch_size_of, pipeline, segment_frames, segment_video
from humanseg.segmenters import Segmenter
from humanseg.segmenters.segnet import BATCH_SIZES, SegNetSegmenter
from humanseg.stages import ThreadedStage
from humanseg.video import H264Writer, open_frames

W, H, N = 64, 48, 24


def _frame(i: int) -> np.ndarray:
    f = np.full((H, W, 3), (40, 80, 120), np.uint8)
    x = (3 * i) % (W - 12)
    f[8:40, x : x + 12] = (230, 40, 40)
    return f


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    with H264Writer(path, 25.0) as writer:
        for i in range(N):
            writer.write(_frame(i))
    return path


def _stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("humanseg-")]


class Red(Segmenter):
    name = "red"

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        return (frame[..., 0].astype(int) - frame[..., 2] > 120).astype(np.float32)


class BreaksOnFifth(Red):
    """Raises on the fifth frame it is given (index 4)."""

    def reset(self) -> None:
        self.seen = 0

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        self.seen += 1
        if self.seen == 5:
            raise RuntimeError("model crashed on frame 5")
        return super()._segment(frame)


class Order(Segmenter):
    """Stateful: its mask is the number of frames seen before, so any reordering shows."""

    name = "order"
    stateful = True

    def reset(self) -> None:
        self.seen = 0

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        self.seen += 1
        return np.full(frame.shape[:2], self.seen / 100.0, np.float32)


class BatchRecorder(Red):
    """Batches: records the size of every segment_batch call."""

    name = "batched"
    batches = True
    batch_size = 5

    def __init__(self) -> None:
        self.calls: list[int] = []

    def segment_batch(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        self.calls.append(len(frames))
        return [self.segment(f) for f in frames]


def test_an_error_in_the_segmenter_reaches_the_caller_and_leaves_no_thread_or_file(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="model crashed on frame 5"):
        segment_video(clip, BreaksOnFifth(), out, extras=None)
    assert _stage_threads() == []
    # Videos are written under temporary names: nothing is left under a final (or any) name.
    assert sorted(p.name for p in out.iterdir()) == []


def test_an_error_in_decoding_reaches_the_caller() -> None:
    def frames():
        yield _frame(0)
        raise OSError("corrupt packet")

    with pytest.raises(OSError, match="corrupt packet"), pipeline(frames(), [Red()]) as items:
        list(items)
    assert _stage_threads() == []


def test_a_consumer_that_stops_early_stops_the_threads_and_queues_stay_bounded() -> None:
    produced = 0

    def frames():
        nonlocal produced
        for i in range(1000):
            produced += 1
            yield _frame(i)

    with pipeline(frames(), [Red()]) as items:
        next(items)
        time.sleep(0.3)  # the stages run ahead as far as their queues let them, no further
        ahead = produced
    assert _stage_threads() == []
    # decode queue + segment queue + one item in each thread's hands, far from the 1000 frames of the source
    assert ahead <= 2 * 16 + 4


def test_a_threaded_stage_hands_over_items_in_order() -> None:
    with ThreadedStage(range(100), maxsize=3) as items:
        assert list(items) == list(range(100))
    with pytest.raises(ValueError, match="maxsize must be >= 1"):
        ThreadedStage([], maxsize=0)


def test_batching_segmenters_get_chunks_and_stateful_ones_keep_frame_order() -> None:
    frames = [_frame(i) for i in range(12)]
    batched, order = BatchRecorder(), Order()
    assert batch_size_of(batched) == 5 and batch_size_of(order) == 1 and batch_size_of(Red()) == 1
    list(segment_frames(frames[:2], [batched]))
    assert batched.calls == []  # one frame at a time by default (a live stream must not wait for a batch)
    with pipeline(frames, [batched, order]) as stream:  # a clip: the largest batch size of the segmenters
        items = list(stream)
    assert batched.calls == [5, 5, 2]  # never one frame per call while frames remain
    assert [it.index for it in items] == list(range(12))
    assert [float(it.probs["order"][0, 0]) for it in items] == pytest.approx([(i + 1) / 100 for i in range(12)])
    per_frame = list(segment_frames(frames, [Red()]))
    assert all(np.array_equal(a.probs["batched"], b.probs["red"]) for a, b in zip(items, per_frame, strict=True))
    # Each frame of a batch is charged an equal share of the call's time.
    assert items[0].ms["batched"] == items[4].ms["batched"]


def test_trained_model_batches_give_the_per_frame_masks() -> None:
    torch.manual_seed(0)
    config = ModelConfig("unet", width=0.125, inputs="frame+plate+diff", input_size=(48, 64), prior=True)
    model = build_model(config).eval()
    plate = np.full((H, W, 3), (40, 80, 120), np.uint8)
    seg = SegNetSegmenter.from_model(model, plate)
    assert seg.batches and seg.batch_size == BATCH_SIZES["cpu"] == batch_size_of(seg)
    frames = [_frame(i) for i in range(11)]
    batched = list(segment_frames(frames, [seg], batch_size=batch_size_of(seg)))
    single = list(segment_frames(frames, [seg]))
    for a, b in zip(batched, single, strict=True):
        assert np.allclose(a.probs["segnet"], b.probs["segnet"], atol=1e-5)
        assert np.array_equal(a.probs["segnet"] > 0.5, b.probs["segnet"] > 0.5)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        SegNetSegmenter.from_model(model, plate, batch_size=0)


def test_masks_only_writes_the_mask_videos_alone(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = segment_video(clip, [Red(), Order()], out, masks_only=True, save_pngs=True)
    assert result.side_by_side is None and result.frames == N
    assert all(m.overlay_video is None for m in result.methods.values())
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "order_mask.mp4", "order_masks.zip", "red_mask.mp4", "red_masks.zip",
    ]  # fmt: skip
    with open_frames(out / "red_mask.mp4") as masks, open_frames(clip) as inputs:
        pairs = [(m[..., 0] > 127, Red().segment(f) > 0.5) for m, f in zip(masks, inputs, strict=True)]
    assert len(pairs) == N
    assert all(m.sum() > 100 and (m != truth).mean() < 0.01 for m, truth in pairs)  # H.264 edges aside


def test_cli_masks_only(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["segment", str(clip), "-s", "mog2", "--masks-only", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mog2_mask.mp4"]
    assert "mog2_mask.mp4" in capsys.readouterr().out


def test_each_frame_carries_the_running_plate_it_was_segmented_with() -> None:
    from humanseg.anonymise import segmenter_plate
    from humanseg.segmenters.plate_diff import PlateDiffSegmenter

    frames = [_frame(i) for i in range(30)]
    reference = PlateDiffSegmenter(buffer_size=5, sample_every=2)
    expected = []
    for f in frames:
        reference.segment(f)
        expected.append(segmenter_plate(reference, (W, H)))
    with pipeline(frames, [PlateDiffSegmenter(buffer_size=5, sample_every=2)], plates=True) as items:
        got = [item.plates["plate-diff"] for item in items]
    # The writer works behind the segmenting thread; each frame still has the median of its own moment.
    assert len(got) == 30 and all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert not np.array_equal(expected[0], expected[-1])  # the median did move during the clip


def test_anonymise_video_runs_on_the_pipeline(clip: Path, tmp_path: Path) -> None:
    from humanseg.anonymise import anonymise_video

    batched = BatchRecorder()
    result = anonymise_video(clip, batched, tmp_path / "anon.mp4", "fill")
    assert result.frames == N and batched.calls == [5] * (N // 5) + ([N % 5] if N % 5 else [])
    with pytest.raises(RuntimeError, match="model crashed on frame 5"):
        anonymise_video(clip, BreaksOnFifth(), tmp_path / "broken.mp4", "blur")
    assert _stage_threads() == [] and sorted(p.name for p in tmp_path.iterdir()) == ["anon.mp4", "clip.mp4"]


def test_cli_masks_only_for_a_folder_of_clips(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "footage"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / name).write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    assert main(["segment", str(folder), "-s", "mog2", "--masks-only", "--out", str(out)]) == 0
    videos = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4"))
    assert videos == ["a/mog2_mask.mp4", "b/mog2_mask.mp4"]
