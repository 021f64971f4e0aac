"""Video and image-sequence input/output.

Readers stream frames one at a time (a 10-minute 720p clip is never held in memory); writers produce
browser-playable H.264 mp4 (libx264, yuv420p, even sizes, moov atom up front), PNG mask sequences and zips.

Every frame handed out is an RGB ``uint8`` array ``H x W x 3``; grayscale, RGBA and 16-bit inputs are converted.
Problems with the user's files raise :class:`VideoError`, whose message names the file and what is wrong.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from humanseg.checks import check_frame_size
from humanseg.files import atomic_path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".ts"})
DEFAULT_FOLDER_FPS = 25.0  # image folders carry no frame rate; CDnet/SBI footage is 25-30 fps

# Decoded frames may fall a frame or two short of the container's count in valid files (mp4 edit lists trim
# encoder delay); a larger shortfall means the media data was cut off.
_EDIT_LIST_SLACK = 2
_TRAILING_NUMBER = re.compile(r"(\d+)$")


class VideoError(ValueError):
    """A video, image or sequence folder cannot be used; the message names the file and the problem."""


# --------------------------------------------------------------------------------------------------------------
# Single images and labels


def to_rgb(array: np.ndarray, *, source: str | Path = "frame") -> np.ndarray:
    """Convert a gray (H x W or H x W x 1), RGB, or RGBA array of uint8/uint16/bool to C-contiguous RGB uint8.

    RGBA drops the alpha channel (no compositing: surveillance frames have no meaningful alpha).
    """
    arr = np.asarray(array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise VideoError(f"{source}: expected uint8 pixels, got dtype {arr.dtype}; convert the image to 8-bit")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.stack([arr, arr, arr], axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    elif not (arr.ndim == 3 and arr.shape[2] == 3):
        raise VideoError(f"{source}: expected a gray, RGB or RGBA image, got an array of shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise VideoError(f"{source}: image has zero size {arr.shape[1]}x{arr.shape[0]}")
    return np.ascontiguousarray(arr)


def _open_pil(path: Path) -> Image.Image:
    if not path.exists():
        raise VideoError(f"{path}: file not found")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, expected an image file")
    try:
        img = Image.open(path)
        img.load()
    except UnidentifiedImageError as err:
        raise VideoError(f"{path}: not an image file PIL can read ({err})") from err
    except (OSError, SyntaxError) as err:
        # Truncated or corrupt image data.
        raise VideoError(f"{path}: cannot decode image, the file looks truncated or corrupt ({err})") from err
    if img.width == 0 or img.height == 0:
        raise VideoError(f"{path}: image has zero size {img.width}x{img.height}")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as an RGB uint8 array (gray, palette, RGBA and 16-bit images are converted)."""
    path = Path(path)
    img = _open_pil(path)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        return to_rgb((arr.astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8), source=path)
    return to_rgb(np.asarray(img.convert("RGB")), source=path)


def read_label(path: str | Path) -> np.ndarray:
    """Read a ground-truth label image as uint8 'L' values (palette PNGs are mapped to their gray values)."""
    path = Path(path)
    return np.ascontiguousarray(np.asarray(_open_pil(path).convert("L"), dtype=np.uint8))


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError as err:
        raise VideoError(f"{path}: file not found") from err
    except (UnidentifiedImageError, OSError) as err:
        raise VideoError(f"{path}: not an image file PIL can read ({err})") from err


def _check_frame_size(size: tuple[int, int], source: Path) -> None:
    """A VideoError (so callers that skip broken clips skip this one too) for frames above the pixel limit."""
    try:
        check_frame_size(size[0], size[1], source)
    except ValueError as err:
        raise VideoError(str(err)) from None


def frame_number(path: str | Path) -> int | None:
    """The trailing number of a file name's stem (``in000600.jpg`` -> 600, ``CaVignal_000004.png`` -> 4)."""
    match = _TRAILING_NUMBER.search(Path(path).stem)
    return int(match.group(1)) if match else None


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, ordered by trailing frame number (then name).

    Raises VideoError for a missing or empty folder, or one that has files but no images.
    """
    folder = Path(folder)
    if not folder.exists():
        raise VideoError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise VideoError(f"{folder}: not a folder")
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise VideoError(f"{folder}: folder is empty, expected image files (jpg/png) or a video file")
    images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        shown = ", ".join(sorted(p.name for p in entries)[:5])
        raise VideoError(
            f"{folder}: folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))}); it holds: {shown}"
            + (" ..." if len(entries) > 5 else "")
        )

    def key(p: Path) -> tuple[int, int, str]:
        n = frame_number(p)
        return (0, n, p.name) if n is not None else (1, 0, p.name)

    return sorted(images, key=key)


# --------------------------------------------------------------------------------------------------------------
# Labelled sequences (CDnet / SBI and DAVIS layouts)


@dataclass(frozen=True)
class SequenceItem:
    """One frame of a labelled sequence: its frame number, image file and label file (None if unlabelled)."""

    number: int
    image: Path
    label: Path | None


@dataclass
class Sequence:
    """A labelled image sequence on disk (see :func:`load_sequence`)."""

    name: str
    root: Path
    layout: str  # 'cdnet' | 'davis'
    items: list[SequenceItem]
    size: tuple[int, int]  # (width, height)
    roi: np.ndarray | None = None  # bool H x W, True = evaluate
    temporal_roi: tuple[int, int] | None = None  # inclusive (first, last) frame numbers to evaluate
    empty_backgrounds: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def scored_items(self, skip_first: bool = False) -> list[SequenceItem]:
        """Items with a label and inside the temporal ROI, by frame number.

        ``skip_first`` drops the first such item (SBI frame-0 masks are unreliable: see the data README).
        """
        items = [it for it in self.items if it.label is not None]
        if self.temporal_roi is not None:
            first, last = self.temporal_roi
            items = [it for it in items if first <= it.number <= last]
        return items[1:] if skip_first else items

    def read(self, item: SequenceItem) -> tuple[np.ndarray, np.ndarray | None]:
        """(RGB frame, uint8 label or None) for one item; a label of another size than its frame is a VideoError."""
        frame = read_image(item.image)
        if item.label is None:
            return frame, None
        label = read_label(item.label)
        if label.shape != frame.shape[:2]:
            raise VideoError(
                f"{item.label}: mask size {label.shape[1]}x{label.shape[0]} differs from frame {item.image.name} "
                f"size {frame.shape[1]}x{frame.shape[0]}"
            )
        return frame, label

    def frames(
        self, items: Iterable[SequenceItem] | None = None
    ) -> Iterator[tuple[SequenceItem, np.ndarray, np.ndarray | None]]:
        """Stream ``(item, frame, label)`` over ``items`` (default: all items), one file pair at a time."""
        for item in self.items if items is None else items:
            frame, label = self.read(item)
            yield item, frame, label


def _sequence_dirs(root: Path) -> tuple[str, Path, Path | None] | None:
    """(layout, image folder, label folder or None) if ``root`` has a CDnet or DAVIS layout, else None."""
    if (root / "input").is_dir():
        gt = root / "groundtruth"
        return "cdnet", root / "input", gt if gt.is_dir() else None
    if (root / "JPEGImages").is_dir():
        ann = root / "Annotations"
        return "davis", root / "JPEGImages", ann if ann.is_dir() else None
    return None


def _read_temporal_roi(path: Path) -> tuple[int, int]:
    text = path.read_text().split()
    try:
        first, last = int(text[0]), int(text[1])
    except (IndexError, ValueError) as err:
        raise VideoError(f"{path}: expected two frame numbers 'first last', got {' '.join(text)!r}") from err
    if last < first:
        raise VideoError(f"{path}: last frame {last} is before first frame {first}")
    return first, last


def load_sequence(root: str | Path) -> Sequence:
    """Load a labelled sequence folder in the CDnet/SBI or DAVIS layout.

    CDnet/SBI: ``input/inNNNNNN.jpg|png`` (or any ``<prefix>NNNNNN`` name, e.g. ``CaVignal_000004.png``),
    ``groundtruth/gtNNNNNN.png``, optional ``ROI.bmp`` (gray > 127 = evaluate), ``temporalROI.txt`` and
    ``empty_bg*.jpg``. DAVIS: ``JPEGImages/NNNNN.jpg`` + ``Annotations/NNNNN.png``.
    Frames and labels are paired by the trailing number in the file name; numbers need not be contiguous.
    Sizes are checked from the file headers: every label (and the ROI) must match the frame size.
    """
    root = Path(root)
    if not root.is_dir():
        raise VideoError(f"{root}: sequence folder not found" if not root.exists() else f"{root}: not a folder")
    dirs = _sequence_dirs(root)
    if dirs is None:
        raise VideoError(
            f"{root}: not a labelled sequence; expected input/ + groundtruth/ (CDnet) or JPEGImages/ + Annotations/ (DAVIS)"
        )
    layout, image_dir, label_dir = dirs

    images = list_images(image_dir)
    by_number: dict[int, Path] = {}
    for path in images:
        n = frame_number(path)
        if n is None:
            raise VideoError(f"{path}: file name has no trailing frame number to pair it with its label")
        if n in by_number:
            raise VideoError(f"{image_dir}: two frames share number {n}: {by_number[n].name} and {path.name}")
        by_number[n] = path

    labels: dict[int, Path] = {}
    if label_dir is not None:
        for path in list_images(label_dir):
            n = frame_number(path)
            if n is not None and n in by_number:
                labels[n] = path
    items = [SequenceItem(n, by_number[n], labels.get(n)) for n in sorted(by_number)]

    size = _image_size(items[0].image)
    _check_frame_size(size, items[0].image)
    for item in items:
        w_h = _image_size(item.image)
        if w_h != size:
            raise VideoError(
                f"{item.image}: frame size {w_h[0]}x{w_h[1]} differs from the first frame's {size[0]}x{size[1]}"
            )
        if item.label is not None:
            l_size = _image_size(item.label)
            if l_size != size:
                raise VideoError(
                    f"{item.label}: mask size {l_size[0]}x{l_size[1]} differs from frame {item.image.name} "
                    f"size {size[0]}x{size[1]}"
                )

    roi = None
    roi_path = root / "ROI.bmp"
    if roi_path.is_file():
        # convert('L') first: some palette ROI files store raw index 0 for gray 255 (data README).
        roi = read_label(roi_path) > 127
        if roi.shape != (size[1], size[0]):
            raise VideoError(
                f"{roi_path}: ROI size {roi.shape[1]}x{roi.shape[0]} differs from frame size {size[0]}x{size[1]}"
            )

    troi_path = root / "temporalROI.txt"
    temporal_roi = _read_temporal_roi(troi_path) if troi_path.is_file() else None
    empty = sorted(p for p in root.glob("empty_bg*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return Sequence(
        name=root.name,
        root=root,
        layout=layout,
        items=items,
        size=size,
        roi=roi,
        temporal_roi=temporal_roi,
        empty_backgrounds=empty,
    )


# --------------------------------------------------------------------------------------------------------------
# Frame readers


class FrameReader:
    """Iterable of RGB uint8 frames from a video file or an image folder; use :func:`open_frames`.

    ``fps`` is the rate of the frames this reader yields (the source rate divided by ``step``), so writing them
    at ``fps`` keeps real-time speed; ``source_fps`` is the source's own rate. ``size`` is (width, height).
    ``frame_count`` is how many frames iteration will yield when known (None for containers without a count).
    A reader can be iterated once; it closes itself when exhausted and is also a context manager.
    """

    fps: float
    source_fps: float
    size: tuple[int, int]
    frame_count: int | None
    source: Path

    def __init__(self, source: Path, step: int, max_frames: int | None) -> None:
        if not isinstance(step, int) or step < 1:
            raise ValueError(f"step must be an integer >= 1, got {step!r}")
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise ValueError(f"max_frames must be an integer >= 1 or None, got {max_frames!r}")
        self.source = source
        self.step = step
        self.max_frames = max_frames
        self._started = False

    def _limit(self, source_count: int | None) -> int | None:
        if source_count is None:
            return None
        count = (source_count + self.step - 1) // self.step
        return min(count, self.max_frames) if self.max_frames is not None else count

    def _frames(self) -> Iterator[np.ndarray]:
        """Every step-th source frame, in order (subclasses skip the others as cheaply as they can)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError(f"{self.source}: a FrameReader can be iterated only once; open the source again")
        self._started = True
        yielded = 0
        try:
            for frame in self._frames():
                yield frame
                yielded += 1
                if self.max_frames is not None and yielded >= self.max_frames:
                    break
        finally:
            self.close()

    def close(self) -> None:
        """Release the file handle (idempotent)."""

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.source)!r}, size={self.size}, fps={self.fps:.3g}, "
            f"frame_count={self.frame_count})"
        )


class ImageFolderReader(FrameReader):
    """Frames from the image files of a folder, ordered by trailing frame number."""

    def __init__(self, folder: Path, step: int = 1, max_frames: int | None = None, fps: float = DEFAULT_FOLDER_FPS):
        super().__init__(folder, step, max_frames)
        self.paths = list_images(folder)
        self.size = _image_size(self.paths[0])
        _check_frame_size(self.size, self.paths[0])
        # Every frame that will be read must have the first one's size; the headers say so without decoding, so
        # a folder whose images change size half way is refused before any output is written.
        used = self.paths[:: self.step][: max_frames or None]
        for path in used[1:]:
            if _image_size(path) != self.size:
                w, h = _image_size(path)
                raise VideoError(
                    f"{path}: frame size {w}x{h} differs from the first frame's {self.size[0]}x{self.size[1]} "
                    f"({self.paths[0].name}); make every image of the folder one size"
                )
        first = read_image(self.paths[0])  # decoded once: the first frame yielded
        self._first: np.ndarray | None = first
        self.source_fps = float(fps)
        self.fps = self.source_fps / step
        self.frame_count = self._limit(len(self.paths))

    def _frames(self) -> Iterator[np.ndarray]:
        for path in self.paths[:: self.step]:  # skipped files are never decoded
            frame, self._first = (self._first, None) if self._first is not None else (read_image(path), None)
            if (frame.shape[1], frame.shape[0]) != self.size:
                raise VideoError(
                    f"{path}: frame size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's "
                    f"{self.size[0]}x{self.size[1]} ({self.paths[0].name})"
                )
            yield frame


class VideoFileReader(FrameReader):
    """Frames decoded with PyAV (FFmpeg). The first frame is decoded on open so bad files fail early."""

    def __init__(self, path: Path, step: int = 1, max_frames: int | None = None):
        super().__init__(path, step, max_frames)
        import av  # PyAV; light, but only video paths need it

        if not path.exists():
            raise VideoError(f"{path}: file not found")
        if path.is_dir():
            raise VideoError(f"{path}: is a folder, expected a video file")
        if path.stat().st_size == 0:
            raise VideoError(f"{path}: file is empty (0 bytes)")
        try:
            self._container = av.open(str(path), "r")
        except av.error.EOFError as err:
            raise VideoError(
                f"{path}: the file ends before any video data (FFmpeg: {err}); it is truncated or holds zero frames"
            ) from err
        except av.FFmpegError as err:
            raise VideoError(
                f"{path}: not a readable video (FFmpeg: {err}); the file may be truncated, corrupt or not a video"
            ) from err
        try:
            if not self._container.streams.video:
                # FFmpeg drops an mp4 track that has zero samples, so a zero-frame mp4 lands here too.
                raise VideoError(f"{path}: file has no video stream (or a video track with zero frames)")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"  # frame + slice threads: ~2x faster decode on multi-core
            rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
            self.source_fps = float(rate) if rate else DEFAULT_FOLDER_FPS
            self.fps = self.source_fps / step
            declared = self._stream.frames or None  # 0 means unknown (mkv/webm)
            self._declared = declared
            self._decoded = self._decode()
            try:
                self._first = next(self._decoded)
            except StopIteration:
                raise VideoError(f"{path}: video stream has zero frames") from None
            self.size = (self._first.shape[1], self._first.shape[0])
            _check_frame_size(self.size, path)
            self.frame_count = self._limit(declared)
        except BaseException:
            self.close()
            raise

    def _decode(self) -> Iterator[np.ndarray]:
        import av

        count = 0
        try:
            for frame in self._container.decode(self._stream):
                if frame.width == 0 or frame.height == 0:
                    raise VideoError(f"{self.source}: frame {count} has unreadable size {frame.width}x{frame.height}")
                # rgb24 via swscale: gray, yuv and rgba sources all come out as 3-channel RGB.
                yield np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                count += 1
        except av.FFmpegError as err:
            raise VideoError(
                f"{self.source}: decoding failed after {count} frames (FFmpeg: {err}); the file is truncated or corrupt"
            ) from err
        if count == 0:
            raise VideoError(f"{self.source}: video stream has zero decodable frames; the file is truncated or corrupt")
        if self._declared is not None and count < self._declared - _EDIT_LIST_SLACK:
            # The container's index promised more frames than the data holds: a cut-off download or copy.
            raise VideoError(
                f"{self.source}: only {count} of the {self._declared} frames the container lists could be decoded; "
                "the file is truncated"
            )

    def _frames(self) -> Iterator[np.ndarray]:
        yield self._first
        for index, frame in enumerate(self._decoded, start=1):
            if index % self.step == 0:
                yield frame

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            self._container = None
            container.close()


def open_frames(source: str | Path, step: int = 1, max_frames: int | None = None) -> FrameReader:
    """Open a video file, an image folder, or a CDnet/DAVIS sequence folder (its input frames) for streaming.

    ``step`` keeps every step-th frame; ``max_frames`` stops after that many yielded frames.
    """
    path = Path(source)
    if not path.exists():
        raise VideoError(f"{path}: file or folder not found")
    if path.is_dir():
        dirs = _sequence_dirs(path)
        return ImageFolderReader(dirs[1] if dirs else path, step, max_frames)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise VideoError(f"{path}: is a single image; pass the folder that holds the frames, or a video file")
    return VideoFileReader(path, step, max_frames)


# --------------------------------------------------------------------------------------------------------------
# Writers


def _even_pad(frame: np.ndarray) -> np.ndarray:
    """Pad odd width/height by one replicated edge column/row (yuv420p needs even sizes)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class H264Writer:
    """Write RGB frames to a browser-playable H.264 mp4 (libx264, yuv420p, faststart).

    The size is fixed by the first frame; odd widths/heights are padded by one pixel to even. Gray (H x W)
    and RGBA frames are converted. ``crf`` is x264's quality (lower = better; 18 is visually lossless).
    Use as a context manager, or call :meth:`close` (in a ``finally``) to write the file's index.
    """

    def __init__(self, path: str | Path, fps: float = 25.0, *, crf: int = 20, preset: str = "veryfast") -> None:
        if not fps or fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.path = Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.preset = preset
        self.size: tuple[int, int] | None = None  # (width, height) of the frames given (before padding)
        self.frames_written = 0
        self._container = None
        self._stream = None

    def _open(self, width: int, height: int) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # faststart moves the moov index to the front so browsers can play while downloading.
        self._container = av.open(str(self.path), "w", format="mp4", container_options={"movflags": "+faststart"})
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width = width + width % 2
        stream.height = height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream
        self.size = (width, height)

    def write(self, frame: np.ndarray) -> None:
        """Append one frame (RGB/gray/RGBA uint8, or bool mask); all frames must have the first frame's size."""
        import av

        rgb = to_rgb(frame, source=f"frame {self.frames_written} for {self.path}")
        h, w = rgb.shape[:2]
        if self._container is None:
            if self.frames_written:
                raise VideoError(f"{self.path}: writer is closed")
            self._open(w, h)
        elif (w, h) != self.size:
            raise VideoError(
                f"{self.path}: frame {self.frames_written} is {w}x{h} but the video is {self.size[0]}x{self.size[1]}; "
                "resize frames to one size"
            )
        video_frame = av.VideoFrame.from_ndarray(_even_pad(rgb), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent). A writer given no frames writes no file."""
        container, self._container = self._container, None
        if container is None:
            return
        try:
            for packet in self._stream.encode(None):
                container.mux(packet)
        finally:
            container.close()

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def mask_to_u8(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """A probability (float, foreground where > threshold), bool or uint8 (> 127) mask as uint8 0/255 H x W."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.ndim != 2:
        raise ValueError(f"mask must be H x W, got shape {m.shape}")
    if m.dtype == np.bool_:
        fg = m
    elif m.dtype == np.uint8:
        fg = m > 127
    else:
        fg = m > threshold
    return np.where(fg, np.uint8(255), np.uint8(0))


class PngMaskWriter:
    """Write masks one at a time as ``<folder>/<prefix>NNNNNN.png`` (uint8 'L', 0 background / 255 foreground)."""

    def __init__(self, folder: str | Path, *, prefix: str = "", start: int = 0, threshold: float = 0.5) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.next_number = start
        self.threshold = threshold
        self.paths: list[Path] = []

    def write(self, mask: np.ndarray, number: int | None = None) -> Path:
        """Write one mask; ``number`` defaults to one more than the last written."""
        n = self.next_number if number is None else number
        path = self.folder / f"{self.prefix}{n:06d}.png"
        Image.fromarray(mask_to_u8(mask, self.threshold), mode="L").save(path, compress_level=1)
        self.next_number = n + 1
        self.paths.append(path)
        return path


def write_png_masks(
    masks: Iterable[np.ndarray],
    folder: str | Path,
    *,
    numbers: Iterable[int] | None = None,
    prefix: str = "",
    threshold: float = 0.5,
) -> list[Path]:
    """Write masks as 0/255 PNGs named ``<prefix>NNNNNN.png`` (numbers default to 0, 1, 2 ...); returns the paths."""
    writer = PngMaskWriter(folder, prefix=prefix, threshold=threshold)
    number_iter = iter(numbers) if numbers is not None else None
    for mask in masks:
        writer.write(mask, next(number_iter) if number_iter is not None else None)
    return writer.paths


def zip_folder(folder: str | Path, zip_path: str | Path) -> Path:
    """Zip the files of ``folder`` (recursively, paths relative to it) into ``zip_path``; returns ``zip_path``.

    PNGs are already compressed, so members are stored, not deflated (same size, much faster).
    """
    folder, zip_path = Path(folder), Path(zip_path)
    if not folder.is_dir():
        raise VideoError(f"{folder}: folder not found, nothing to zip")
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.resolve() != zip_path.resolve() and path != tmp:
                zf.write(path, path.relative_to(folder).as_posix())
    return zip_path


def probe_video(path: str | Path) -> dict:
    """Codec facts of a video file: ``{'codec', 'pix_fmt', 'width', 'height', 'fps', 'frames', 'faststart'}``.

    ``faststart`` is True when the mp4 index (moov) precedes the media data (mdat), as browsers want.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: file has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            info = {
                "codec": ctx.name,
                "pix_fmt": ctx.pix_fmt,
                "width": ctx.width,
                "height": ctx.height,
                "fps": float(stream.average_rate) if stream.average_rate else None,
                "frames": stream.frames or None,
            }
    except av.FFmpegError as err:
        raise VideoError(f"{path}: not a readable video (FFmpeg: {err})") from err
    head = path.read_bytes()[: 1 << 16] if path.suffix.lower() in (".mp4", ".m4v", ".mov") else b""
    moov, mdat = head.find(b"moov"), head.find(b"mdat")
    info["faststart"] = moov != -1 and (mdat == -1 or moov < mdat)
    return info
