"""Atomic file writes: a reader (another process, the app, a resumed run) sees the old file or the new one,
never half of one, and a crash leaves no partial target behind.

The data goes to a hidden temporary file beside the target (same folder, so same file system, so the rename is
atomic) and is renamed over the target with ``os.replace``. The temporary name keeps the target's extension,
because writers such as ``cv2.imwrite`` and video muxers pick the format from it. Files are created with
``open()``, which honours the umask (``mkstemp`` would make them 0600, unreadable to others sharing the folder).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The temporary names :func:`atomic_path` makes: ``.<stem>.<pid>-<8 hex>.tmp<suffix>``.
_TEMP_NAME = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.tmp(\.[^.]*)?$")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; it replaces ``path`` when the block ends without
    an exception, and is removed when one is raised. The parent folder is created if missing.

    >>> with atomic_path("run/model.onnx") as tmp:
    ...     torch.onnx.export(module, args, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # pid + random token: concurrent writers of the same target (threads, DDP ranks) never share a temp file.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes | str, *, fsync: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; return the path. ``fsync``: flush it to the disk
    before the rename, so even a power cut leaves the old or the new file (for checkpoints and downloads)."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as f:
            f.write(payload)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
    return Path(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left in ``folder`` when its process was killed mid-write;
    return them. Only files with its exact name pattern whose writing process is gone are removed: a live
    writer's file (this process, another rank, the app) is never touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = _TEMP_NAME.match(path.name)
        if match and path.is_file() and not path.is_symlink() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
