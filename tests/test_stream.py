"""Live streams end to end: the test serves MPEG-TS over HTTP on 127.0.0.1 (PyAV encoding straight into the
socket, paced like a camera), drops the connection, comes back, and finally goes away for good."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from humanseg.stream import LiveSource, is_stream, redact, segment_live
from humanseg.video import VideoError

pytest_plugins = ["app_fixtures"]  # the app test below launches the app once (only when it runs)
# Gradio's queue calls a pandas option that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

SECRET = "s3cr3t-pa55"


def _frame(i: int, w: int, h: int) -> np.ndarray:
    """Gray scene with a bright 'person' walking left to right."""
    img = np.full((h, w, 3), 90, np.uint8)
    x = (i * 6) % (w - w // 8)
    img[h // 4 : h // 4 + h // 2, x : x + w // 8] = 230
    return img


class _Camera:
    """An HTTP 'camera': connection k gets ``bursts[k]`` frames at ``fps`` and is then closed (the drop);
    once the bursts are used up every request is refused with 503 (the camera is gone)."""

    def __init__(self, bursts: list[int], size: tuple[int, int] = (160, 120), fps: float = 25.0) -> None:
        self.bursts, self.size, self.fps = list(bursts), size, fps
        self.served = 0
        self.connections = 0
        self.auth_seen: list[str | None] = []
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                camera.auth_seen.append(self.headers.get("Authorization"))
                if not camera.bursts:
                    self.send_error(503, "camera gone")
                    return
                count = camera.bursts.pop(0)
                camera.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                camera.stream_to(self.wfile, count)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def stream_to(self, wfile: object, count: int) -> None:
        w, h = self.size
        # flush_packets: each frame leaves when it is made, as from a camera, not in 32 KB lumps
        out = av.open(wfile, "w", format="mpegts", container_options={"flush_packets": "1"})
        stream = out.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "10"}
        t0 = time.monotonic()
        try:
            for i in range(count):
                frame = av.VideoFrame.from_ndarray(_frame(self.served, w, h), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 1) / stream.codec_context.framerate
                for packet in stream.encode(frame):
                    out.mux(packet)
                self.served += 1
                time.sleep(max(0.0, t0 + (i + 1) / self.fps - time.monotonic()))
            for packet in stream.encode(None):
                out.mux(packet)
            out.close()
        except (BrokenPipeError, ConnectionResetError, av.FFmpegError):
            pass  # the reader went away first

    def url(self, credentials: bool = True) -> str:
        user = f"viewer:{SECRET}@" if credentials else ""
        return f"http://{user}127.0.0.1:{self.server.server_port}/live.ts"

    def __enter__(self) -> _Camera:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="humanseg.stream")
    yield caplog


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_is_stream_and_redact() -> None:
    assert is_stream("rtsp://cam/1") and is_stream("HTTPS://x/y.ts") and is_stream("/dev/video0")
    assert is_stream("udp://239.0.0.1:1234") and is_stream("tcp://10.0.0.2:5000")
    assert not is_stream("clip.mp4") and not is_stream("/dev/video") and not is_stream("folder/rtsp://x")
    assert redact("rtsp://admin:p%40ss@10.0.0.7:554/h264") == "rtsp://***@10.0.0.7:554/h264"
    assert redact("open rtsp://u@h/x and http://a:b@c:8/d failed") == "open rtsp://***@h/x and http://***@c:8/d failed"
    assert redact("rtsp://host/path?user=a") == "rtsp://host/path?user=a"


def test_live_run_reconnects_rotates_and_never_logs_credentials(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    with _Camera([50, 50]) as camera:
        result = segment_live(
            camera.url(), "mog2", tmp_path, rotate_s=0.5, retries=2, backoff_s=0.2, read_timeout_s=2.0,
        )  # fmt: skip
    assert result.stop == "lost" and "did not come back after 2 tries" in result.error
    assert camera.connections == 2 and result.reconnects == 1
    # Every frame that arrived was either segmented or skipped as stale; none were buffered beyond the newest.
    assert result.frames + result.skipped == result.received
    assert result.frames >= 20 and result.received <= camera.served == 100
    text = logs.text
    assert "reconnected" in text and "reconnecting in 0.2 s (try 1 of 2)" in text and "try 2 of 2" in text
    # Credentials: never in a log line, the result, the error, or a file name.
    everything = text + repr(result) + " ".join(p.name for p in tmp_path.iterdir())
    assert SECRET not in everything and "viewer" not in everything
    assert result.source == camera.url().replace(f"viewer:{SECRET}@", "***@")
    for kind in ("mask", "overlay"):
        files = result.files["mog2"][kind]
        assert len(files) >= 3  # about 1 s after each connection's probing, in 0.5 s files
        assert [_decoded_frames(f) for f in files] and sum(_decoded_frames(f) for f in files) == result.frames
        assert sorted(files) == files and all(f.exists() for f in files)
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]  # every file closed and renamed
    # The walker is segmented: the last mask file has white pixels where the bright square moves.
    with av.open(str(result.files["mog2"]["mask"][-1])) as masks:
        assert max(int((f.to_ndarray(format="gray") > 127).sum()) for f in masks.decode(video=0)) > 100
    # The files play in real time: about one second of video per second of stream, whatever was skipped.
    with av.open(str(result.files["mog2"]["mask"][0])) as first:
        stream = first.streams.video[0]
        seconds = float(stream.duration * stream.time_base)
    assert 0.3 <= seconds <= 0.6


class _Slow:
    """A segmenter four times slower than the camera's 40 ms frame interval."""

    name = "slow"

    def segment(self, frame: np.ndarray) -> np.ndarray:
        time.sleep(0.16)
        return np.zeros(frame.shape[:2], np.float32)


def test_slow_segmentation_skips_frames_and_stays_live(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    with _Camera([40]) as camera:
        result = segment_live(camera.url(False), _Slow(), tmp_path, kinds=["mask"], retries=0)
    assert result.stop == "lost" and result.reconnects == 0
    assert result.skipped >= 20 and result.frames + result.skipped == result.received == 40
    assert result.frames <= 15
    (video,) = result.files["slow"]["mask"]
    assert _decoded_frames(video) == result.frames
    assert f"{result.skipped} skipped" in logs.text


def test_stop_event_duration_and_preview(tmp_path: Path) -> None:
    stop = threading.Event()
    previews = []

    def on_frame(preview: object) -> None:
        previews.append(preview)
        if len(previews) == 5:
            stop.set()

    with _Camera([200, 200]) as camera:
        result = segment_live(camera.url(), ["mog2", "plate-diff"], tmp_path / "a", stop=stop, on_frame=on_frame)
        assert result.stop == "stopped" and result.frames == 5
        assert set(previews[-1].overlays) == {"mog2", "plate-diff"} and previews[-1].frames == 5
        assert previews[-1].overlays["mog2"].shape == (120, 160, 3)
        timed = segment_live(camera.url(), "mog2", tmp_path / "b", duration_s=2.0, kinds=["overlay"])
        assert timed.stop == "duration" and 1.9 <= timed.seconds <= 3.0
        (video,) = timed.files["mog2"]["overlay"]
        assert _decoded_frames(video) == timed.frames > 10


class _Failing:
    """A segmenter that breaks on its fourth frame."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def segment(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == 4:
            raise RuntimeError("model crashed")
        return np.zeros(frame.shape[:2], np.float32)


def test_a_failure_keeps_the_files_so_far_and_a_plate_follows_the_stream_size(tmp_path: Path) -> None:
    with _Camera([200, 200, 200]) as camera:
        with pytest.raises(RuntimeError, match="model crashed"):
            segment_live(camera.url(), _Failing(), tmp_path / "a", kinds=["mask"], rotate_s=0.04)
        files = sorted((tmp_path / "a").iterdir())
        assert files and not [p for p in files if "partial" in p.name]  # closed and renamed, nothing half-written
        assert sum(_decoded_frames(p) for p in files) == 3
        # A plate chosen by the stream's size (the app: the site's plate of the camera's size); a wrong size is
        # an error that names both sizes.
        sizes = []

        def plate_for(size: tuple[int, int]) -> np.ndarray:
            sizes.append(size)
            return np.full((size[1], size[0], 3), 90, np.uint8)

        result = segment_live(camera.url(), "plate-diff", tmp_path / "b", plate=plate_for, max_frames=3)
        assert sizes == [(160, 120)] and result.stop == "max-frames" and result.frames == 3
        with pytest.raises(
            VideoError, match=r"plate is 10x8 but stream http://\*\*\*@127.0.0.1:\d+/live.ts is 160x120"
        ):
            segment_live(camera.url(), "plate-diff", tmp_path / "c", plate=np.zeros((8, 10, 3), np.uint8))


def test_open_failure_is_immediate_and_redacted(tmp_path: Path) -> None:
    with _Camera([]) as camera:
        url = camera.url()
        t0 = time.monotonic()
        with pytest.raises(VideoError) as err:
            LiveSource(url, retries=3)
    assert time.monotonic() - t0 < 3.0
    assert "cannot open stream http://***@127.0.0.1" in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(ValueError, match="not a stream"):
        LiveSource("clip.mp4")


def test_cli_segment_and_anonymise_take_a_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from humanseg.cli import main

    with _Camera([200, 200]) as camera:
        rc = main(["segment", camera.url(), "-s", "mog2", "--out", str(tmp_path / "seg"), "--max-frames", "8"])
        out = capsys.readouterr().out
        assert rc == 0 and "8 frames" in out and "skipped" in out and SECRET not in out
        assert sorted(p.name.rsplit("_", 2)[0] for p in (tmp_path / "seg").iterdir()) == ["mog2_mask", "mog2_overlay"]

        # Ctrl-C ends the run cleanly: the current file is closed and renamed.
        timer = threading.Timer(3.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        rc = main(
            ["anonymise", camera.url(), "-s", "mog2", "--style", "blur", "--out", str(tmp_path / "anon" / "cam.mp4")]
        )
        timer.join()
        out = capsys.readouterr().out
    assert rc == 0 and "stopped" in out and SECRET not in out
    (video,) = (tmp_path / "anon").iterdir()
    assert video.name.startswith("cam_") and video.suffix == ".mp4" and _decoded_frames(video) > 0


def test_app_live_preview_stop_and_no_credentials(
    app_server: object, client: object, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    from gradio_client import Client

    with _Camera([1000]) as camera:
        job = client.submit(None, camera.url(), [], ["mog2"], "blur", "", api_name="/live")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("frames in" in str(o[1]) for o in job.outputs()):
            time.sleep(0.2)
        running = [o for o in job.outputs() if "frames in" in str(o[1])]
        assert running, job.outputs()
        preview, status, _ = running[-1]
        assert "Live from `http://***@127.0.0.1" in status and "mog2" in status and "ms/frame" in status
        assert Image.open(preview).size[0] == 2 * 160  # input | mog2 overlay
        # Another browser session's Stop does not end this run; this session's does.
        Client(app_server.url, verbose=False).predict(api_name="/stop_live")
        time.sleep(1.0)
        assert not job.done()
        client.predict(api_name="/stop_live")
        _, summary, files = job.result(timeout=20)
    assert "Stopped." in summary and "skipped to stay live" in summary
    kinds = sorted(Path(f).name.split("_")[1] for f in files)
    assert kinds == ["anonymised", "mask", "overlay"]
    assert all(_decoded_frames(Path(f)) > 0 for f in files)
    everything = logs.text + summary + str(job.outputs())
    assert SECRET not in everything and "viewer" not in everything


def test_a_following_plate_counts_its_update_time_at_the_cameras_rate(tmp_path: Path) -> None:
    # A 10 fps camera: the plate's time constant is in seconds, so its per-frame rate is 2.5x that of 25 fps.
    from humanseg.segmenters.plate_diff import PlateDiffSegmenter

    seg = PlateDiffSegmenter(plate=np.full((120, 160, 3), 90, np.uint8))
    assert seg.maintained is not None and seg.maintained.fps == 25.0
    # 60 frames: opening probes the frame rate for about 2 s (20 frames at 10 fps) and gets those in one burst, of
    # which the newest alone is segmented; a 20-frame camera was gone by then, so a second frame was a race.
    with _Camera([60], fps=10.0) as camera:
        result = segment_live(camera.url(), seg, tmp_path, kinds=["mask"], max_frames=2)
    assert result.frames == 2 and seg.maintained.fps == pytest.approx(10.0)
