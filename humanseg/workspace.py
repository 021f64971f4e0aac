"""Per-site workspace folders: where the app (and the example builder) keep everything a site has.

The workspace is the app's only persistence: closing the browser or restarting the app loses nothing,
because every upload, plate, silhouette set, dataset, training run and segmentation output lives in a
folder of its site::

    <workspace>/                      $HUMANSEG_WORKSPACE, else <project>/workspace
      <site>/
        plates/<name>.png             empty-scene images (uploaded backgrounds and plates estimated from a clip)
        clips/<name>.<ext>            uploaded clips of the site (busy scene: plates and harvesting come from it)
        actors/<name>/                uploaded actor clips, each a sequence folder (DAVIS or CDnet layout)
        silhouettes/<name>/           one folder per silhouette extraction (dataset_builder's layout)
        datasets/<name>/              built datasets (images/, masks/, manifest.json ...)
        validation/<name>/            labelled real clips of the site (CDnet layout) to validate training on
        runs/<name>/                  training runs (checkpoints, history)
        outputs/<name>/               segmentation results (videos, mask zips, metrics)

This module only knows paths and how to bring uploaded files in safely (copying temp uploads, unpacking zips
without path tricks, turning a clip + mask zip into a labelled sequence folder). It holds no UI code, so
scripts such as ``examples/build_site.py`` use the same layout as the app.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from humanseg.files import atomic_path
from humanseg.progress import bar
from humanseg.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, VideoError, frame_number, list_images, open_frames

ENV_VAR = "HUMANSEG_WORKSPACE"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKSPACE = PROJECT_ROOT / "workspace"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Zip bombs and runaway uploads: refuse archives that would unpack to more than this.
MAX_UNZIPPED_BYTES = 4 << 30
CHECKPOINT_SUFFIXES = (".pt",)


def resolve_workspace(path: str | Path | None = None, *, create: bool = True) -> Path:
    """The workspace folder: ``path`` if given, else ``$HUMANSEG_WORKSPACE``, else ``<project>/workspace``.

    Returned absolute (the app serves files only from below it); created if missing when ``create``.
    """
    chosen = Path(path) if path else Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else DEFAULT_WORKSPACE
    chosen = chosen.expanduser().resolve()
    if chosen.exists() and not chosen.is_dir():
        raise NotADirectoryError(f"workspace {chosen} is a file; give a folder with --workspace or ${ENV_VAR}")
    if create:
        chosen.mkdir(parents=True, exist_ok=True)
    return chosen


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` stripped if it is a safe folder name (letters, digits, ``.``, ``_``, ``-``; up to 64
    characters, starting with a letter or digit); otherwise raise ``ValueError`` saying what is allowed."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (e.g. 'lobby-cam2')"
        )
    return name


def safe_stem(text: str, default: str = "file") -> str:
    """``text`` reduced to a safe file-name stem (other characters become '_', at most 64 characters)."""
    stem = _UNSAFE.sub("_", text).strip("._")[:64]
    return stem or default


def timestamp_name(prefix: str = "") -> str:
    """A sortable, unique-enough folder name such as ``train-20250101-120000``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{safe_stem(prefix)}-{stamp}" if prefix else stamp


def unique_path(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/<stem>_2<suffix>`` (``_3`` ...) when that already exists."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while candidate.exists():
        candidate = folder / f"{stem}_{n}{suffix}"
        n += 1
    return candidate


@dataclass(frozen=True)
class Site:
    """One camera site inside a workspace; the properties are its folders (created on demand by callers)."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def plates_dir(self) -> Path:
        return self.root / "plates"

    @property
    def clips_dir(self) -> Path:
        return self.root / "clips"

    @property
    def actors_dir(self) -> Path:
        return self.root / "actors"

    @property
    def silhouettes_dir(self) -> Path:
        return self.root / "silhouettes"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def validation_dir(self) -> Path:
        return self.root / "validation"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    def plates(self) -> list[Path]:
        """Plate images, by name; links that lead outside the workspace are left out (see :meth:`stray_plates`)."""
        return [p for p in _files(self.plates_dir, IMAGE_SUFFIXES) if _inside(p, self.root.parent)]

    def stray_plates(self) -> list[Path]:
        """Plate entries that are links leading outside the workspace: never read or served, only reported."""
        return [p for p in _files(self.plates_dir, IMAGE_SUFFIXES) if not _inside(p, self.root.parent)]

    def clips(self) -> list[Path]:
        """Uploaded site clips, by name."""
        return _files(self.clips_dir, VIDEO_SUFFIXES)

    def actors(self) -> list[Path]:
        """Actor sequence folders, by name."""
        return _subdirs(self.actors_dir)

    def silhouette_sets(self) -> list[Path]:
        """Silhouette folders (one per extraction), by name."""
        return _subdirs(self.silhouettes_dir)

    def datasets(self) -> list[Path]:
        """Finished datasets (those whose ``manifest.json`` was written: it is written last), by name."""
        return [d for d in _subdirs(self.datasets_dir) if (d / "manifest.json").is_file()]

    def validation_sequences(self) -> list[Path]:
        """Labelled validation sequence folders (CDnet or DAVIS layout), by name."""
        return [d for d in _subdirs(self.validation_dir) if sequence_root(d) == d]

    def runs(self) -> list[Path]:
        """Training run folders, by name."""
        return _subdirs(self.runs_dir)

    def checkpoints(self) -> list[Path]:
        """One checkpoint per training run: its ``best.pt`` if written, else its newest ``*.pt``."""
        found = []
        for run in self.runs():
            best = run / "best.pt"
            if best.is_file():
                found.append(best)
                continue
            others = sorted((p for p in run.glob("*.pt") if p.is_file()), key=lambda p: p.stat().st_mtime)
            if others:
                found.append(others[-1])
        return found


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, links followed, lies inside ``folder``."""
    return path.resolve().is_relative_to(folder.resolve())


def _files(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    allowed = set(suffixes)
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in allowed and not p.name.startswith(".")
    )


def _subdirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_sites(workspace: str | Path) -> list[str]:
    """Names of the sites in ``workspace``, sorted."""
    return [p.name for p in _subdirs(Path(workspace)) if _NAME.match(p.name)]


def open_site(workspace: str | Path, name: str, create: bool = False) -> Site:
    """The site ``name`` of ``workspace``; with ``create`` its folder is made if missing.

    Raises ``ValueError`` for a name that is not a safe folder name and ``FileNotFoundError`` for a missing
    site when ``create`` is False (the message lists the sites there are).
    """
    name = check_name(name, "site name")
    root = Path(workspace) / name
    if create:
        root.mkdir(parents=True, exist_ok=True)
    elif not root.is_dir():
        have = ", ".join(list_sites(workspace)) or "none yet"
        raise FileNotFoundError(f"site {name!r} not found in {workspace} (sites: {have}); create it first")
    return Site(root)


def find_checkpoints(workspace: str | Path, extra: Iterable[str | Path] = ()) -> list[Path]:
    """Checkpoints of every site's runs (see :meth:`Site.checkpoints`), then the ``*.pt`` files in ``extra``
    folders (or ``extra`` files) that exist."""
    found: list[Path] = []
    for name in list_sites(workspace):
        found += Site(Path(workspace) / name).checkpoints()
    for item in extra:
        p = Path(item)
        if p.is_dir():
            found += sorted(f for f in p.glob("*.pt") if f.is_file())
        elif p.is_file() and p.suffix in CHECKPOINT_SUFFIXES:
            found.append(p)
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------------------------
# Bringing uploads in


def store_file(src: str | Path, folder: str | Path, name: str | None = None, *, overwrite: bool = False) -> Path:
    """Copy an uploaded file into ``folder`` as ``name`` (default: its own name, made safe); returns the copy.

    Without ``overwrite`` an existing name gets a ``_2`` (``_3`` ...) suffix, so nothing is ever replaced.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"uploaded file not found: {src}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = Path(name or src.name)
    target_name = safe_stem(raw.stem) + raw.suffix.lower()
    target = folder / target_name if overwrite else unique_path(folder, target_name)
    with atomic_path(target) as tmp:
        shutil.copyfile(src, tmp)
    return target


def extract_zip(zip_path: str | Path, dest: str | Path) -> Path:
    """Unpack ``zip_path`` into the folder ``dest`` (created); returns ``dest``.

    Refuses (``ValueError``) a file that is not a zip, a zip with no files, members with absolute paths or
    ``..`` (they would write outside ``dest``), and archives that unpack to more than 4 GiB.
    macOS ``__MACOSX/`` and dot-files are skipped.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    if not zip_path.is_file():
        raise FileNotFoundError(f"zip file not found: {zip_path}")
    if not zipfile.is_zipfile(zip_path):
        raise ValueError(f"{zip_path.name} is not a zip archive; upload a .zip of the mask PNGs")
    with zipfile.ZipFile(zip_path) as zf:
        members = [
            m for m in zf.infolist()
            if not m.is_dir() and not m.filename.startswith("__MACOSX/") and not Path(m.filename).name.startswith(".")
        ]  # fmt: skip
        if not members:
            raise ValueError(f"{zip_path.name} is an empty zip (no files in it); zip the mask PNGs themselves")
        total = sum(m.file_size for m in members)
        if total > MAX_UNZIPPED_BYTES:
            raise ValueError(f"{zip_path.name} unpacks to {total / 2**30:.1f} GiB, more than the 4 GiB allowed")
        for m in members:
            parts = Path(m.filename.replace("\\", "/")).parts
            if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise ValueError(f"{zip_path.name}: member {m.filename!r} points outside the archive; refusing it")
        dest.mkdir(parents=True, exist_ok=True)
        for m in members:
            target = dest.joinpath(*Path(m.filename.replace("\\", "/")).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as fin, open(target, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    return dest


def sequence_root(folder: str | Path) -> Path | None:
    """The folder at or below ``folder`` (depth <= 2) with a CDnet (``input/``) or DAVIS (``JPEGImages/``)
    layout, or None. Zips often wrap their content in one top folder; this finds it."""
    folder = Path(folder)
    candidates = [folder] + _subdirs(folder) + [g for d in _subdirs(folder) for g in _subdirs(d)]
    for c in candidates:
        if (c / "input").is_dir() or (c / "JPEGImages").is_dir():
            return c
    return None


def label_folder(folder: str | Path) -> Path:
    """The folder of mask images in an unpacked mask zip: ``groundtruth/`` (CDnet), ``Annotations/`` (DAVIS),
    or the first folder at or below ``folder`` that directly holds numbered images.

    Raises ``ValueError`` when there are no numbered mask images.
    """
    folder = Path(folder)
    for sub in ("groundtruth", "Annotations"):
        for c in [folder / sub, *(d / sub for d in _subdirs(folder))]:
            if c.is_dir():
                return c
    for c in [folder, *_subdirs(folder), *(g for d in _subdirs(folder) for g in _subdirs(d))]:
        try:
            images = list_images(c)
        except VideoError:
            continue
        if any(frame_number(p) is not None for p in images):
            return c
    raise ValueError(
        "no numbered mask images found in the zip; expected groundtruth/gtNNNNNN.png (CDnet), "
        "Annotations/NNNNN.png (DAVIS) or numbered PNGs at the top level"
    )


def clip_to_sequence(
    clip: str | Path,
    labels: str | Path,
    out_dir: str | Path,
    *,
    max_frames: int | None = None,
    progress: bool = False,
) -> Path:
    """Write a video and its per-frame masks as a CDnet-layout sequence folder; returns ``out_dir``.

    ``labels`` is a folder of mask images numbered like the frames (see :func:`label_folder`). Frames are
    numbered from 1 as in CDnet (``in000001.jpg`` is the first frame), unless the smallest mask number is 0
    (DAVIS numbering), in which case from 0. Writes ``input/inNNNNNN.jpg`` (JPEG quality 95) and
    ``groundtruth/gtNNNNNN.png`` (masks as 8-bit gray: palette PNGs are converted to their gray values).
    Masks without a frame (beyond the clip or ``max_frames``) are left out; a clip that shares no number with
    its masks is a ``ValueError`` naming both ranges. ``progress``: True shows a tqdm bar (see humanseg.progress).
    """
    labels, out = Path(labels), Path(out_dir)
    masks = {n: p for p in list_images(labels) if (n := frame_number(p)) is not None}
    if not masks:
        raise ValueError(f"{labels}: no mask file has a frame number in its name (e.g. gt000001.png)")
    start = 0 if min(masks) == 0 else 1
    # Written into a hidden temporary folder and renamed when complete: a failure half way (an unreadable
    # mask, a cut-off clip) leaves no sequence with a few frames where the actor list would show it.
    final, out = out, out.with_name(f".{out.name}.{os.getpid()}-{time.monotonic_ns()}.tmp")
    try:
        _write_sequence(clip, masks, labels, out, start, max_frames, progress)
        if final.exists():
            shutil.rmtree(final)
        os.replace(out, final)
    finally:
        if out.exists():
            shutil.rmtree(out)
    return final


def _write_sequence(
    clip: str | Path,
    masks: dict[int, Path],
    labels: Path,
    out: Path,
    start: int,
    max_frames: int | None,
    progress: bool,
) -> None:
    from PIL import Image

    from humanseg.video import read_label

    (out / "input").mkdir(parents=True)
    (out / "groundtruth").mkdir()
    written = 0
    paired = 0
    with (
        open_frames(clip, max_frames=max_frames) as reader,
        bar(
            total=reader.frame_count, desc="reading the clip", unit="frame", enabled=progress, leave=False
        ) as shown,
    ):
        for i, frame in enumerate(reader):
            number = start + i
            Image.fromarray(frame).save(out / "input" / f"in{number:06d}.jpg", quality=95)
            if number in masks:
                try:
                    label = read_label(masks[number])
                except VideoError as err:  # its message would show the temporary unzip folder: name the member
                    raise ValueError(
                        f"mask {masks[number].relative_to(labels).as_posix()} cannot be read as an image; zip the "
                        "masks as PNG files (8-bit gray or palette)"
                    ) from err
                if label.shape != frame.shape[:2]:
                    raise ValueError(
                        f"mask {masks[number].name} is {label.shape[1]}x{label.shape[0]} but the clip's frames are "
                        f"{frame.shape[1]}x{frame.shape[0]}; the masks must be the clip's size"
                    )
                Image.fromarray(label, mode="L").save(out / "groundtruth" / f"gt{number:06d}.png")
                paired += 1
            written += 1
            shown.update()
    if paired == 0:
        raise ValueError(
            f"none of the {len(masks)} masks (numbers {min(masks)}-{max(masks)}) matches a frame of the clip "
            f"(frames {start}-{start + written - 1} were read); number the masks like the frames, "
            "gt000001.png for the first frame"
        )


def import_sequence_zip(zip_path: str | Path, folder: str | Path, name: str, *, require_labels: bool = True) -> Path:
    """Unpack a zip holding one sequence folder (CDnet ``input/`` + ``groundtruth/`` or DAVIS ``JPEGImages/`` +
    ``Annotations/``, at the top or inside one folder) to ``folder/name`` (replacing it); returns that folder.

    Raises ``ValueError`` when the zip holds no such layout, or (``require_labels``) no mask folder.
    """
    folder = Path(folder)
    target = folder / check_name(name, "sequence name")
    tmp = folder / f".unzip-{target.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        extract_zip(zip_path, tmp)
        root = sequence_root(tmp)
        if root is None:
            raise ValueError(
                f"{Path(zip_path).name} holds no sequence folder: expected input/ + groundtruth/ (CDnet: "
                "inNNNNNN.jpg, gtNNNNNN.png) or JPEGImages/ + Annotations/ (DAVIS) in the zip"
            )
        if require_labels and not ((root / "groundtruth").is_dir() or (root / "Annotations").is_dir()):
            raise ValueError(
                f"{Path(zip_path).name} has frames but no masks: add groundtruth/gtNNNNNN.png (CDnet) or "
                "Annotations/NNNNN.png (DAVIS) to the zip"
            )
        if target.exists():
            shutil.rmtree(target)
        os.replace(root, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def cut_clip(source: str | Path, dest: str | Path, max_frames: int = 100) -> Path:
    """An H.264 mp4 of the first ``max_frames`` frames of ``source`` at ``dest`` (written to a temp file and
    renamed, so concurrent callers never see half a file); an existing ``dest`` is kept as it is."""
    from humanseg.video import H264Writer

    dest = Path(dest)
    if dest.is_file():
        return dest
    with (
        atomic_path(dest) as tmp,
        open_frames(source, max_frames=max_frames) as reader,
        H264Writer(tmp, reader.fps) as writer,
    ):
        for frame in reader:
            writer.write(frame)
    return dest
