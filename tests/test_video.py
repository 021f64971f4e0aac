"""humanseg.video: readers, labelled sequences, writers and the errors users see."""

from __future__ import annotations

import zipfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from humanseg.video import (
    H264Writer,
    VideoError,
    frame_number,
    list_images,
    load_sequence,
    open_frames,
    probe_video,
    read_image,
    read_label,
    write_png_masks,
    zip_folder,
)

W, H, N = 96, 64, 40


def synthetic_frames(n: int = N, w: int = W, h: int = H) -> list[np.ndarray]:
    """A flat blue-gray scene with a yellow block sliding right 2 px per frame."""
    frames = []
    for i in range(n):
        f = np.empty((h, w, 3), np.uint8)
        f[:] = (40, 80, 120)
        x = (2 * i) % (w - 20)
        f[10:30, x : x + 20] = (250, 200, 30)
        frames.append(f)
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    with H264Writer(path, fps) as writer:
        for f in frames:
            writer.write(f)
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4", synthetic_frames())


# ------------------------------------------------------------------------------------------------------------
# H.264 writing and reading


def test_h264_round_trip(clip: Path) -> None:
    frames = synthetic_frames()
    with open_frames(clip) as reader:
        assert reader.size == (W, H)
        assert reader.fps == pytest.approx(25.0)
        assert reader.frame_count == N
        got = list(reader)
    assert len(got) == N
    assert all(g.shape == (H, W, 3) and g.dtype == np.uint8 and g.flags.c_contiguous for g in got)
    err = np.abs(np.stack(got).astype(np.int16) - np.stack(frames).astype(np.int16))
    assert err.mean() < 4.0  # lossy, but close (crf 20)
    # The moving block is where it was written in every frame (frame-order check, not just similarity).
    for i in (0, 17, 39):
        x = (2 * i) % (W - 20)
        assert got[i][20, x + 10, 0] > 200 and got[i][20, x + 10, 2] < 80


def test_h264_codec_pix_fmt_faststart(clip: Path) -> None:
    info = probe_video(clip)
    assert info["codec"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (W, H)
    assert info["frames"] == N
    assert info["faststart"] is True  # moov before mdat: browsers start playing before the download ends
    with av.open(str(clip)) as container:
        assert container.streams.video[0].codec_context.profile is not None
        assert container.format.name.startswith("mov,mp4")


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    frames = synthetic_frames(5, 95, 63)
    path = write_clip(tmp_path / "odd.mp4", frames)
    info = probe_video(path)
    assert (info["width"], info["height"]) == (96, 64)
    got = list(open_frames(path))
    assert len(got) == 5 and got[0].shape == (64, 96, 3)
    # The padding repeats the last column/row, so the frame content is not shifted or darkened.
    assert np.abs(got[2][:63, :95].astype(int) - frames[2].astype(int)).mean() < 4
    assert np.abs(got[2][:, 95].astype(int) - got[2][:, 94].astype(int)).mean() < 6


def test_writer_accepts_gray_and_rgba_and_rejects_size_change(tmp_path: Path) -> None:
    path = tmp_path / "gray.mp4"
    gray = np.zeros((H, W), np.uint8)
    gray[:, W // 2 :] = 255
    rgba = np.dstack([np.stack([gray] * 3, axis=2), np.full((H, W), 7, np.uint8)])
    with H264Writer(path) as writer:
        writer.write(gray)
        writer.write(rgba)
        writer.write(gray.astype(bool))
        with pytest.raises(VideoError, match=r"48x32 but the video is 96x64"):
            writer.write(np.zeros((32, 48, 3), np.uint8))
    got = list(open_frames(path))
    assert len(got) == 3
    for g in got:
        assert g[:, : W // 2 - 4].max() < 20 and g[:, W // 2 + 4 :].min() > 235


def test_step_and_max_frames(clip: Path) -> None:
    reader = open_frames(clip, step=3)
    assert reader.frame_count == 14 and reader.fps == pytest.approx(25 / 3)
    got = list(reader)
    assert len(got) == 14
    x = (2 * 3) % (W - 20)  # second yielded frame is source frame 3
    assert got[1][20, x + 10, 0] > 200
    reader = open_frames(clip, step=2, max_frames=5)
    assert reader.frame_count == 5 and len(list(reader)) == 5
    with pytest.raises(ValueError, match="step"):
        open_frames(clip, step=0)
    with pytest.raises(ValueError, match="max_frames"):
        open_frames(clip, max_frames=0)


def test_reader_can_be_iterated_once(clip: Path) -> None:
    reader = open_frames(clip, max_frames=2)
    assert len(list(reader)) == 2
    with pytest.raises(RuntimeError, match="only once"):
        list(reader)


@pytest.mark.parametrize(
    ("suffix", "codec", "pix_fmt"),
    [(".avi", "mpeg4", "yuv420p"), (".mkv", "libx264", "yuv420p"), (".webm", "libvpx", "yuv420p")],
)
def test_reads_other_containers(tmp_path: Path, suffix: str, codec: str, pix_fmt: str) -> None:
    frames = synthetic_frames(12)
    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    reader = open_frames(path)
    assert reader.size == (W, H) and reader.fps == pytest.approx(25.0)
    got = list(reader)
    assert len(got) == 12
    assert np.abs(got[5].astype(int) - frames[5].astype(int)).mean() < 8


def test_reads_gray_video_as_rgb(tmp_path: Path) -> None:
    path = tmp_path / "gray.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "gray"
        for v in (0, 128, 255):
            frame = av.VideoFrame.from_ndarray(np.full((H, W), v, np.uint8), format="gray")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    got = list(open_frames(path))
    assert [g.shape for g in got] == [(H, W, 3)] * 3
    assert [int(g[5, 5, 1]) for g in got] == pytest.approx([0, 128, 255], abs=2)
    assert all((g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all() for g in got)


# ------------------------------------------------------------------------------------------------------------
# Images, folders, PNG masks and zips


def test_read_image_converts_gray_rgba_palette_and_16bit(tmp_path: Path) -> None:
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red: alpha dropped, color kept
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(gray.astype(np.uint16) * 256).save(tmp_path / "s.png")

    g = read_image(tmp_path / "g.png")
    assert g.shape == (6, 8, 3) and g.dtype == np.uint8
    assert (g[..., 0] == gray).all() and (g[..., 2] == gray).all()
    a = read_image(tmp_path / "a.png")
    assert a.shape == (6, 8, 3) and (a[..., 0] == 200).all() and (a[..., 1:] == 0).all()
    s = read_image(tmp_path / "s.png")
    assert s.shape == (6, 8, 3) and (s[..., 1] == gray).all()


def test_read_label_maps_palette_to_gray(tmp_path: Path) -> None:
    # A 2-entry palette where raw index 1 means gray 255 (as in some SBI masks).
    raw = np.zeros((4, 5), np.uint8)
    raw[1:3, 1:4] = 1
    img = Image.fromarray(raw, "P")
    img.putpalette([0, 0, 0, 255, 255, 255])
    img.save(tmp_path / "gt000001.png")
    label = read_label(tmp_path / "gt000001.png")
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 255}
    assert (label[1:3, 1:4] == 255).all() and label.sum() == 6 * 255


def test_image_folder_reader_gray_and_rgba_frames(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.full((H, W), 90, np.uint8), "L").save(folder / "f10.png")
    Image.fromarray(np.full((H, W, 4), 150, np.uint8), "RGBA").save(folder / "f2.png")
    Image.fromarray(np.full((H, W, 3), 30, np.uint8)).save(folder / "f7.png")
    (folder / "notes.txt").write_text("not a frame")
    reader = open_frames(folder)
    assert reader.size == (W, H) and reader.frame_count == 3 and reader.fps == pytest.approx(25.0)
    got = list(reader)
    # Ordered by number (2, 7, 10), not by name ("f10" < "f2").
    assert [int(g[0, 0, 0]) for g in got] == [150, 30, 90]
    assert all(g.shape == (H, W, 3) for g in got)


def test_frame_number_and_list_images(tmp_path: Path) -> None:
    assert frame_number("in000600.jpg") == 600
    assert frame_number("CaVignal_000004.png") == 4
    assert frame_number("00099.jpg") == 99
    assert frame_number("plate.png") is None
    for name in ("in000010.jpg", "in000002.jpg", "in000100.jpg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    assert [p.name for p in list_images(tmp_path)] == ["in000002.jpg", "in000010.jpg", "in000100.jpg"]


def test_write_png_masks_and_zip(tmp_path: Path) -> None:
    probs = [np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6), np.ones((4, 6), bool), np.zeros((4, 6), np.uint8)]
    paths = write_png_masks(probs, tmp_path / "masks")
    assert [p.name for p in paths] == ["000000.png", "000001.png", "000002.png"]
    first = read_label(paths[0])
    assert set(np.unique(first)) == {0, 255}
    assert ((first == 255) == (probs[0] > 0.5)).all()
    assert (read_label(paths[1]) == 255).all() and (read_label(paths[2]) == 0).all()
    zip_path = zip_folder(tmp_path / "masks", tmp_path / "masks.zip")
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["000000.png", "000001.png", "000002.png"]
        assert zf.read("000001.png") == paths[1].read_bytes()


# ------------------------------------------------------------------------------------------------------------
# Labelled sequences


def _cdnet(root: Path, numbers: list[int], labelled: list[int], size=(10, 6), prefix="in") -> Path:
    (root / "input").mkdir(parents=True)
    (root / "groundtruth").mkdir()
    for n in numbers:
        Image.new("RGB", size, (n, n, n)).save(root / "input" / f"{prefix}{n:06d}.png")
    for n in labelled:
        Image.new("L", size, 255 if n % 2 else 0).save(root / "groundtruth" / f"gt{n:06d}.png")
    return root


def test_cdnet_pairs_by_number_with_gaps(tmp_path: Path) -> None:
    root = _cdnet(tmp_path / "seq", [3, 7, 10, 12], [3, 10, 12, 99])
    (root / "temporalROI.txt").write_text("5 12\n")
    # Palette ROI whose raw index 0 is gray 255 (CDnet office style): must read as "evaluate".
    roi = Image.fromarray(np.zeros((6, 10), np.uint8), "P")
    roi.putpalette([255, 255, 255, 0, 0, 0])
    roi.save(root / "ROI.bmp")
    Image.new("RGB", (10, 6)).save(root / "empty_bg000001.jpg")

    seq = load_sequence(root)
    assert seq.layout == "cdnet" and seq.name == "seq" and seq.size == (10, 6)
    assert [(it.number, it.image.name, it.label and it.label.name) for it in seq.items] == [
        (3, "in000003.png", "gt000003.png"),
        (7, "in000007.png", None),
        (10, "in000010.png", "gt000010.png"),
        (12, "in000012.png", "gt000012.png"),
    ]
    assert seq.temporal_roi == (5, 12)
    assert seq.roi is not None and seq.roi.dtype == bool and seq.roi.shape == (6, 10) and seq.roi.all()
    assert [p.name for p in seq.empty_backgrounds] == ["empty_bg000001.jpg"]
    assert [it.number for it in seq.scored_items()] == [10, 12]
    assert [it.number for it in seq.scored_items(skip_first=True)] == [12]
    frame, label = seq.read(seq.items[2])
    assert frame[0, 0, 0] == 10 and label is not None and (label == 0).all()
    assert [it.number for it, _, _ in seq.frames(seq.scored_items())] == [10, 12]


def test_cavignal_style_names_and_open_frames_on_sequence(tmp_path: Path) -> None:
    root = _cdnet(tmp_path / "CaV", [0, 2, 4], [0, 2, 4], prefix="CaVignal_")
    seq = load_sequence(root)
    assert [it.number for it in seq.scored_items()] == [0, 2, 4]
    assert seq.temporal_roi is None and seq.roi is None
    got = list(open_frames(root))  # a sequence folder reads its input frames
    assert [int(g[0, 0, 0]) for g in got] == [0, 2, 4]


def test_davis_layout(tmp_path: Path) -> None:
    (tmp_path / "d" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "d" / "Annotations").mkdir()
    for n in range(3):
        Image.new("RGB", (8, 4)).save(tmp_path / "d" / "JPEGImages" / f"{n:05d}.jpg")
        Image.new("L", (8, 4), 255).save(tmp_path / "d" / "Annotations" / f"{n:05d}.png")
    seq = load_sequence(tmp_path / "d")
    assert seq.layout == "davis" and len(seq.items) == 3 and seq.size == (8, 4)
    assert all(it.label is not None for it in seq.items)


EXPECTED = {
    # name: (items, first number, last number, (w, h), temporal ROI, scored, empty backgrounds)
    "pedestrians": (51, 600, 650, (360, 240), (600, 650), 51, 1),
    "HallAndMonitor": (149, 0, 294, (352, 240), (0, 295), 149, 0),
    "CaVignal": (129, 0, 256, (200, 136), None, 129, 0),
}


def test_real_dev_sequences(dev_sequence: Path) -> None:
    n, first, last, size, troi, scored, n_empty = EXPECTED[dev_sequence.name]
    seq = load_sequence(dev_sequence)
    assert seq.layout == "cdnet" and len(seq.items) == n and seq.size == size
    assert (seq.items[0].number, seq.items[-1].number) == (first, last)
    assert all(it.label is not None and it.label.stem[2:] == it.image.stem[-6:] for it in seq.items)
    assert seq.temporal_roi == troi
    assert len(seq.scored_items()) == scored and len(seq.scored_items(skip_first=True)) == scored - 1
    assert len(seq.empty_backgrounds) == n_empty
    if seq.roi is not None:
        assert seq.roi.shape == (size[1], size[0]) and seq.roi.all()  # these ROI.bmp files are all 255
    frame, label = seq.read(seq.scored_items()[-1])
    assert frame.shape == (size[1], size[0], 3) and label is not None
    assert set(np.unique(label)) <= {0, 50, 85, 170, 255} and (label == 255).any()


def test_real_sbi_numbering(hall: Path, cavignal: Path) -> None:
    assert [it.number for it in load_sequence(hall).items[:5]] == [0, 1, 2, 4, 6]
    cav = load_sequence(cavignal)
    assert [it.number for it in cav.items[:3]] == [0, 2, 4]
    assert cav.items[1].image.name == "CaVignal_000002.png" and cav.items[1].label.name == "gt000002.png"


@pytest.mark.parametrize(("fixture", "count"), [("parkour", 100), ("dance_twirl", 90)])
def test_real_davis_clips(request: pytest.FixtureRequest, fixture: str, count: int) -> None:
    seq = load_sequence(request.getfixturevalue(fixture))
    assert seq.layout == "davis" and len(seq.items) == count and seq.size == (854, 480)
    assert len(seq.scored_items()) == count
    _, label = seq.read(seq.items[10])
    assert set(np.unique(label)) == {0, 255}


def test_open_frames_on_real_sequence_streams(pedestrians: Path) -> None:
    reader = open_frames(pedestrians, step=10)
    assert reader.size == (360, 240) and reader.frame_count == 6
    assert len(list(reader)) == 6


# ------------------------------------------------------------------------------------------------------------
# Bad input: one clear VideoError naming the file and the problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"nope\.mp4.*not found"):
        open_frames(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match=r"nope\.png.*not found"):
        read_image(tmp_path / "nope.png")


def test_text_file_renamed_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("these are meeting notes, not a video\n" * 20)
    with pytest.raises(VideoError, match=r"notes\.mp4: not a readable video"):
        open_frames(path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.mp4: file is empty"):
        open_frames(tmp_path / "empty.mp4")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_mp4(clip: Path, tmp_path: Path, keep: float) -> None:
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(VideoError, match=r"cut\.mp4: .*(truncated|corrupt)"):
        list(open_frames(cut))


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "libx264"), (".mkv", "ffv1"), (".avi", "mpeg4")])
def test_zero_frame_video(tmp_path: Path, suffix: str, codec: str) -> None:
    path = tmp_path / f"zero{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        container.start_encoding()  # header (and trailer on close), no frames at all
    assert path.stat().st_size > 0
    with pytest.raises(VideoError, match=r"zero\.(mp4|mkv|avi): .*zero (decodable )?frames"):
        open_frames(path)


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "sound.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
    with pytest.raises(VideoError, match=r"sound\.mkv: file has no video stream"):
        open_frames(path)


def test_empty_folder_and_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match=r"empty: folder is empty"):
        open_frames(tmp_path / "empty")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    with pytest.raises(VideoError, match=r"docs: folder has no images.*a\.txt"):
        open_frames(tmp_path / "docs")


def test_single_image_is_not_a_video(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    with pytest.raises(VideoError, match="single image"):
        open_frames(tmp_path / "x.png")


def test_corrupt_image(tmp_path: Path) -> None:
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "in000001.png")
    data = (tmp_path / "in000001.png").read_bytes()
    (tmp_path / "in000002.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"in000002\.png"):
        list(open_frames(tmp_path))


def test_folder_frames_of_different_sizes(tmp_path: Path) -> None:
    Image.new("RGB", (8, 6)).save(tmp_path / "f1.png")
    Image.new("RGB", (10, 6)).save(tmp_path / "f2.png")
    with pytest.raises(VideoError, match=r"f2\.png: frame size 10x6 differs .* 8x6"):
        list(open_frames(tmp_path))


def test_mask_size_mismatch_names_both_sizes(tmp_path: Path) -> None:
    root = _cdnet(tmp_path / "seq", [1, 2], [1])
    Image.new("L", (12, 6)).save(root / "groundtruth" / "gt000002.png")
    with pytest.raises(VideoError, match=r"gt000002\.png: mask size 12x6 differs from frame in000002\.png size 10x6"):
        load_sequence(root)


def test_not_a_sequence_folder(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not a labelled sequence"):
        load_sequence(tmp_path)
    with pytest.raises(VideoError, match="not found"):
        load_sequence(tmp_path / "missing")


def test_bad_temporal_roi(tmp_path: Path) -> None:
    root = _cdnet(tmp_path / "seq", [1], [1])
    (root / "temporalROI.txt").write_text("first last")
    with pytest.raises(VideoError, match=r"temporalROI\.txt: expected two frame numbers"):
        load_sequence(root)
