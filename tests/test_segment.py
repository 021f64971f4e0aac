"""humanseg.segment and `python -m humanseg segment`: end to end on a tiny synthetic clip with stub segmenters."""

from __future__ import annotations

import inspect
import time
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import humanseg.segmenters as segmenters_pkg
from humanseg.cli import main
from humanseg.segment import ExtraOutputs, mask_video, resolve_segmenters, segment_frames, segment_video
from humanseg.segmenters import Segmenter
from humanseg.video import H264Writer, VideoError, open_frames, probe_video

W, H, N = 96, 64, 40


def block_x(i: int) -> int:
    return (2 * i) % (W - 20)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """40 frames of 96x64: a flat scene with a bright red block sliding right."""
    path = tmp_path / "clip.mp4"
    with H264Writer(path, 25.0) as writer:
        for i in range(N):
            f = np.full((H, W, 3), (40, 80, 120), np.uint8)
            f[10:30, block_x(i) : block_x(i) + 20] = (250, 30, 30)
            writer.write(f)
    return path


class RedStub(Segmenter):
    """Foreground = strongly red pixels (finds the block exactly)."""

    name = "red"
    stateful = True

    def __init__(self) -> None:
        self.resets = 0
        self.closed = False

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed = True

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        return (frame[..., 0].astype(int) - frame[..., 2] > 120).astype(np.float32)


class SlowHalf(Segmenter):
    """Left half foreground after a 3 ms wait (a known per-frame cost)."""

    name = "half"

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        time.sleep(0.003)
        prob = np.zeros(frame.shape[:2], np.float32)
        prob[:, : frame.shape[1] // 2] = 1.0
        return prob


class PlateStub(Segmenter):
    """Takes a plate: foreground where the frame differs from it."""

    name = "stub-plate"
    takes_plate = True

    def __init__(self, plate: np.ndarray | None = None) -> None:
        self.plate = plate
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        diff = np.abs(frame.astype(int) - self.plate.astype(int)).max(axis=2)
        return (diff > 60).astype(np.float32)


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Segmenter]]:
    """Register the stubs under names, as if they were backends; records every instance built."""
    built: dict[str, list[Segmenter]] = {"stub-red": [], "stub-plate": []}
    classes = {"stub-red": RedStub, "stub-plate": PlateStub}

    def recording(name: str):
        cls = classes[name]

        class Recorded(cls):  # type: ignore[misc, valid-type]
            def __init__(self, **kw) -> None:
                super().__init__(**kw)
                built[name].append(self)

        # accepted_options() reads the constructor signature: show the stub's real one.
        Recorded.__init__.__signature__ = inspect.signature(cls.__init__)  # type: ignore[attr-defined]
        return Recorded

    real_get_class = segmenters_pkg.get_class
    for name in classes:
        monkeypatch.setitem(segmenters_pkg.REGISTRY, name, f"tests:{name}")
    recorded = {name: recording(name) for name in classes}
    monkeypatch.setattr(segmenters_pkg, "get_class", lambda name: recorded.get(name) or real_get_class(name))
    return built


def decode(path: Path) -> list[np.ndarray]:
    return list(open_frames(path))


def test_segment_video_end_to_end(clip: Path, tmp_path: Path) -> None:
    red, half = RedStub(), SlowHalf()
    calls: list[tuple[int, int | None]] = []
    out = tmp_path / "out"
    result = segment_video(clip, [red, half], out, save_pngs=True, progress=lambda d, t: calls.append((d, t)))

    assert result.frames == N and result.size == (W, H) and result.fps == pytest.approx(25.0)
    assert calls == [(i, N) for i in range(1, N + 1)]
    assert red.resets == 1 and not red.closed  # a caller's instance is reset, not closed
    assert set(result.methods) == {"red", "half"}
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["red_mask.mp4", "red_overlay.mp4", "red_masks", "red_masks.zip"]
        + ["half_mask.mp4", "half_overlay.mp4", "half_masks", "half_masks.zip", "side_by_side.mp4"]
    )
    inputs = decode(clip)
    truth = [RedStub()._segment(f) > 0.5 for f in inputs]

    # Mask video: white block on black, where the block is, in every frame.
    masks = decode(result.methods["red"].mask_video)
    assert len(masks) == N and masks[0].shape == (H, W, 3)
    agree = np.mean([((m[..., 0] > 127) == t).mean() for m, t in zip(masks, truth, strict=True)])
    assert agree > 0.99
    # Overlay video: the block is tinted red-ish, the background unchanged.
    over = decode(result.methods["red"].overlay_video)[20]
    assert np.abs(over[50:60].astype(int) - inputs[20][50:60].astype(int)).mean() < 3

    # PNG masks: one per frame, binary, exactly the segmenter's output.
    with zipfile.ZipFile(result.methods["red"].masks_zip) as zf:
        members = sorted(zf.namelist())
        assert members == [f"{i:06d}.png" for i in range(N)]
        for i in (0, 13, 39):
            png = np.asarray(Image.open(BytesIO(zf.read(members[i]))).convert("L"))
            assert set(np.unique(png)) <= {0, 255}
            assert ((png == 255) == truth[i]).all()

    # Side by side: input | red | half, each with a caption bar, as H.264 yuv420p.
    info = probe_video(result.side_by_side)
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert info["width"] == 3 * W and info["frames"] == N and info["height"] > H
    sbs = decode(result.side_by_side)[5]
    bar = info["height"] - H
    assert all((sbs[:bar, i * W : (i + 1) * W] > 200).any() for i in range(3))  # three captions drawn
    assert np.abs(sbs[bar:, :W].astype(int) - inputs[5].astype(int)).mean() < 4  # first tile is the input

    # Timing: the 3 ms stub is measured as >= 3 ms/frame and slower than the red stub.
    assert result.methods["half"].ms_per_frame >= 3.0
    assert result.methods["red"].ms_per_frame < result.methods["half"].ms_per_frame
    assert result.methods["red"].frames == N and result.frames_per_second > 0


def test_step_and_max_frames(clip: Path, tmp_path: Path) -> None:
    result = segment_video(clip, RedStub(), tmp_path / "o", max_frames=7, step=2, save_pngs=True, side_by_side=False)
    assert result.frames == 7 and result.fps == pytest.approx(12.5) and result.side_by_side is None
    assert len(decode(result.methods["red"].mask_video)) == 7
    with zipfile.ZipFile(result.methods["red"].masks_zip) as zf:
        assert sorted(zf.namelist()) == [f"{i:06d}.png" for i in range(0, 14, 2)]  # source frame numbers
    assert not (tmp_path / "o" / "side_by_side.mp4").exists()


def test_segment_frames_names_duplicates_and_resets() -> None:
    a, b, slow = RedStub(), RedStub(), SlowHalf()
    slow.label = "red"  # a label names a method like its name does: a third "red"
    frames = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), (255, 0, 0), np.uint8)]
    items = list(segment_frames(frames, [a, b, slow]))
    assert [list(it.probs) for it in items] == [["red", "red_2", "red_3"]] * 2
    assert a.resets == b.resets == 1
    assert items[1].probs["red_2"].dtype == np.float32 and (items[1].probs["red_2"] == 1).all()
    # Each method is timed under its own name: the 3 ms stub measures >= 3 ms, the threshold stub far less.
    assert all(list(it.ms) == ["red", "red_2", "red_3"] for it in items)
    assert all(it.ms["red_3"] >= 3.0 > it.ms["red"] for it in items)


def test_segmenter_returning_wrong_shape(clip: Path, tmp_path: Path) -> None:
    class Bad:
        name = "bad"

        def segment(self, frame: np.ndarray) -> np.ndarray:
            return np.zeros((4, 4), np.float32)

    with pytest.raises(
        ValueError, match=r"segmenter 'bad' returned a mask of shape \(4, 4\) for a frame of shape \(64, 96\)"
    ):
        segment_video(clip, [Bad()], tmp_path / "bad")


def test_plate_size_mismatch(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"plate \(array\) is 10x10 but .*clip\.mp4 is 96x64"):
        segment_video(clip, [RedStub()], tmp_path / "p", plate=np.zeros((10, 10, 3), np.uint8))


def test_missing_video(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"missing\.mp4: file or folder not found"):
        segment_video(tmp_path / "missing.mp4", [RedStub()], tmp_path / "o")


def test_resolve_by_name_routes_plate_and_closes(
    clip: Path, tmp_path: Path, fake_registry: dict[str, list[Segmenter]]
) -> None:
    plate = np.full((H, W, 3), (40, 80, 120), np.uint8)
    segs = resolve_segmenters(["stub-red", "stub-plate"], plate=plate)
    assert [s.name for s in segs] == ["red", "stub-plate"]
    assert fake_registry["stub-plate"][0].plate is plate  # only the backend that takes a plate gets it

    with pytest.raises(ValueError, match=r"plate was given but none of \['stub-red'\] uses one"):
        resolve_segmenters(["stub-red"], plate=plate)
    with pytest.raises(ValueError, match=r"unknown segmenter 'nope'; valid names: .*stub-red"):
        resolve_segmenters(["stub-red", "nope"])
    assert fake_registry["stub-red"][-1].closed  # built before the error, then closed

    Image.fromarray(plate).save(tmp_path / "plate.png")
    result = segment_video(clip, ["stub-plate"], tmp_path / "o", plate=tmp_path / "plate.png", max_frames=5)
    assert fake_registry["stub-plate"][-1].closed  # built here, so closed here
    masks = decode(result.methods["stub-plate"].mask_video)
    x = block_x(3)
    assert masks[3][20, x + 10, 0] > 200 and masks[3][50, 50, 0] < 50


def test_mask_video_helper(clip: Path, tmp_path: Path) -> None:
    out = mask_video(clip, RedStub(), tmp_path / "m.mp4", overlay_path=tmp_path / "o.mp4", max_frames=9)
    assert out.frames == 9 and out.name == "red" and out.masks_zip is None
    masks = decode(out.mask_video)
    assert len(masks) == 9 and len(decode(out.overlay_video)) == 9
    assert masks[8][20, block_x(8) + 10, 0] > 200


def test_cli_segment(clip: Path, tmp_path: Path, fake_registry, capsys: pytest.CaptureFixture[str]) -> None:
    plate = tmp_path / "plate.png"
    Image.fromarray(np.full((H, W, 3), (40, 80, 120), np.uint8)).save(plate)
    out = tmp_path / "cli"
    code = main(
        ["segment", str(clip), "--segmenter", "stub-red", "stub-plate", "--plate", str(plate)]
        + ["--max-frames", "6", "--pngs", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "6 frames of 96x64" in printed and "frames/s" in printed
    assert "red" in printed and "stub-plate" in printed and "ms/frame" in printed
    for name in ("red_mask.mp4", "stub-plate_overlay.mp4", "stub-plate_masks.zip", "side_by_side.mp4"):
        assert (out / name).is_file()
    assert probe_video(out / "side_by_side.mp4")["frames"] == 6


def test_cli_reports_bad_input(tmp_path: Path, fake_registry, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.mp4").write_text("not a video")
    code = main(["segment", str(tmp_path / "notes.mp4"), "--segmenter", "stub-red", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "notes.mp4: not a readable video" in capsys.readouterr().err


def test_real_mog2_by_name(clip: Path, tmp_path: Path) -> None:
    try:
        segmenters_pkg.get_class("mog2")
    except ImportError as err:
        pytest.skip(f"mog2 backend not importable: {err}")
    result = segment_video(clip, ["mog2"], tmp_path / "mog2", side_by_side=False)
    masks = decode(result.methods["mog2"].mask_video)
    assert len(masks) == N
    # After a few frames of history, the moving block is foreground and the static scene is not.
    x = block_x(30)
    assert masks[30][20, x + 10, 0] > 127 and masks[30][50, 5, 0] < 127


# --------------------------------------------------------------------------------------------------------------
# Extra outputs: anonymised video, people counts and the occupancy heatmap (exact on a lossless PNG clip)

WH, WW = 60, 80
BACKGROUND = (40, 80, 120)


def walk_masks() -> list[np.ndarray]:
    """Six frames: A and B walk towards each other and merge (frames 2, 3), C stands at the right edge and leaves
    after frame 3; the last frame is empty. Each person is an 8 x 36 block."""
    masks = []
    for a, b, c in (
        (4, 40, True),
        (12, 32, True),
        (18, 26, True),
        (18, 26, True),
        (18, 26, False),
        (None, None, False),
    ):
        m = np.zeros((WH, WW), bool)
        for left in [x for x in (a, b) if x is not None] + ([70] if c else []):
            m[10:46, left : left + 8] = True
        masks.append(m)
    return masks


@pytest.fixture
def walk_clip(tmp_path: Path) -> Path:
    """The walk as a folder of PNG frames (lossless, so the red stub finds the people exactly)."""
    folder = tmp_path / "walk"
    folder.mkdir()
    for i, m in enumerate(walk_masks()):
        frame = np.full((WH, WW, 3), BACKGROUND, np.uint8)
        frame[m] = (250, 30, 30)
        Image.fromarray(frame).save(folder / f"{i:06d}.png")
    return folder


def test_stats_count_people_and_map_occupancy_exactly(walk_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = segment_video(walk_clip, RedStub(), out, side_by_side=False, extras=ExtraOutputs(stats=True))
    red = result.methods["red"]
    assert red.mean_count == pytest.approx(11 / 6) and red.max_count == 3
    assert red.stats is not None and red.stats.counts_csv == out / "red_counts.csv"
    assert red.stats.counts_csv.read_text().splitlines() == [
        "frame,time_s,count,person_pixels",
        "0,0.000,3,864", "1,0.040,3,864", "2,0.080,2,864", "3,0.120,2,864", "4,0.160,1,576", "5,0.200,0,0",
    ]  # fmt: skip
    heat = np.load(out / "red_occupancy.npy")
    assert heat.dtype == np.float32 and heat.shape == (WH, WW)
    assert np.array_equal(heat, np.mean(walk_masks(), axis=0, dtype=np.float64).astype(np.float32))
    assert heat[20, 71] == pytest.approx(4 / 6) and heat[20, 19] == pytest.approx(4 / 6) and heat[5, 5] == 0
    chart, picture = Image.open(out / "red_counts.png"), Image.open(out / "red_occupancy.png")
    assert chart.size[0] > 300 and picture.size[0] == WW  # the heatmap is drawn at the frame's own size


def test_counts_follow_the_source_frames_with_a_step_and_a_perspective(walk_clip: Path, tmp_path: Path) -> None:
    extras = ExtraOutputs(stats=True, height_at=lambda row: 40.0)  # one person = 0.18 * 40^2 = 288 px = 8 x 36
    result = segment_video(walk_clip, RedStub(), tmp_path / "o", step=2, side_by_side=False, extras=extras)
    lines = (tmp_path / "o" / "red_counts.csv").read_text().splitlines()[1:]
    # Frames 0, 2, 4 of the source at 25 fps; the merged blob of frame 2 counts as its two people.
    assert lines == ["0,0.000,3,864", "2,0.080,3,864", "4,0.160,2,576"]
    assert result.methods["red"].max_count == 3


def test_anonymised_video_is_each_frame_hidden_then_encoded(
    walk_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import humanseg.segment as segment_module
    from humanseg.anonymise import anonymise_frame

    written: dict[str, list[np.ndarray]] = {}

    class Recording(H264Writer):
        def write(self, frame: np.ndarray) -> None:
            written.setdefault(self.path.name.replace(".partial", "").lstrip("."), []).append(frame.copy())
            super().write(frame)

    monkeypatch.setattr(segment_module, "H264Writer", Recording)
    out = tmp_path / "out"
    extras = ExtraOutputs(anonymise="fill", margin_px=3)
    result = segment_video(walk_clip, [RedStub(), SlowHalf()], out, side_by_side=False, extras=extras)
    assert result.methods["red"].anonymised_video == out / "red_anonymised.mp4"
    assert (out / "half_anonymised.mp4").is_file() and result.methods["red"].stats is None
    # Before encoding, each frame is exactly anonymise_frame(frame, mask): outside the grown mask, the input.
    frames = decode(walk_clip)
    expected = [anonymise_frame(f, m, "fill", margin_px=3) for f, m in zip(frames, walk_masks(), strict=True)]
    assert len(written["red_anonymised.mp4"]) == 6
    assert all(np.array_equal(g, e) for g, e in zip(written["red_anonymised.mp4"], expected, strict=True))
    assert np.array_equal(written["red_anonymised.mp4"][5], frames[5])  # nobody in the last frame: untouched
    got = decode(out / "red_anonymised.mp4")
    assert len(got) == 6 and info_is_h264(out / "red_anonymised.mp4")
    assert np.abs(got[0][20, 72].astype(int) - 128).max() < 6  # C is painted gray
    assert np.abs(got[0][55, 60].astype(int) - BACKGROUND).max() < 6  # far from people: the scene


def info_is_h264(path: Path) -> bool:
    info = probe_video(path)
    return (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")


def test_erase_shows_the_plate_or_names_the_missing_one(walk_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'erase' shows the empty scene, but red has none: give .*--plate"):
        segment_video(walk_clip, RedStub(), tmp_path / "a", extras=ExtraOutputs(anonymise="erase"))
    assert not (tmp_path / "a" / "red_mask.mp4").exists()  # stopped before writing anything
    plate = np.full((WH, WW, 3), BACKGROUND, np.uint8)
    # The plate is used by the erase output, so a method that does not take one is no error.
    result = segment_video(walk_clip, RedStub(), tmp_path / "b", plate=plate, extras=ExtraOutputs(anonymise="erase"))
    erased = decode(result.methods["red"].anonymised_video)
    assert all(np.abs(f.astype(int) - BACKGROUND).max() < 8 for f in erased)  # nobody left in the scene
    with pytest.raises(ValueError, match="unknown style 'smudge'; choose one of blur, pixelate, fill, erase"):
        ExtraOutputs(anonymise="smudge")
    with pytest.raises(ValueError, match="margin must be >= 0 pixels, got -1"):
        ExtraOutputs(anonymise="blur", margin_px=-1)


def test_cli_stats_and_anonymise(walk_clip: Path, tmp_path: Path, fake_registry, capsys) -> None:
    out = tmp_path / "cli"
    args = ["segment", str(walk_clip), "-s", "stub-red", "--stats", "--anonymise", "pixelate", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "red_anonymised.mp4, red_counts.csv, red_counts.png, red_occupancy.npy, red_occupancy.png" in printed
    assert "people per frame: mean 1.83, max 3" in printed
    assert (out / "red_counts.csv").read_text().splitlines()[3] == "2,0.080,2,864"
    assert main(["segment", str(walk_clip), "-s", "stub-red", "--margin", "4", "--out", str(out)]) == 2
    assert "add --anonymise STYLE" in capsys.readouterr().err
    assert main(["segment", str(walk_clip), "-s", "stub-red", "--skip-done", "--out", str(out)]) == 2
    assert "apply to folders of clips" in capsys.readouterr().err


def test_a_failure_half_way_leaves_no_truncated_video(walk_clip: Path, tmp_path: Path) -> None:
    class Breaks(RedStub):
        def _segment(self, frame: np.ndarray) -> np.ndarray:
            self.resets += 1
            if self.resets == 4:  # reset() counted once: this is the third frame
                raise RuntimeError("disk full")
            return super()._segment(frame)

    out = tmp_path / "out"
    earlier = segment_video(walk_clip, RedStub(), out, side_by_side=False, max_frames=2)
    before = (out / "red_mask.mp4").read_bytes()
    with pytest.raises(RuntimeError, match="disk full"):
        segment_video(walk_clip, Breaks(), out, extras=ExtraOutputs(anonymise="blur"))
    # The earlier complete videos stay as they were; the failed run's videos are nowhere.
    assert sorted(p.name for p in out.iterdir()) == ["red_mask.mp4", "red_overlay.mp4"]
    assert (out / "red_mask.mp4").read_bytes() == before and earlier.frames == 2
