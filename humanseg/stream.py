"""Live cameras as sources: a stream URL (``rtsp://``, ``http(s)://``, ``udp://``, ``tcp://`` ...) or a capture
device (``/dev/videoN``) segmented until a duration, a frame count or a stop, into rotating video files.

Three pieces, each with one job:

- :class:`LiveSource` reads the stream with PyAV in a thread (TCP transport for RTSP, a read timeout), reconnects
  with bounded exponential backoff (each try logged) and keeps only the newest frame: when segmentation is slower
  than the camera the frames in between are counted as skipped, so memory stays flat and the output stays live.
- :class:`RotatingVideo` writes one output as consecutive H.264 files, each under a hidden temporary name and
  renamed when complete; timestamps come from the arrival clock, so a file plays in real time however many
  frames were skipped. A crash or a power cut loses at most the file being written.
- :func:`segment_live` runs segmenters over a :class:`LiveSource` into per-method mask, overlay and anonymised
  videos; the CLI (``segment``/``anonymise`` given a URL) and the app's Segment tab call it.

Credentials in a URL (``rtsp://user:pass@host/...``) never reach a log line, an error or a result: every text
derived from the URL goes through :func:`redact`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from humanseg.anonymise import anonymise_frame, check_style, has_plate, segmenter_plate
from humanseg.checks import check_frame_size
from humanseg.render import mask_image, overlay
from humanseg.segment import SegmenterLike, resolve_segmenters, safe_filename, segment_frames, unique_names
from humanseg.timing import WarmMean
from humanseg.video import VideoError, read_image, to_rgb

log = logging.getLogger(__name__)

#: URL schemes read as live streams (FFmpeg's protocols of the same names).
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_URL = re.compile(rf"^(?:{'|'.join(STREAM_SCHEMES)})://", re.IGNORECASE)
_DEVICE = re.compile(r"^/dev/video\d+$")
# user[:password]@ right after any scheme://, up to the host; '@' inside a password is taken as part of it.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")

DEFAULT_ROTATE_S = 600.0  # one output file per 10 minutes: a crash loses at most that much


def is_stream(source: object) -> bool:
    """Whether ``source`` names a live stream (a URL of :data:`STREAM_SCHEMES`) or a capture device."""
    text = str(source)
    return bool(_URL.match(text) or _DEVICE.match(text))


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it hidden: ``rtsp://user:pass@host/x`` -> ``rtsp://***@host/x``."""
    return _USERINFO.sub(r"\1***@", text)


class StreamLost(VideoError):
    """The stream dropped and did not come back within the allowed reconnection tries."""


@dataclass
class LiveFrame:
    """One frame of a live source: RGB ``uint8`` H x W x 3 and its arrival time (seconds, monotonic clock)."""

    image: np.ndarray
    time_s: float


class LiveSource:
    """A live stream or capture device read in a background thread, newest frame only.

    ``open_timeout_s``/``read_timeout_s``: how long opening and each read may block before the connection counts
    as lost. After a loss, up to ``retries`` reconnections are tried, ``backoff_s`` seconds after the first and
    twice as long after each further failure (at most ``max_backoff_s``); a frame received resets the count.
    Opening is synchronous, so a wrong URL or a refused connection is an error at once, not after the retries.

    Iterate :meth:`frames` for the newest frame each time the consumer is ready; frames that arrived meanwhile
    are counted in :attr:`skipped`. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        source: str,
        *,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        if not is_stream(source):
            raise ValueError(
                f"{redact(str(source))!r} is not a stream: expected a URL starting with "
                f"{', '.join(s + '://' for s in STREAM_SCHEMES)} or a capture device such as /dev/video0"
            )
        if retries < 0 or backoff_s < 0:
            raise ValueError(f"retries and backoff must be >= 0, got retries={retries}, backoff_s={backoff_s}")
        self.source = str(source)
        self.shown = redact(self.source)  # the only form of the URL that is logged or shown
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self.received = 0  # frames decoded from the stream
        self.skipped = 0  # frames replaced by a newer one before the consumer took them
        self.reconnects = 0  # successful reconnections
        self.lost: StreamLost | None = None  # set when the retries ran out
        self._cond = threading.Condition()
        self._latest: tuple[Any, float] | None = None
        self._stop = threading.Event()
        container = self._open()
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 25.0  # nominal: output files carry arrival times anyway
        self.size = (stream.codec_context.width, stream.codec_context.height)  # as first opened
        check_frame_size(*self.size, self.shown)  # the same memory bound as files (HUMANSEG_MAX_PIXELS)
        self._thread = threading.Thread(target=self._read, args=(container,), name="humanseg-live", daemon=True)
        self._thread.start()

    def _open(self) -> Any:
        import av

        options: dict[str, str] = {}
        fmt = None
        if self.source.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"  # UDP loses packets (smeared frames) on busy networks
        if _DEVICE.match(self.source):
            fmt = "v4l2"
        try:
            container = av.open(
                self.source, format=fmt, options=options, timeout=(self.open_timeout_s, self.read_timeout_s)
            )
        except (av.FFmpegError, OSError) as err:
            raise VideoError(f"cannot open stream {self.shown}: {redact(str(err))}") from None
        if not container.streams.video:
            container.close()
            raise VideoError(f"stream {self.shown} has no video")
        return container

    def _read(self, container: Any) -> None:
        """The reader thread: decode, publish the newest frame, reconnect on a loss until the tries run out."""
        import av

        failures = 0
        while not self._stop.is_set():
            reason = "the stream ended"
            try:
                for frame in container.decode(video=0):
                    failures = 0
                    self._publish(frame)
                    if self._stop.is_set():
                        break
            except (av.FFmpegError, OSError) as err:
                reason = redact(str(err))
            finally:
                container.close()
            container = None
            while container is None and not self._stop.is_set():
                failures += 1
                if failures > self.retries:
                    self.lost = StreamLost(
                        f"stream {self.shown} was lost ({reason}) and did not come back after {self.retries} tries"
                    )
                    log.error("%s", self.lost)
                    self._stop.set()
                    break
                delay = min(self.backoff_s * 2 ** (failures - 1), self.max_backoff_s)
                log.warning(
                    "stream %s lost (%s); reconnecting in %.1f s (try %d of %d)",
                    self.shown, reason, delay, failures, self.retries,
                )  # fmt: skip
                if self._stop.wait(delay):
                    break
                try:
                    container = self._open()
                except VideoError as err:
                    reason = str(err)
                    continue
                self.reconnects += 1
                log.warning("stream %s reconnected (try %d)", self.shown, failures)
        with self._cond:
            self._cond.notify_all()  # a waiting consumer sees the end

    def _publish(self, frame: Any) -> None:
        with self._cond:
            if self._latest is not None:
                self.skipped += 1
            self._latest = (frame, time.monotonic())
            self.received += 1
            self._cond.notify_all()

    def frames(self, halted: Callable[[], bool] = lambda: False, poll_s: float = 0.2) -> Iterator[LiveFrame]:
        """The newest frame each time the caller asks, until ``halted()`` (checked every ``poll_s`` seconds, also
        while the stream stalls), the source is closed, or the stream is lost."""
        while not halted():
            with self._cond:
                while self._latest is None and not self._stop.is_set() and not halted():
                    self._cond.wait(poll_s)  # a timeout, so a stop is seen while no frame comes
                if self._latest is None:
                    return
                frame, arrived = self._latest
                self._latest = None
            # Converted here, not in the reader thread: frames that end up skipped cost no conversion.
            yield LiveFrame(frame.to_ndarray(format="rgb24"), arrived)

    def close(self) -> None:
        """Stop reading (within the read timeout) and release the connection; idempotent."""
        self._stop.set()
        self._thread.join(self.read_timeout_s + 1.0)

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RotatingVideo:
    """One output as consecutive H.264 mp4 files ``<folder>/<stem>_<YYYYmmdd-HHMMSS>_<NNNN>.mp4`` (UTC start,
    file number), each written as ``.<name>.partial.mp4`` and renamed by :meth:`rotate`/:meth:`close`.

    Frames carry their arrival time, so a file plays in real time even when frames were skipped (variable
    frame rate). Odd sizes are padded to even, as :class:`humanseg.video.H264Writer` does.
    """

    def __init__(self, folder: Path, stem: str, *, crf: int = 23, preset: str = "veryfast") -> None:
        self.folder, self.stem, self.crf, self.preset = Path(folder), stem, crf, preset
        self.files: list[Path] = []  # complete files, in order
        self.frames: list[int] = []  # frames in each complete file
        self._container: Any = None
        self._stream: Any = None
        self._partial: Path | None = None
        self._final: Path | None = None
        self._t0 = 0.0
        self._last_ms = -1
        self._count = 0

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        """Append a frame that arrived at ``time_s`` (monotonic seconds); opens a new file when none is open."""
        import av

        h, w = rgb.shape[:2]
        if self._container is None:
            self._open(w, h, time_s)
        ms = max(round((time_s - self._t0) * 1000), self._last_ms + 1)  # strictly increasing
        padded = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if (h % 2 or w % 2) else rgb
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
        frame.pts, frame.time_base = ms, Fraction(1, 1000)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._last_ms = ms
        self._count += 1

    def _open(self, width: int, height: int, time_s: float) -> None:
        import av

        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        self._final = self.folder / f"{self.stem}_{stamp}_{len(self.files) + 1:04d}.mp4"
        self._partial = self._final.with_name(f".{self._final.stem}.partial.mp4")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self._partial), "w", format="mp4", container_options={"movflags": "+faststart"})
        stream = self._container.add_stream("libx264", rate=25)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)  # pts in milliseconds of arrival time
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream
        self._t0, self._last_ms, self._count = time_s, -1, 0

    def rotate(self) -> Path | None:
        """Finish the current file and rename it into place (the next write starts a new one); its path."""
        container, self._container = self._container, None
        if container is None:
            return None
        try:
            for packet in self._stream.encode(None):
                container.mux(packet)
        finally:
            container.close()
        assert self._partial is not None and self._final is not None
        self._partial.replace(self._final)
        self.files.append(self._final)
        self.frames.append(self._count)
        return self._final

    close = rotate


@dataclass
class LivePreview:
    """What a live run shows while it runs: the newest overlay per method and running figures."""

    frame: np.ndarray
    overlays: dict[str, np.ndarray]
    ms_per_frame: dict[str, float]  # running mean per method, first (warm-up) frame excluded
    frames: int
    skipped: int
    reconnects: int
    seconds: float


@dataclass
class LiveResult:
    """What :func:`segment_live` did. ``source`` is the redacted URL; ``files``: every complete output file per
    method and kind (``mask``, ``overlay``, ``anonymised``); ``stop``: why the run ended (``duration``,
    ``max-frames``, ``stopped`` or ``lost``)."""

    source: str
    out_dir: Path
    size: tuple[int, int]
    frames: int
    skipped: int
    received: int
    reconnects: int
    seconds: float
    stop: str
    ms_per_frame: dict[str, float] = field(default_factory=dict)
    files: dict[str, dict[str, list[Path]]] = field(default_factory=dict)
    error: str | None = None

    @property
    def frames_per_second(self) -> float:
        """Frames segmented per wall-clock second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


KINDS = ("mask", "overlay", "anonymised")


def segment_live(
    source: str | LiveSource,
    segmenters: str | SegmenterLike | Iterable[str | SegmenterLike],
    out_dir: str | Path,
    *,
    plate: str | Path | np.ndarray | Callable[[tuple[int, int]], str | Path | None] | None = None,
    checkpoint: str | Path | None = None,
    kinds: Sequence[str] = ("mask", "overlay"),
    anonymise: str | None = None,
    margin_px: int | None = None,
    colour: tuple[int, int, int] | None = None,
    threshold: float = 0.5,
    duration_s: float | None = None,
    max_frames: int | None = None,
    rotate_s: float = DEFAULT_ROTATE_S,
    stop: threading.Event | None = None,
    on_frame: Callable[[LivePreview], None] | None = None,
    naming: Callable[[str, str], str] | None = None,
    progress: bool = False,
    **source_options: Any,
) -> LiveResult:
    """Segment a live stream with one or more methods until ``duration_s`` seconds, ``max_frames`` frames,
    ``stop`` is set, or the stream is lost for good; write rotating files (every ``rotate_s`` seconds) in
    ``out_dir``: ``<method>_<kind>_<start>_<NNNN>.mp4`` for each of ``kinds`` (``mask``, ``overlay``, and
    ``anonymised`` in the ``anonymise`` style: ``erase`` shows ``plate``, else the method's own plate).
    ``plate``: the empty scene at the stream's size (image path or RGB array), or a function of the stream's
    (width, height) that returns one or None (a site's plate of the camera's size, known once it answers).

    ``source``: a URL or device (opened as :class:`LiveSource` with ``source_options``) or an open one (then
    left open). ``naming(method, kind)`` gives each output's file stem instead. ``on_frame`` sees each segmented frame
    (the app's preview). When the stream is lost for good, the files written so far are kept and the result's
    ``stop`` is ``"lost"`` with the reason in ``error``. Each complete file is renamed into place as it is
    closed, so an interruption of any kind loses at most the file being written.
    """
    from humanseg.progress import bar

    kinds = tuple(kinds) + (("anonymised",) if anonymise and "anonymised" not in kinds else ())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown output kind(s) {unknown}; choose from {', '.join(KINDS)}")
    if "anonymised" in kinds:
        if anonymise is None:
            raise ValueError("the anonymised output needs a style (anonymise='blur', 'pixelate', 'fill' or 'erase')")
        check_style(anonymise)
    if rotate_s <= 0 or (duration_s is not None and duration_s <= 0) or (max_frames is not None and max_frames < 1):
        raise ValueError(
            f"rotate_s and duration_s must be > 0 and max_frames >= 1, got {rotate_s}, {duration_s}, {max_frames}"
        )
    stop = stop or threading.Event()
    items = [segmenters] if isinstance(segmenters, str) or hasattr(segmenters, "segment") else list(segmenters)
    t_start = time.monotonic()

    def halted() -> bool:
        return stop.is_set() or (duration_s is not None and time.monotonic() - t_start >= duration_s)

    with contextlib.ExitStack() as stack:
        live = source if isinstance(source, LiveSource) else stack.enter_context(LiveSource(source, **source_options))
        plate_arr = _plate_at(plate, live)
        segs = resolve_segmenters(
            items, plate=plate_arr, checkpoint=checkpoint, plate_used_elsewhere=anonymise == "erase"
        )
        for seg in segs:
            if hasattr(seg, "set_fps"):  # the plate update counts seconds at the camera's nominal rate
                seg.set_fps(live.fps)
        given = {id(i) for i in items if not isinstance(i, str)}
        for seg in segs:
            if id(seg) not in given and hasattr(seg, "close"):
                stack.callback(seg.close)  # built here from a name: a model session to release
        names = unique_names(segs)
        by_name = dict(zip(names, segs, strict=True))
        if anonymise == "erase" and plate_arr is None:
            lacking = [n for n, s in by_name.items() if not has_plate(s)]
            if lacking:
                raise ValueError(
                    f"anonymise style 'erase' shows the empty scene, but {', '.join(lacking)} has none: give the "
                    "site's empty-scene plate (--plate), or use a plate method such as plate-diff"
                )
        naming = naming or (lambda method, kind: f"{safe_filename(method)}_{kind}")
        outputs = {n: {k: RotatingVideo(Path(out_dir), naming(n, k)) for k in kinds} for n in names}
        videos = [v for per_method in outputs.values() for v in per_method.values()]
        for video in videos:
            stack.callback(video.close)  # the file being written is finished and renamed, whatever happens
        shown = stack.enter_context(bar(desc="live", unit="frame", enabled=progress))
        timers = {n: WarmMean() for n in names}
        state: dict[str, Any] = {"chunk": None, "size": None, "arrived": 0.0}

        def live_frames() -> Iterator[np.ndarray]:
            """The newest frames, rotating every output file when ``rotate_s`` has passed or the size changed."""
            for item in live.frames(halted):
                h, w = item.image.shape[:2]
                if state["size"] not in (None, (w, h)):
                    log.warning("stream %s changed size to %dx%d; starting new files", live.shown, w, h)
                    state["chunk"] = None
                    for seg in segs:
                        if hasattr(seg, "reset"):
                            seg.reset()  # a stateful method relearns the scene at the new size
                if state["chunk"] is None or item.time_s - state["chunk"] >= rotate_s:
                    for video in videos:
                        video.rotate()
                    state["chunk"] = item.time_s
                state["size"], state["arrived"] = (w, h), item.time_s
                yield item.image

        frames, why = 0, "stopped"
        for seg_frame in segment_frames(live_frames(), segs):
            overlays = {}
            for n in names:
                prob = seg_frame.probs[n]
                timers[n].add(seg_frame.ms[n])
                overlays[n] = overlay(seg_frame.frame, prob, threshold=threshold)
                out, at = outputs[n], state["arrived"]
                if "mask" in out:
                    out["mask"].write(mask_image(prob, threshold), at)
                if "overlay" in out:
                    out["overlay"].write(overlays[n], at)
                if "anonymised" in out:
                    scene = plate_arr if plate_arr is not None else segmenter_plate(by_name[n], state["size"])
                    extra = {"colour": colour} if colour is not None else {}
                    hidden = anonymise_frame(
                        seg_frame.frame, prob, anonymise, margin_px=margin_px, plate=scene, threshold=threshold,
                        **extra,
                    )  # fmt: skip
                    out["anonymised"].write(hidden, at)
            frames += 1
            shown.update(1)
            shown.set_postfix(skipped=live.skipped, reconnects=live.reconnects, refresh=False)
            if on_frame is not None:
                on_frame(LivePreview(
                    seg_frame.frame, overlays, {n: t.mean for n, t in timers.items()}, frames, live.skipped,
                    live.reconnects, time.monotonic() - t_start,
                ))  # fmt: skip
            if max_frames is not None and frames >= max_frames:
                why = "max-frames"
                break
        else:
            if live.lost is not None:
                why = "lost"
            elif not stop.is_set() and duration_s is not None:
                why = "duration"
        seconds = time.monotonic() - t_start
    # Out of the ExitStack: every file is finished and renamed, the source and the segmenters are closed.
    error = str(live.lost) if why == "lost" else None
    if state["size"] is None:
        raise VideoError(f"stream {live.shown}: no frame arrived" + (f" ({error})" if error else ""))
    result = LiveResult(
        source=live.shown, out_dir=Path(out_dir), size=state["size"], frames=frames, skipped=live.skipped,
        received=live.received, reconnects=live.reconnects, seconds=seconds, stop=why,
        ms_per_frame={n: t.mean for n, t in timers.items()},
        files={n: {k: list(v.files) for k, v in per.items()} for n, per in outputs.items()}, error=error,
    )  # fmt: skip
    log.info(
        "live run of %s ended (%s): %d frames segmented, %d skipped, %d reconnections",
        result.source, why, frames, result.skipped, result.reconnects,
    )  # fmt: skip
    return result


def _plate_at(plate: Any, live: LiveSource) -> np.ndarray | None:
    """``plate`` (a path, an array, or a function of the stream's size) as RGB, checked against the stream's size."""
    if callable(plate):
        plate = plate(live.size)
    if plate is None:
        return None
    arr = to_rgb(read_image(plate) if isinstance(plate, (str, Path)) else plate, source="plate")
    if (arr.shape[1], arr.shape[0]) != live.size:
        raise VideoError(
            f"plate is {arr.shape[1]}x{arr.shape[0]} but stream {live.shown} is {live.size[0]}x{live.size[1]}; use "
            "an empty-scene image from this camera at this size"
        )
    return arr


@contextlib.contextmanager
def stop_on_sigint(stop: threading.Event) -> Iterator[threading.Event]:
    """Within the block, Ctrl-C (SIGINT) sets ``stop`` instead of raising, so a live run finishes its current
    file and returns; a second Ctrl-C raises as usual. Main thread only (Python's signal rule)."""

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log.warning("stopping: finishing the current files (Ctrl-C again to abort)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
