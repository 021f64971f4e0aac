"""Build a site dataset on disk: composites, masks, plates, preview and manifest (layout in docs/ARCHITECTURE.md).

```
DATASET/images/000000.jpg   masks/000000.png   plates/plate000.png   preview.png   manifest.json
```

With a working scale that makes the site's frames larger than the samples (tiled, see :mod:`humanseg.scale`),
every sample is a window of the scaled plate, and its plate window is stored beside the whole plate
(``plates/windows/plate000-y00040-x00080.png``) so a plate model sees the plate of the same window.

The manifest is written last and atomically, so an interrupted build never looks complete. A build can be
resumed: the output folder remembers the build's id (a hash of sources, parameters and seed) in
``.build-state.json``; a rerun with the same inputs keeps every sample file already written (files are written
atomically, so an existing file is whole) and makes the rest. Samples depend only on (seed, index), so an
interrupted and resumed build is byte-identical to an unbroken one, whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from dataset_builder.backgrounds import background_files, encode_png
from dataset_builder.composite import CompositeConfig, Compositor, prepare_actor
from dataset_builder.perspective import PerspectiveModel
from dataset_builder.silhouettes import SilhouetteInfo, index_path, load_index, read_silhouette
from humanseg.checks import check_frame_size, check_output_dir
from humanseg.files import atomic_write
from humanseg.progress import bar
from humanseg.scale import tiled, working_size
from humanseg.sizes import parse_size
from humanseg.video import read_image, read_label

if TYPE_CHECKING:
    from tqdm import tqdm

FORMAT = "humanseg-dataset/1"
MANIFEST_NAME = "manifest.json"
STATE_NAME = ".build-state.json"
PREVIEW_NAME = "preview.png"
_OWNED = ("images", "masks", "plates", PREVIEW_NAME, MANIFEST_NAME, STATE_NAME)
_MIN_FIT_POINTS = 5
MIN_SIZE = 16  # least pixels per side (HxW) of a sample


# ------------------------------------------------------------------------------------------------------------
# Inputs


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _silhouette_set(folder: Path) -> tuple[list[SilhouetteInfo], str]:
    """Accepted silhouettes of one folder and a checksum over its index and their files."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: silhouettes folder not found")
    if not index_path(folder).is_file():
        raise FileNotFoundError(
            f"{folder}: no silhouettes.json; make silhouettes first with "
            "`python -m dataset_builder silhouettes SOURCE --method masks|plate|SEGMENTER --out DIR`"
        )
    infos = load_index(folder)
    accepted = [i for i in infos if i.accepted]
    if not accepted:
        raise ValueError(
            f"{folder}: no accepted person silhouette ({len(infos)} listed, all rejected or none found); "
            "extract silhouettes from a clip with people or accept some again"
        )
    h = hashlib.sha256(index_path(folder).read_bytes())
    for info in accepted:
        path = folder / info.name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: listed in {folder / 'silhouettes.json'} but missing; re-run extraction")
        h.update(_sha256_file(path).encode())
    return accepted, h.hexdigest()


def resolve_perspective(spec: str | PerspectiveModel | None, size: tuple[int, int], plate_size: tuple[int, int],
                        silhouettes: list[SilhouetteInfo]) -> PerspectiveModel:
    """The perspective model in output pixels (``size`` = (H, W)).

    ``spec``: a model; ``"ROW:HEIGHT,ROW:HEIGHT"`` in output pixels; ``"auto"`` (fit to silhouettes harvested
    from the site, i.e. whose source frames have the plates' size; error if fewer than 5); or None (``auto``
    when possible, else :meth:`PerspectiveModel.default`; the manifest records which).
    """
    height = size[0]
    if isinstance(spec, PerspectiveModel):
        return spec.scaled(height)
    if spec is not None and spec.strip().lower() != "auto":
        return PerspectiveModel.parse(spec, height)
    site = [s for s in silhouettes if tuple(s.source_size) == tuple(plate_size)]
    if len(site) < _MIN_FIT_POINTS:
        if spec is None:
            return PerspectiveModel.default(height)
        raise ValueError(
            f"--perspective auto needs >= {_MIN_FIT_POINTS} silhouettes harvested from the site (source frames of the "
            f"plates' size {plate_size[0]}x{plate_size[1]}), found {len(site)}; harvest some with "
            "`python -m dataset_builder silhouettes SITE_CLIP --method plate --out DIR` and pass that folder too, "
            "or give two reference people as ROW:HEIGHT,ROW:HEIGHT"
        )
    s = height / plate_size[1]  # site silhouettes are in plate pixels
    rows = np.array([i.feet_row for i in site], dtype=np.float64) * s
    heights = np.array([i.height for i in site], dtype=np.float64) * s
    return PerspectiveModel.fit(rows, heights, height)


# ------------------------------------------------------------------------------------------------------------
# Writing samples


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as JPEG")
    return buf.tobytes()


def encode_mask(mask: np.ndarray) -> bytes:
    """8-bit grey PNG of a 0/255 mask; run-length strategy: 2-3x faster than the default for binary masks."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, buf = cv2.imencode(".png", mask, params)
    if not ok:
        raise ValueError(f"could not encode a {mask.shape} mask as PNG")
    return buf.tobytes()


def _sample_paths(out: Path, index: int) -> tuple[Path, Path]:
    return out / "images" / f"{index:06d}.jpg", out / "masks" / f"{index:06d}.png"


def _valid_sample(out: Path, index: int, size: tuple[int, int]) -> bool:
    """Both files exist and their headers have the dataset size (files are only ever written whole)."""
    for path in _sample_paths(out, index):
        try:
            with Image.open(path) as img:
                if img.size != (size[1], size[0]):
                    return False
        except (OSError, ValueError):
            return False
    return True


def _write_sample(compositor: Compositor, out: Path, index: int) -> int:
    sample = compositor.sample(index)
    image_path, mask_path = _sample_paths(out, index)
    atomic_write(image_path, encode_jpeg(sample.image, sample.plan.jpeg_quality))
    atomic_write(mask_path, encode_mask(sample.mask))
    return index


_WORKER: dict = {}


def _init_worker(compositor: Compositor, out: str) -> None:
    cv2.setNumThreads(1)  # one process per core already
    _WORKER["compositor"], _WORKER["out"] = compositor, Path(out)


def _work(indices: list[int]) -> list[int]:
    return [_write_sample(_WORKER["compositor"], _WORKER["out"], i) for i in indices]


# ------------------------------------------------------------------------------------------------------------
# Preview


def draw_preview(images: list[np.ndarray], masks: list[np.ndarray], *, columns: int = 4, tile_width: int = 320) -> np.ndarray:
    """Grid of samples, each with its mask's outline drawn in red (RGB uint8)."""
    if not images:
        raise ValueError("no samples to preview")
    tiles = []
    for image, mask in zip(images, masks, strict=True):
        tile = image.copy()
        contours, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(tile, contours, -1, (255, 0, 0), 1)
        if tile.shape[1] > tile_width:
            s = tile_width / tile.shape[1]
            tile = cv2.resize(tile, (tile_width, max(1, round(tile.shape[0] * s))), interpolation=cv2.INTER_AREA)
        tiles.append(tile)
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    grid = np.full((rows * (h + 2), columns * (w + 2), 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = tile
    return grid


# ------------------------------------------------------------------------------------------------------------
# Build


def _prepare_out(out: Path, dataset_id: str, overwrite: bool) -> bool:
    """Make ``out`` ready for this build; True when it already holds this exact, complete dataset."""
    manifest = out / MANIFEST_NAME
    state = out / STATE_NAME
    existing = None
    if manifest.is_file():
        try:
            existing = json.loads(manifest.read_text()).get("id")
        except (json.JSONDecodeError, AttributeError):
            existing = "unreadable manifest"
    elif state.is_file():
        try:
            existing = json.loads(state.read_text()).get("id")
        except (json.JSONDecodeError, AttributeError):
            existing = "unreadable state"
    elif out.is_dir() and any(out.iterdir()):
        existing = "files that are not a dataset"
    if existing == dataset_id:
        return manifest.is_file()
    if existing is not None:
        if not overwrite:
            what = existing if " " in str(existing) else f"a different dataset build (id {str(existing)[:12]})"
            raise ValueError(
                f"{out}: already holds {what}; choose a new --out folder, or pass --overwrite to replace it"
            )
        # The manifest goes first: a folder being replaced must never look complete.
        for name in (MANIFEST_NAME, *_OWNED):
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(state, json.dumps({"id": dataset_id, "format": FORMAT}).encode())
    return False


def _write_samples(out: Path, plate_images: dict[str, np.ndarray], compositor: Compositor, hw: tuple[int, int],
                   count: int, workers: int, samples_done: tqdm) -> None:
    """Write the plates (manifest name -> image) and every sample not already valid in ``out``."""
    for sub in ("images", "masks", "plates"):
        (out / sub).mkdir(exist_ok=True)
    for name, plate in plate_images.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out / name, encode_png(plate))

    missing = [i for i in range(count) if not _valid_sample(out, i, hw)]
    samples_done.update(count - len(missing))  # kept from an interrupted build
    if workers == 1 or len(missing) < 2 * workers:
        for i in missing:
            _write_sample(compositor, out, i)
            samples_done.update()
        return
    import multiprocessing

    chunk = max(1, min(32, len(missing) // (workers * 8)))
    chunks = [missing[k:k + chunk] for k in range(0, len(missing), chunk)]
    # spawn: safe from threads of the calling process (a web app); workers get the compositor pickled once.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(compositor, str(out))) as pool:
        try:
            for finished in pool.map(_work, chunks):
                samples_done.update(len(finished))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def build_dataset(
    plates: str | Path | Iterable[str | Path],
    silhouette_dirs: str | Path | Iterable[str | Path],
    out_dir: str | Path,
    count: int,
    size: str | tuple[int, int] | None = None,
    seed: int = 0,
    *,
    max_actors: int | None = None,
    perspective: str | PerspectiveModel | None = None,
    val_fraction: float = 0.1,
    config: CompositeConfig | None = None,
    feet_region: str | Path | None = None,
    workers: int = 1,
    preview_count: int = 16,
    overwrite: bool = False,
    progress: bool = False,
    working_scale: float | None = None,
) -> Path:
    """Composite ``count`` samples for one site into ``out_dir``; returns the manifest's path.

    ``plates``: plate images or folders of them (one camera view, one size). ``silhouette_dirs``: folders made
    by :func:`~dataset_builder.silhouettes.extract_silhouettes` (each folder is sampled with equal weight;
    rejected silhouettes are skipped). ``size``: (H, W) or ``"HxW"`` of the samples (default: the plates' size).
    ``perspective``: see :func:`resolve_perspective` (``"ROW:HEIGHT,ROW:HEIGHT"`` in output pixels, ``"auto"``,
    or None). ``max_actors`` overrides ``config.max_actors``. ``val_fraction``: share of samples (the last
    ones) in the validation split. ``feet_region``: optional image, white where feet may stand. ``workers``:
    processes (results do not depend on it). ``progress``: a bar over the samples on stderr.

    ``working_scale`` (network px per frame px, e.g. from :func:`dataset_builder.site_scale.fit_site_scale`):
    None or a scale at which the plate fits ``size`` (:func:`humanseg.scale.tiled` false): each sample is the whole
    plate resized to ``size``, as without it. Otherwise each sample is a ``size`` window of the plate resized by
    the scale, people placed at the site's own size in pixels; then a ``"ROW:HEIGHT,ROW:HEIGHT"`` perspective is
    in PLATE (frame) pixels, and a :class:`PerspectiveModel` may be in any image height. The manifest records
    ``working_scale``, ``tiled``, ``working_size`` (the scaled plate, H x W) and ``site_plates`` (the whole plates).

    Raises FileNotFoundError / ValueError naming the input and the fix for: no plates, plates of different
    sizes, a silhouettes folder without index or without an accepted silhouette, a bad perspective or size,
    or an ``out_dir`` holding another dataset (unless ``overwrite``).
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    config = config or CompositeConfig()
    if max_actors is not None:
        config = replace(config, max_actors=int(max_actors))
    out = check_output_dir(out_dir)

    # --- inputs -------------------------------------------------------------------------------------------
    plate_files = background_files(plates)
    raw_plates = [read_image(p) for p in plate_files]
    plate_size = (raw_plates[0].shape[1], raw_plates[0].shape[0])
    for path, img in zip(plate_files, raw_plates, strict=True):
        if (img.shape[1], img.shape[0]) != plate_size:
            raise ValueError(
                f"{path}: plate is {img.shape[1]}x{img.shape[0]} but {plate_files[0].name} is "
                f"{plate_size[0]}x{plate_size[1]}; give plates of one camera view (same size)"
            )
    hw = parse_size(size, minimum=MIN_SIZE) if size is not None else (plate_size[1], plate_size[0])
    check_frame_size(hw[1], hw[0], f"--size {hw[0]}x{hw[1]}" if size is not None else plate_files[0])
    if working_scale is not None and not (math.isfinite(working_scale) and working_scale > 0):
        raise ValueError(f"working_scale must be a positive number (network px per frame px), got {working_scale!r}; "
                         "fit one with dataset_builder.site_scale.fit_site_scale or pass None")
    plate_hw = (plate_size[1], plate_size[0])
    windows = tiled(plate_hw, working_scale, hw)
    work_hw = working_size(plate_hw, working_scale) if windows else hw  # the plate as the compositor sees it
    interp = cv2.INTER_AREA if work_hw[0] < plate_size[1] else cv2.INTER_LINEAR
    site_plates = [cv2.resize(p, (work_hw[1], work_hw[0]), interpolation=interp) if p.shape[:2] != work_hw else p
                   for p in raw_plates]
    width_scale = (work_hw[1] / plate_size[0]) / (work_hw[0] / plate_size[1])

    dirs = [Path(silhouette_dirs)] if isinstance(silhouette_dirs, (str, Path)) else [Path(d) for d in silhouette_dirs]
    if not dirs and config.max_actors > 0:
        raise ValueError("no silhouettes folder given; pass --silhouettes DIR (or --max-actors 0 for negatives only)")
    sets = [_silhouette_set(d) for d in dirs]
    all_infos = [info for infos, _ in sets for info in infos]
    if windows:  # references in plate pixels, the model in the scaled plate's
        model = resolve_perspective(perspective, plate_hw, plate_size, all_infos).scaled(work_hw[0])
    else:
        model = resolve_perspective(perspective, hw, plate_size, all_infos)

    region = None
    sources_region = []
    if feet_region is not None:
        rpath = Path(feet_region)
        region_img = read_label(rpath)
        region = cv2.resize(region_img, (work_hw[1], work_hw[0]), interpolation=cv2.INTER_NEAREST) > 127
        sources_region = [{"path": str(rpath), "sha256": _sha256_file(rpath)}]

    params = {
        "max_actors": config.max_actors,
        "perspective": model.to_dict(),
        "val_fraction": val_fraction,
        "composite": asdict(config),
        "plate_size": list(plate_size),
    }
    if working_scale is not None:  # absent otherwise: builds without a scale keep their id (and resume)
        params["working_scale"] = float(working_scale)
    sources = {
        "plates": [{"path": str(p), "sha256": _sha256_file(p)} for p in plate_files],
        "silhouettes": [{"path": str(d), "sha256": digest, "count": len(infos)} for d, (infos, digest) in zip(dirs, sets, strict=True)],
    }
    if sources_region:
        sources["feet_region"] = sources_region
    # The id ignores paths: moving the input folders does not invalidate a finished or half-done build.
    id_payload = {
        "format": FORMAT, "size": list(hw), "seed": seed, "count": count, "params": params,
        "sources": {k: [e["sha256"] for e in v] for k, v in sources.items()},
    }
    dataset_id = hashlib.sha256(json.dumps(id_payload, sort_keys=True).encode()).hexdigest()

    # --- actors and compositor (before touching out_dir: a bad input leaves nothing behind) -----------------
    max_person = float(model.height_at(work_hw[0] * (1 + config.bottom_overhang))) * (1 + config.size_jitter) * 1.05
    actors = []
    for group, (d, (infos, _)) in enumerate(zip(dirs, sets, strict=True)):
        for info in infos:
            actors.append(prepare_actor(read_silhouette(d, info), info.name, group=group, max_height=max(max_person, 8)))
    compositor = Compositor(site_plates, actors, model, config, seed=seed, width_scale=width_scale, feet_region=region,
                            window=hw if windows else None)
    plans = [compositor.plan(i) for i in range(count)]
    # The whole plates: at dataset size, or (windows) at the frame's own size for the model to keep.
    site_plate_names = [f"plates/plate{i:03d}.png" for i in range(len(site_plates))]
    plate_images = dict(zip(site_plate_names, raw_plates if windows else site_plates, strict=True))
    sample_plates = []
    for plan in plans:
        name = site_plate_names[plan.plate]
        if windows:
            wy, wx = plan.window
            name = f"plates/windows/plate{plan.plate:03d}-y{wy:05d}-x{wx:05d}.png"
            plate_images.setdefault(name, site_plates[plan.plate][wy:wy + hw[0], wx:wx + hw[1]])
        sample_plates.append(name)

    with bar(total=count, desc="compositing", unit="img", enabled=progress) as samples_done:
        if _prepare_out(out, dataset_id, overwrite):
            samples_done.update(count)
            return out / MANIFEST_NAME
        _write_samples(out, plate_images, compositor, hw, count, workers, samples_done)

    # --- preview and manifest (last) ----------------------------------------------------------------------
    # At least one validation sample when a split is asked for (round half up, not to even).
    n_val = min(max(int(count * val_fraction + 0.5), 1), count - 1) if val_fraction > 0 and count > 1 else 0
    n_train = count - n_val
    samples = []
    for i, plan in enumerate(plans):
        image, mask = _sample_paths(out, i)
        samples.append({
            "image": image.relative_to(out).as_posix(), "mask": mask.relative_to(out).as_posix(),
            "plate": sample_plates[i], "split": "train" if i < n_train else "val", "actors": plan.actors,
        })
    shown = np.unique(np.linspace(0, count - 1, min(preview_count, count)).round().astype(int))
    grid = draw_preview([read_image(out / samples[i]["image"]) for i in shown],
                        [read_label(out / samples[i]["mask"]) for i in shown])
    atomic_write(out / PREVIEW_NAME, encode_png(grid))
    manifest = {
        "format": FORMAT, "id": dataset_id, "size": list(hw), "seed": seed, "count": count, "params": params,
        "sources": sources, "splits": {"train": n_train, "val": n_val}, "samples": samples,
        "working_scale": None if working_scale is None else float(working_scale), "tiled": windows,
        "working_size": list(work_hw), "site_plates": site_plate_names,
    }
    atomic_write(out / MANIFEST_NAME, json.dumps(manifest, indent=1).encode())
    (out / STATE_NAME).unlink(missing_ok=True)
    return out / MANIFEST_NAME


def read_manifest(dataset: str | Path) -> dict:
    """The manifest of a finished dataset folder (or of the manifest file itself).

    Raises FileNotFoundError for a folder without manifest (an unfinished build: rerun it to resume).
    """
    path = Path(dataset)
    path = path / MANIFEST_NAME if path.is_dir() else path
    if not path.is_file():
        hint = " (a build was interrupted: rerun the same build command to resume it)" if (path.parent / STATE_NAME).is_file() else ""
        raise FileNotFoundError(f"{path}: no dataset manifest{hint}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rebuild the dataset (same command, --overwrite)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: format {found!r}, expected {FORMAT!r}; rebuild the dataset (same command, --overwrite)")
    return data
