"""Fixtures for the app tests: the real app launched on a free port with a temporary workspace, and tiny
synthetic inputs a user would upload (a plate image, site and actor clips as H.264 mp4, mask zips, bad files).

Loaded by the app test modules with ``pytest_plugins = ["app_fixtures"]``, so the session-scoped server is
launched once for the API and the browser tests together.
"""

from __future__ import annotations

import socket
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # app.py lives at the project root

from _synthetic_site import Person, background, write_clip  # noqa: E402

CLIP_SIZE = (120, 160)  # (height, width) of the synthetic site
CLIP_FRAMES = 20
ACTOR_SIZE = (150, 200)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sequence_to_mp4(seq: Path, mp4: Path, fps: float = 10.0) -> Path:
    """The input frames of a CDnet-layout folder as an H.264 mp4."""
    from humanseg.video import H264Writer, open_frames

    with open_frames(seq) as reader, H264Writer(mp4, fps) as writer:
        for frame in reader:
            writer.write(frame)
    return mp4


def zip_dir(folder: Path, zip_path: Path, arc_prefix: str) -> Path:
    """Zip the files of ``folder`` as ``arc_prefix/<name>``."""
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"{arc_prefix}/{p.name}")
    return zip_path


def zip_sequence(seq: Path, zip_path: Path) -> Path:
    """Zip a CDnet-layout folder's input/ and groundtruth/ inside one top folder, as users zip folders."""
    with zipfile.ZipFile(zip_path, "w") as zf:
        for sub in ("input", "groundtruth"):
            for p in sorted((seq / sub).iterdir()):
                zf.write(p, f"{seq.name}/{sub}/{p.name}")
    return zip_path


def zero_frame_mp4(path: Path) -> Path:
    """An mp4 with a video stream header and no frame (what a failed recording leaves behind)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@dataclass(frozen=True)
class Inputs:
    """Files a user would upload (all tiny)."""

    plate: Path  # empty-scene PNG, 160x120
    site_clip: Path  # 20-frame mp4 of two people walking through the site
    site_gt_zip: Path  # groundtruth/gt000001.png ... of site_clip (CDnet values 0/50/170/255)
    site_seq_zip: Path  # the same clip as a CDnet sequence (site/input/ + site/groundtruth/), for validation
    actor_clip: Path  # 20-frame mp4 of one tall person, 200x150
    actor_masks_zip: Path  # groundtruth/ of actor_clip
    text_file: Path  # a text file named like a video
    empty_zip: Path  # a zip with no files
    zero_frames: Path  # an mp4 with no frame


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("uploads")
    h, w = CLIP_SIZE
    site_seq = write_clip(
        root / "site_seq",
        [Person(20, 100, 50, (200, 40, 40), 4.0), Person(120, 70, 36, (40, 60, 210), -3.0)],
        frames=CLIP_FRAMES, size=CLIP_SIZE, shadow=True,
    )  # fmt: skip
    # Actor clips come from other cameras: another size than the site.
    actor_seq = write_clip(
        root / "actor_seq", [Person(30, 130, 70, (40, 170, 60), 4.0)], frames=CLIP_FRAMES, size=ACTOR_SIZE, seed=3
    )
    plate = root / "plate.png"
    Image.fromarray(background(h, w, seed=0)).save(plate)
    text = root / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = root / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    return Inputs(
        plate=plate,
        site_clip=sequence_to_mp4(site_seq, root / "site.mp4"),
        site_gt_zip=zip_dir(site_seq / "groundtruth", root / "site_gt.zip", "groundtruth"),
        site_seq_zip=zip_sequence(site_seq, root / "site_seq.zip"),
        actor_clip=sequence_to_mp4(actor_seq, root / "actor.mp4"),
        actor_masks_zip=zip_dir(actor_seq / "groundtruth", root / "actor_masks.zip", "groundtruth"),
        text_file=text,
        empty_zip=empty,
        zero_frames=zero_frame_mp4(root / "zero.mp4"),
    )


@dataclass(frozen=True)
class AppServer:
    url: str
    workspace: Path
    module: object  # the imported app module


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> AppServer:
    """The app, launched once per test session on a free port with an empty temporary workspace."""
    import app

    workspace = tmp_path_factory.mktemp("workspace")
    port = free_port()
    app.launch(workspace, port=port, prevent_thread_lock=True, quiet=True, example=False)
    try:
        yield AppServer(f"http://127.0.0.1:{port}/", workspace, app)
    finally:
        app.TRAINING.stop_event.set()
        app.TRAINING.wait(60)
        app.demo.close()


@pytest.fixture(scope="session")
def client(app_server: AppServer):
    from gradio_client import Client

    return Client(app_server.url, verbose=False)


def array_of(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path))
