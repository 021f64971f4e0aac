"""humanseg.anonymise and `python -m humanseg anonymise`: exact pixels on raw arrays, whole clips end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from humanseg.anonymise import (
    FILL_COLOUR,
    MIN_MARGIN_PX,
    STYLES,
    anonymise_frame,
    anonymise_video,
    hide_weight,
    segmenter_plate,
)
from humanseg.segmenters import Segmenter
from humanseg.video import H264Writer, open_frames, probe_video

ROOT = Path(__file__).resolve().parent.parent
W, H, N = 96, 80, 24
SCENE = (60, 110, 150)


def rng_frame(seed: int = 0, size: tuple[int, int] = (60, 80)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def block_x(i: int) -> int:
    return 8 + 2 * i


def scene(i: int) -> np.ndarray:
    """Frame i of the clip: a smooth static scene, a dark 10x20 'person' walking right in rows 30..49."""
    yy, xx = np.mgrid[0:H, 0:W]
    frame = np.stack([SCENE[0] + xx // 2, SCENE[1] + yy // 2, np.full_like(xx, SCENE[2])], axis=2).astype(np.uint8)
    frame[30:50, block_x(i) : block_x(i) + 10] = (20, 20, 20)
    return frame


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    with H264Writer(path, 25.0) as writer:
        for i in range(N):
            writer.write(scene(i))
    return path


@pytest.fixture
def plate_png(tmp_path: Path) -> Path:
    path = tmp_path / "plate.png"
    plate = scene(0)
    plate[30:50, block_x(0) : block_x(0) + 10] = scene(N - 1)[30:50, block_x(0) : block_x(0) + 10]
    Image.fromarray(plate).save(path)
    return path


class DarkStub(Segmenter):
    """Foreground = the dark pixels (finds the walking block); raises on frame ``fail_at`` when set."""

    name = "dark"

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.seen = 0

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        if self.seen == self.fail_at:
            raise RuntimeError(f"segmenter broke on frame {self.seen}")
        self.seen += 1
        return (frame.max(axis=2) < 40).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The grown, feathered mask


def test_default_margin_is_a_tenth_of_the_person_height_and_feathers_over_its_outer_half():
    prob = np.zeros((120, 80), np.float32)
    prob[20:70, 30:40] = 1.0  # 50 rows tall: margin 5 px, weight 1 up to 2.5 px out, then down to 0 at 5 px
    weight = hide_weight(prob)
    assert weight.dtype == np.float32
    assert np.all(weight[20:70, 30:40] == 1.0)
    assert weight[40, 40 + 1] == 1.0  # 2 px from the blob's last column (39)
    assert weight[40, 39 + 3] == pytest.approx(0.8)  # (5 - 3) / 2.5
    assert weight[40, 39 + 4] == pytest.approx(0.4)
    assert weight[40, 39 + 5] == 0.0
    assert weight[70 + 3, 35] == pytest.approx(0.4)  # 4 px under the last row (69)
    assert np.count_nonzero(weight[:, :25]) == 0 and np.count_nonzero(weight[76:]) == 0


def test_small_people_get_the_minimum_margin_and_each_blob_its_own():
    prob = np.zeros((120, 120), np.float32)
    prob[10:14, 10:13] = 1.0  # 4 rows: 10% is 0.4 px, so the 2 px minimum
    prob[30:110, 60:70] = 1.0  # 80 rows: 8 px
    weight = hide_weight(prob)
    assert MIN_MARGIN_PX == 2
    assert weight[12, 12 + 1] == 1.0 and weight[12, 12 + 2] == 0.0
    assert weight[70, 69 + 4] == 1.0 and weight[70, 69 + 6] == pytest.approx(0.5) and weight[70, 69 + 8] == 0.0


def test_a_fixed_margin_applies_to_every_blob_and_zero_is_the_bare_mask():
    prob = np.zeros((60, 60), np.float32)
    prob[10:50, 20:24] = 0.9
    prob[5, 5] = 0.4  # under the threshold: not a person
    assert hide_weight(prob, margin_px=4)[30, 23 + 2] == 1.0
    assert hide_weight(prob, margin_px=4)[30, 23 + 3] == pytest.approx(0.5)
    bare = hide_weight(prob, margin_px=0)
    np.testing.assert_array_equal(bare, (prob > 0.5).astype(np.float32))
    assert hide_weight(np.zeros((8, 8), np.float32)).max() == 0.0
    with pytest.raises(ValueError, match="margin must be >= 0"):
        hide_weight(prob, margin_px=-1)


# ---------------------------------------------------------------------------------------------------------------
# anonymise_frame on raw arrays


def two_people() -> np.ndarray:
    prob = np.zeros((60, 80), np.float32)
    prob[10:40, 10:18] = 1.0
    prob[25:55, 50:60] = 0.8
    return prob


@pytest.mark.parametrize("style", STYLES)
def test_pixels_outside_the_grown_mask_are_bit_exact(style):
    frame, plate, prob = rng_frame(1), rng_frame(2), two_people()
    out = anonymise_frame(frame, prob, style, plate=plate)
    weight = hide_weight(prob)
    outside = weight == 0
    assert out.dtype == np.uint8 and out.shape == frame.shape
    assert outside.sum() > 0.8 * outside.size
    np.testing.assert_array_equal(out[outside], frame[outside])
    # ... and the people are hidden: on the mask the output is the style's picture, not the frame.
    inside = weight == 1.0
    assert np.abs(out[inside].astype(int) - frame[inside]).mean() > 30


def test_fill_and_erase_paint_exactly_the_colour_and_the_plate_where_fully_hidden():
    frame, plate, prob = rng_frame(3), rng_frame(4), two_people()
    full = hide_weight(prob) == 1.0
    filled = anonymise_frame(frame, prob, "fill", colour=(10, 200, 30))
    assert np.all(filled[full] == (10, 200, 30))
    assert np.all(anonymise_frame(frame, prob, "fill")[full] == FILL_COLOUR)
    erased = anonymise_frame(frame, prob, "erase", plate=plate)
    np.testing.assert_array_equal(erased[full], plate[full])
    # The feathered band blends the two: each value lies between the frame's and the plate's.
    band = (hide_weight(prob) > 0) & ~full
    lo, hi = np.minimum(frame, plate)[band], np.maximum(frame, plate)[band]
    assert band.any() and np.all((erased[band] >= lo) & (erased[band] <= hi))


def test_blur_and_pixelate_hide_detail_but_keep_the_colours_of_the_place():
    frame, prob = rng_frame(5), two_people()
    full = hide_weight(prob) == 1.0
    for style in ("blur", "pixelate"):
        out = anonymise_frame(frame, prob, style)[full].astype(float)
        # Random pixels have a spread of ~74 per channel; hidden ones keep the mean and lose most of the spread.
        assert out.std() < 35, style
        assert abs(out.mean() - frame.mean()) < 15, style


def test_pixelate_blocks_are_uniform_on_the_frame_grid():
    frame = rng_frame(6, (90, 90))
    prob = np.ones((90, 90), np.float32)  # everything hidden: the whole frame is blocks of max(4, 90 / 30) = 4 px
    out = anonymise_frame(frame, prob, "pixelate", margin_px=0)
    blocks = out[:88, :88].reshape(22, 4, 22, 4, 3)
    assert np.all(blocks == blocks[:, :1, :, :1])


def test_no_person_returns_an_identical_copy():
    frame = rng_frame(7)
    out = anonymise_frame(frame, np.zeros(frame.shape[:2], np.float32), "blur")
    np.testing.assert_array_equal(out, frame)
    assert out is not frame


def test_erase_without_a_plate_names_the_plate_option():
    with pytest.raises(ValueError, match=r"--plate IMAGE"):
        anonymise_frame(rng_frame(), two_people(), "erase")
    with pytest.raises(ValueError, match="plate is 40x30 but the frame is 80x60"):
        anonymise_frame(rng_frame(), two_people(), "erase", plate=rng_frame(0, (30, 40)))


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="unknown style 'smudge'; choose one of blur, pixelate, fill, erase"):
        anonymise_frame(rng_frame(), two_people(), "smudge")
    with pytest.raises(ValueError, match="colour must be three values"):
        anonymise_frame(rng_frame(), two_people(), "fill", colour=(0, 0, 300))
    with pytest.raises(ValueError, match="mask shape"):
        anonymise_frame(rng_frame(), np.zeros((10, 10), np.float32), "fill")


# ---------------------------------------------------------------------------------------------------------------
# anonymise_video


def test_video_hides_the_walker_and_keeps_the_rest(clip, tmp_path):
    out = tmp_path / "out" / "anon.mp4"
    result = anonymise_video(clip, DarkStub(), out, "fill", colour=(255, 0, 255), margin_px=2)
    assert result.path == out and result.frames == N and result.size == (W, H) and result.segmenter == "dark"
    assert result.segment_ms >= 0 and result.anonymise_ms > 0
    info = probe_video(out)
    assert (info["codec"], info["pix_fmt"], info["faststart"]) == ("h264", "yuv420p", True)
    frames = list(open_frames(out))
    assert len(frames) == N
    for i in (0, N // 2, N - 1):
        person = frames[i][34:46, block_x(i) + 2 : block_x(i) + 8].astype(int)
        assert np.abs(person - (255, 0, 255)).max() < 40, i  # magenta up to H.264 loss
    assert [p.name for p in out.parent.iterdir()] == ["anon.mp4"]


def test_audio_is_dropped(tmp_path):
    clip = tmp_path / "with_audio.mp4"
    with av.open(str(clip), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(10):
            container.mux(video.encode(av.VideoFrame.from_ndarray(scene(i), format="rgb24")))
        for i in range(5):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 16000, i * 1024
            container.mux(audio.encode(samples))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    with av.open(str(clip)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
    out = tmp_path / "anon.mp4"
    assert anonymise_video(clip, DarkStub(), out, "blur").frames == 10
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video"]


def test_a_failure_half_way_leaves_no_file(clip, tmp_path):
    out = tmp_path / "out" / "anon.mp4"
    with pytest.raises(RuntimeError, match="segmenter broke on frame 3"):
        anonymise_video(clip, DarkStub(fail_at=3), out, "blur")
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no temporary file left either
    # An earlier complete video under that name is kept when a new run fails.
    anonymise_video(clip, DarkStub(), out, "blur")
    before = out.read_bytes()
    with pytest.raises(RuntimeError):
        anonymise_video(clip, DarkStub(fail_at=3), out, "pixelate")
    assert out.read_bytes() == before and [p.name for p in out.parent.iterdir()] == ["anon.mp4"]


def test_erase_needs_a_plate_before_any_work(clip, tmp_path):
    out = tmp_path / "anon.mp4"
    with pytest.raises(ValueError, match="--plate IMAGE"):
        anonymise_video(clip, "mog2", out, "erase")
    with pytest.raises(ValueError, match="plate is 8x8 but .* is 96x80"):
        anonymise_video(clip, "mog2", out, "erase", plate=np.zeros((8, 8, 3), np.uint8))
    assert not out.exists()


def test_a_plate_or_checkpoint_nothing_uses_is_an_error(clip, plate_png, tmp_path):
    out = tmp_path / "anon.mp4"
    with pytest.raises(ValueError, match="neither segmenter 'mog2' nor style 'blur' uses one; drop --plate"):
        anonymise_video(clip, "mog2", out, "blur", plate=plate_png)
    with pytest.raises(ValueError, match="neither segmenter 'dark' nor style 'fill'"):
        anonymise_video(clip, DarkStub(), out, "fill", plate=plate_png)
    with pytest.raises(ValueError, match="segmenter 'mog2' takes no checkpoint; drop --checkpoint"):
        anonymise_video(clip, "mog2", out, "blur", checkpoint=tmp_path / "model.pt")
    assert not out.exists()


def test_erase_uses_the_segmenters_plate_and_a_given_one(clip, plate_png, tmp_path):
    plate = np.asarray(Image.open(plate_png))
    holder = DarkStub()
    holder.plate = plate  # a plate model keeps its plate as .plate
    runs = {
        "own": (holder, {}),
        "given": (DarkStub(), {"plate": plate_png}),
        "plate-diff": ("plate-diff", {"plate": plate_png}),
    }
    for name, (seg, opts) in runs.items():
        out = tmp_path / f"{name}.mp4"
        result = anonymise_video(clip, seg, out, "erase", margin_px=3, **opts)
        frames = list(open_frames(out))
        assert result.frames == N == len(frames)
        i = N // 2
        walker = frames[i][33:47, block_x(i) + 1 : block_x(i) + 9].astype(int)
        assert np.abs(walker - plate[33:47, block_x(i) + 1 : block_x(i) + 9]).mean() < 6, name  # the empty scene


def test_segmenter_plate_reads_plate_diff_and_plate_models_at_the_frame_size():
    from humanseg.segmenters import create_segmenter

    assert segmenter_plate(DarkStub(), (W, H)) is None
    holder = DarkStub()
    holder.plate = np.full((H // 2, W // 2, 3), 77, np.uint8)  # a plate model may keep it at its training size
    resized = segmenter_plate(holder, (W, H))
    assert resized.shape == (H, W, 3) and np.all(resized == 77)
    running = create_segmenter("plate-diff")  # no plate given: the running median of the frames seen
    assert segmenter_plate(running, (W, H)) is None
    running.segment(scene(0))
    np.testing.assert_array_equal(segmenter_plate(running, (W, H)), scene(0))


# ---------------------------------------------------------------------------------------------------------------
# The command line


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "humanseg", "anonymise", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


FAR = (slice(0, 22), slice(0, W))  # rows well above the walker (rows 30..49), at any frame


@pytest.mark.parametrize(("method", "style", "with_plate"), [("plate-diff", "erase", True), ("mog2", "fill", False)])
def test_cli_writes_a_playable_video_with_the_far_pixels_unchanged(
    clip, plate_png, tmp_path, method, style, with_plate
):
    out = tmp_path / "anon.mp4"
    plate = ["--plate", plate_png] if with_plate else []
    done = run_cli(clip, "-s", method, *plate, "--style", style, "--out", out)
    assert done.returncode == 0, done.stderr
    assert f"{N} frames of {W}x{H}" in done.stdout and "audio is not copied" in done.stdout
    source, result = decoded(clip), decoded(out)
    assert len(result) == len(source) == N
    for a, b in zip(source, result, strict=True):
        diff = np.abs(a[FAR].astype(int) - b[FAR])
        assert diff.mean() < 1.5 and diff.max() < 16  # H.264 re-encoding loss only
    moved = [np.abs(a.astype(int) - b).max() for a, b in zip(source, result, strict=True)]
    assert max(moved) > 60  # the walker was hidden somewhere


def test_cli_errors_are_one_clear_line(clip, tmp_path):
    done = run_cli(clip, "-s", "mog2", "--style", "erase", "--out", tmp_path / "x.mp4")
    assert done.returncode == 2
    assert done.stderr.startswith("error: style 'erase' needs the site's empty-scene plate: pass --plate IMAGE")
    assert "Traceback" not in done.stderr
    done = run_cli(clip, "-s", "mog2", "--style", "fill", "--colour", "1,2", "--out", tmp_path / "x.mp4")
    assert done.returncode == 2 and "expected R,G,B" in done.stderr
    assert not (tmp_path / "x.mp4").exists()
