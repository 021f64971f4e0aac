"""Actor silhouettes: people cut out of footage as RGBA crops with a soft alpha matte, plus an index to review.

Methods (``extract_silhouettes(source, method, out_dir)``):

- ``masks``: the clip's own masks (DAVIS ``JPEGImages/`` + ``Annotations/``, CDnet ``input/`` + ``groundtruth/``;
  for CDnet only label 255 is the person: 50 shadow, 170 unknown border band and 85 outside-ROI are not).
- ``plate``: colour difference to the clip's own plate (temporal median of the clip), with cast shadows removed;
  for static-camera clips. Run on the site's own footage this harvests the site's passers-by, so a site with no
  actor clips still gets a dataset, and their feet rows and heights fit the site's perspective.
- any segmenter name of the humanseg registry (``mediapipe``, ``rembg``, ``plate-diff``, ``segnet``...).

Every candidate mask is cleaned (morphology, holes filled), split into person-sized components (fragments of one
person grouped), and filtered: too small, cut by the frame border, too wide for its height (merged groups) or too
sparse are dropped; near-duplicates of the previous frames' silhouettes are skipped. Each kept person is stored
as ``<out_dir>/<name>.png`` (RGBA, cropped to its box plus a margin) and listed in ``<out_dir>/silhouettes.json``
with its source, frame, method, box, height, feet row and an ``accepted`` flag that :func:`reject` clears.
"""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dataset_builder.composite import bleed_colours
from humanseg.files import atomic_write
from humanseg.plate import changed, check_same_size
from humanseg.progress import bar
from humanseg.video import frame_number, list_images, load_sequence, open_frames, read_image

INDEX_NAME = "silhouettes.json"
INDEX_FORMAT = "humanseg-silhouettes/1"
BUILTIN_METHODS = ("masks", "plate")
# Grey levels (largest channel) for ``--method plate``: above the plate estimator's 25, since a cut-out should hold
# only clear person pixels while the estimator would rather leave out too much than too little.
PLATE_THRESHOLD = 30.0


@dataclass
class SilhouetteInfo:
    """One stored silhouette. Pixel values refer to the source frame (``source_size`` = (width, height))."""

    name: str  # file name inside the silhouettes folder
    source: str
    frame: int
    method: str
    box: tuple[int, int, int, int]  # x, y, width, height of the person (alpha >= 128) in the source frame
    height: int  # person height in pixels (= box height)
    feet_row: int  # source row of the lowest person pixel
    source_size: tuple[int, int]
    accepted: bool = True
    note: str = ""  # why it was rejected, when it was

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box"], d["source_size"] = list(self.box), list(self.source_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SilhouetteInfo:
        return cls(**{**d, "box": tuple(d["box"]), "source_size": tuple(d["source_size"])})


@dataclass(frozen=True)
class PersonFilter:
    """Which connected components count as one whole person."""

    min_height: int = 24  # px in the source frame
    min_aspect: float = 1.8  # height / width; below: a merged group, a car, a person lying down
    max_aspect: float = 5.0  # above: a pole, a door edge, a sliver
    min_fill: float = 0.25  # person pixels / box area; below: scattered noise
    max_fill: float = 0.9  # above: a rectangle (a screen, a car side), not a body
    min_solidity: float = 0.35  # area / convex hull area; below: a fragmented detection (parts missing)
    border: int = 2  # px: boxes this close to the frame edge are cut-off people


# Given masks are trusted: only size and border are checked (DAVIS dancers spread their arms, runners jump).
MASK_FILTER = PersonFilter(min_aspect=0.5, max_aspect=8.0, min_fill=0.1, max_fill=0.97, min_solidity=0.0)


@dataclass
class ExtractionReport:
    """What happened to every candidate component (for messages and tests)."""

    frames: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        parts = ", ".join(f"{n} {why}" for why, n in self.dropped.most_common())
        return f"{self.frames} frames, {self.kept} silhouettes kept" + (f"; dropped: {parts}" if parts else "")


# ------------------------------------------------------------------------------------------------------------
# Masks from a plate


def plate_foreground(frame: np.ndarray, plate: np.ndarray, *, threshold: float = PLATE_THRESHOLD,
                     shadows: bool = True) -> np.ndarray:
    """Pixels that differ from the plate by more than ``threshold`` grey levels (largest channel), minus shadows.

    The difference is the hard rule of :func:`humanseg.plate.changed`; the shadow test is this module's own.

    A cast shadow keeps the ground's colour but darkens it: brightness ratio to the plate in [0.6, 0.9] and
    chromaticity (r, g, b fractions) within 0.12 of the plate's. (Tuned on CDnet pedestrians: shadow pixels
    there have ratio 0.65-0.75; people in dark clothes are mostly below 0.45.)
    """
    check_same_size(frame, plate)
    fg = changed(frame, plate, threshold)
    if not shadows:
        return fg
    f = frame.astype(np.float32) + 1.0
    p = plate.astype(np.float32) + 1.0
    fs, ps = f.sum(axis=2), p.sum(axis=2)
    ratio = fs / ps
    chroma = np.abs(f / fs[:, :, None] - p / ps[:, :, None]).max(axis=2)
    shadow = (ratio > 0.6) & (ratio < 0.9) & (chroma < 0.12)
    return fg & ~shadow


# ------------------------------------------------------------------------------------------------------------
# Clean-up, components, cut-out


def clean_mask(mask: np.ndarray, *, open_px: int = 1, close_px: int = 2) -> np.ndarray:
    """Binary clean-up: opening removes specks, closing joins small gaps, then holes are filled."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if open_px > 0:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * open_px + 1,) * 2))
    if close_px > 0:
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * close_px + 1,) * 2))
    return fill_holes(m)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill regions of background not connected to the image border (bool result)."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    padded = np.pad(m, 1)
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 2)
    return padded[1:-1, 1:-1] != 2


def find_people(mask: np.ndarray, person: PersonFilter = PersonFilter(), *,
                report: ExtractionReport | None = None) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Person-sized components of a clean binary mask: ``[(box (x, y, w, h), bool mask of the box), ...]``.

    Fragments of one person (a body split at the belt, a detached head or foot) are grouped first: by a tall,
    narrow dilation before labelling, then by merging boxes that share most of their columns and are
    separated vertically by less than 15% of the taller one's height. Only the original pixels are kept.
    """
    m = (np.asarray(mask) > 0).astype(np.uint8)
    h_img, w_img = m.shape
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 9))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(m, kernel), connectivity=8)
    boxes = {}  # label -> tight x, y, w, h of its original (undilated) pixels
    for i in range(1, n):
        x, y, w, h = (int(v) for v in stats[i, :4])
        bx, by, bw, bh = cv2.boundingRect(((labels[y:y + h, x:x + w] == i) & (m[y:y + h, x:x + w] > 0)).astype(np.uint8))
        if bw and bh:
            boxes[i] = [x + bx, y + by, bw, bh]
    parent = {i: i for i in boxes}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    merged = True
    while merged:  # few components per frame: a quadratic pass until nothing merges is cheap
        merged = False
        roots = sorted({root(i) for i in boxes})
        for ai, a in enumerate(roots):
            for b in roots[ai + 1:]:
                if root(a) != a or root(b) != b:
                    continue
                ax, ay, aw, ah = boxes[a]
                bx, by, bw, bh = boxes[b]
                overlap = min(ax + aw, bx + bw) - max(ax, bx)
                gap = max(ay, by) - min(ay + ah, by + bh)
                if overlap >= 0.5 * min(aw, bw) and gap <= 0.15 * max(ah, bh):
                    x0, y0 = min(ax, bx), min(ay, by)
                    boxes[a] = [x0, y0, max(ax + aw, bx + bw) - x0, max(ay + ah, by + bh) - y0]
                    parent[b] = a
                    merged = True
    groups: dict[int, list[int]] = {}
    for i in boxes:
        groups.setdefault(root(i), []).append(i)

    people = []
    for r, members in groups.items():
        x, y, w, h = boxes[r]
        comp = np.isin(labels[y:y + h, x:x + w], members) & (m[y:y + h, x:x + w] > 0)
        rows, cols = np.nonzero(comp.any(axis=1))[0], np.nonzero(comp.any(axis=0))[0]
        if len(rows) == 0:
            continue
        comp = comp[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        x, y, h, w = x + int(cols[0]), y + int(rows[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        why = _reject_reason((x, y, w, h), comp, (w_img, h_img), person)
        if why:
            if report is not None:
                report.dropped[why] += 1
            continue
        people.append(((x, y, w, h), comp))
    people.sort(key=lambda p: (p[0][0], p[0][1]))
    return people


def solidify(comp: np.ndarray, radius: int) -> np.ndarray:
    """Close gaps of up to ~2 * ``radius`` px inside one person's mask and fill its holes (bool, same shape).

    Plate differences break a body where clothes match the background; a closing scaled to the person's
    size rejoins the pieces without bridging the gap between the legs of a walker.
    """
    if radius < 1:
        return fill_holes(comp)
    pad = radius + 1
    m = np.pad(comp.astype(np.uint8), pad)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
    return fill_holes(m)[pad:-pad, pad:-pad]


def _reject_reason(box, comp: np.ndarray, size: tuple[int, int], person: PersonFilter) -> str:
    x, y, w, h = box
    if h < person.min_height:
        return f"shorter than {person.min_height} px"
    b = person.border
    if x < b or y < b or x + w > size[0] - b or y + h > size[1] - b:
        return "cut by the frame border"
    aspect = h / w
    if aspect < person.min_aspect:
        return "too wide for their height (merged group?)"
    if aspect > person.max_aspect:
        return "too narrow"
    fill = comp.mean()
    if fill < person.min_fill:
        return "too sparse"
    if fill > person.max_fill:
        return "too boxy"
    if person.min_solidity > 0:
        points = cv2.findNonZero(comp.astype(np.uint8))
        hull = cv2.contourArea(cv2.convexHull(points))
        if hull > 0 and comp.sum() / hull < person.min_solidity:
            return "fragmented (parts missing)"
    return ""


def cut_out(frame: np.ndarray, box: tuple[int, int, int, int], comp: np.ndarray, *,
            edge_sigma: float = 0.7) -> np.ndarray:
    """RGBA crop of one person: box plus a margin, alpha = the component's mask with a soft (Gaussian) edge."""
    x, y, w, h = box
    pad = 3 + int(0.02 * h)
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = max(x - pad, 0), max(y - pad, 0), min(x + w + pad, W), min(y + h + pad, H)
    solid = np.zeros((y1 - y0, x1 - x0), bool)
    solid[y - y0:y - y0 + h, x - x0:x - x0 + w] = comp
    alpha = cv2.GaussianBlur(solid.astype(np.float32), (0, 0), edge_sigma) if edge_sigma > 0 else solid.astype(np.float32)
    # Keep the person's own pixels fully opaque: the blur only softens the outside edge half.
    alpha = np.where(solid, np.maximum(alpha, 0.5), alpha)
    rgb = bleed_colours(frame[y0:y1, x0:x1], solid)
    a8 = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.dstack([rgb, a8])


# ------------------------------------------------------------------------------------------------------------
# Index on disk


def index_path(folder: str | Path) -> Path:
    return Path(folder) / INDEX_NAME


def load_index(folder: str | Path) -> list[SilhouetteInfo]:
    """All silhouettes listed in ``<folder>/silhouettes.json`` (accepted or not).

    Raises FileNotFoundError when the folder or its index is missing.
    """
    folder = Path(folder)
    path = index_path(folder)
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder}: no {INDEX_NAME} here; make silhouettes with "
            "`python -m dataset_builder silhouettes SOURCE --method masks|plate|SEGMENTER --out DIR`"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); re-run the silhouette extraction") from err
    if data.get("format") != INDEX_FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r}, expected {INDEX_FORMAT!r}")
    return [SilhouetteInfo.from_dict(d) for d in data["items"]]


def load_silhouettes(folder: str | Path) -> list[SilhouetteInfo]:
    """The accepted silhouettes of ``folder`` (rejected ones are what the builder must not use)."""
    return [info for info in load_index(folder) if info.accepted]


def read_silhouette(folder: str | Path, info: SilhouetteInfo | str) -> np.ndarray:
    """The RGBA uint8 crop of one silhouette."""
    name = info.name if isinstance(info, SilhouetteInfo) else info
    path = Path(folder) / name
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"{path}: silhouette image missing or unreadable; re-run the extraction")
    if img.ndim != 3 or img.shape[2] != 4:
        raise ValueError(f"{path}: expected an RGBA PNG, got shape {img.shape}")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def _write_index(folder: Path, items: list[SilhouetteInfo]) -> None:
    data = {"format": INDEX_FORMAT, "items": [i.to_dict() for i in items]}
    atomic_write(index_path(folder), json.dumps(data, indent=1))


def _set_accepted(folder: str | Path, names: list[str], accepted: bool, note: str) -> int:
    folder = Path(folder)
    items = load_index(folder)
    by_name = {i.name: i for i in items}
    wanted = [Path(n).name for n in names]
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise ValueError(f"{folder}: no silhouette named {', '.join(unknown)} in {INDEX_NAME}")
    changed = 0
    for n in wanted:
        info = by_name[n]
        if info.accepted != accepted:
            changed += 1
        info.accepted, info.note = accepted, note
    _write_index(folder, items)
    return changed


def reject(folder: str | Path, names: list[str], reason: str = "rejected by user") -> int:
    """Mark silhouettes as rejected (the builder skips them); returns how many changed. Files are kept."""
    return _set_accepted(folder, names, False, reason)


def accept(folder: str | Path, names: list[str]) -> int:
    """Undo :func:`reject`; returns how many changed."""
    return _set_accepted(folder, names, True, "")


# ------------------------------------------------------------------------------------------------------------
# Extraction


def _slug(source: Path) -> str:
    name = source.stem if source.is_file() else source.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "clip"


def _frames(source: Path, step: int, max_frames: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, RGB frame): numbers from file names for folders, positions for video files."""
    if source.is_dir():
        inner = next((source / d for d in ("input", "JPEGImages") if (source / d).is_dir()), source)
        paths = list_images(inner)
        paths = paths[::step][:max_frames]
        for pos, path in enumerate(paths):
            n = frame_number(path)
            yield (n if n is not None else pos * step), read_image(path)
        return
    with open_frames(source, step=step, max_frames=max_frames) as reader:
        for pos, frame in enumerate(reader):
            yield pos * step, frame


def _frame_total(source: Path, step: int, max_frames: int | None) -> int | None:
    try:
        with open_frames(source, step=step, max_frames=max_frames) as reader:
            return reader.frame_count
    except ValueError:
        return None


def _mask_frames(source: Path, step: int, max_frames: int | None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    seq = load_sequence(source)
    items = [it for it in seq.items if it.label is not None]
    if not items:
        where = "groundtruth/" if seq.layout == "cdnet" else "Annotations/"
        raise ValueError(f"{source}: no masks found in {where}; use --method plate or a segmenter instead of masks")
    for item in items[::step][:max_frames]:
        frame, label = seq.read(item)  # VideoError (a ValueError) names a mask of the wrong size
        # CDnet: only 255 is the moving person (50 shadow, 85 outside ROI, 170 unknown are not); DAVIS is 0/255.
        yield item.number, frame, label == 255


def _candidate_masks(source: Path, method: str, step: int, max_frames: int | None, *, plate, checkpoint,
                     threshold: float, shadows: bool) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(frame number, frame, raw bool mask) for every frame the method looks at."""
    if method == "masks":
        yield from _mask_frames(source, step, max_frames)
        return
    if method == "plate" or _takes_plate(method):
        if plate is None:
            from dataset_builder.backgrounds import estimate_plates

            plate = estimate_plates(source, 1)[0]
        elif isinstance(plate, (str, Path)):
            plate = read_image(plate)
    if method == "plate":
        for number, frame in _frames(source, step, max_frames):
            yield number, frame, plate_foreground(frame, plate, threshold=threshold, shadows=shadows)
        return
    from humanseg.segmenters import create_segmenter

    segmenter = create_segmenter(method, plate=plate if _takes_plate(method) else None, checkpoint=checkpoint)
    try:
        for number, frame in _frames(source, step, max_frames):
            yield number, frame, segmenter.segment(frame) >= 0.5
    finally:
        segmenter.close()


def _takes_plate(method: str) -> bool:
    if method in BUILTIN_METHODS:
        return False
    from humanseg.segmenters import capabilities

    return capabilities(method).takes_plate


def methods() -> list[str]:
    """Valid ``method`` names: ``masks``, ``plate`` and every registered segmenter."""
    from humanseg.segmenters import available

    return [*BUILTIN_METHODS, *available()]


def _is_duplicate(box, comp: np.ndarray, recent: deque, iou_min: float) -> bool:
    small = cv2.resize(comp.astype(np.uint8), (16, 32), interpolation=cv2.INTER_AREA) > 0
    x, y, w, h = box
    for (rx, ry, rw, rh), rsmall in recent:
        ix = max(0, min(x + w, rx + rw) - max(x, rx))
        iy = max(0, min(y + h, ry + rh) - max(y, ry))
        inter = ix * iy
        if inter / (w * h + rw * rh - inter) < iou_min:
            continue
        if (small & rsmall).sum() / max((small | rsmall).sum(), 1) >= iou_min:
            return True
    recent.append((box, small))
    return False


def extract_silhouettes(
    source: str | Path,
    method: str,
    out_dir: str | Path,
    *,
    step: int = 1,
    max_frames: int | None = None,
    person: PersonFilter | None = None,
    plate: np.ndarray | str | Path | None = None,
    checkpoint: str | Path | None = None,
    threshold: float = PLATE_THRESHOLD,
    shadows: bool = True,
    duplicate_iou: float = 0.92,
    progress: bool = False,
    report: ExtractionReport | None = None,
) -> list[SilhouetteInfo]:
    """Cut people out of ``source`` (a video file, an image folder or a CDnet/DAVIS folder) into ``out_dir``.

    ``method``: ``masks``, ``plate`` or a segmenter name (see :func:`methods`). ``step``/``max_frames`` thin the
    frames. ``person`` overrides the person-shape filter (default: lenient for ``masks``, strict otherwise).
    ``plate`` (array or image path) replaces the clip's own median plate for ``plate`` and plate-based
    segmenters; ``threshold`` (grey levels) and ``shadows`` tune the ``plate`` method. Near-duplicates
    (box and shape IoU >= ``duplicate_iou`` with a recent silhouette) are skipped. ``progress``: a bar over the
    frames on stderr.

    Silhouettes from an earlier run with the same source and method in ``out_dir`` are replaced; others kept.
    Returns the new silhouettes. Raises FileNotFoundError for a missing source and ValueError for an unknown
    method, masks of the wrong size, or when no person-sized silhouette is found (then nothing is written).
    """
    source = Path(source)
    out = Path(out_dir)
    if not source.exists():
        raise FileNotFoundError(f"{source}: actor clip not found; give a video file or a folder of frames")
    if method not in BUILTIN_METHODS:
        valid = methods()
        if method not in valid:
            raise ValueError(f"unknown silhouette method {method!r}; valid: {', '.join(valid)}")
    person = person or (MASK_FILTER if method == "masks" else PersonFilter())
    report = report if report is not None else ExtractionReport()
    total = _frame_total(source, step, max_frames)
    previous = load_index(out) if index_path(out).is_file() else []
    src_key = str(source.resolve())
    kept_old = [i for i in previous if not (i.source == src_key and i.method == method)]
    slug = f"{_slug(source)}-{re.sub(r'[^A-Za-z0-9_-]+', '_', method)}"

    found: list[SilhouetteInfo] = []
    recent: deque = deque(maxlen=8)
    candidates = _candidate_masks(source, method, step, max_frames, plate=plate, checkpoint=checkpoint,
                                  threshold=threshold, shadows=shadows)
    with bar(candidates, total=total, desc=f"silhouettes ({method})", unit="frame", enabled=progress) as frames:
        for number, frame, raw in frames:
            report.frames += 1
            cleaned = clean_mask(raw) if method != "masks" else fill_holes(raw)
            for k, (box, comp) in enumerate(find_people(cleaned, person, report=report)):
                if method != "masks":
                    comp = solidify(comp, round(0.03 * box[3]))
                if _is_duplicate(box, comp, recent, duplicate_iou):
                    report.dropped["near-duplicate of a recent frame"] += 1
                    continue
                rgba = cut_out(frame, box, comp)
                name = f"{slug}-{number:06d}-{k}.png"
                if not found:
                    out.mkdir(parents=True, exist_ok=True)
                _write_png_rgba(out / name, rgba)
                x, y, w, h = box
                found.append(SilhouetteInfo(
                    name=name, source=src_key, frame=int(number), method=method, box=(x, y, w, h), height=h,
                    feet_row=y + h - 1, source_size=(frame.shape[1], frame.shape[0]),
                ))
                report.kept += 1
    if not found:
        raise ValueError(
            f"{source}: no person-sized silhouette found with method {method!r} ({report.summary()}); "
            + ("check that the masks mark people with 255" if method == "masks" else
               "try another method, a lower --min-height, or a clip where people walk fully inside the frame")
        )
    _write_index(out, kept_old + found)
    return found


def _write_png_rgba(path: Path, rgba: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError(f"could not encode silhouette {path.name}")
    atomic_write(path, buf.tobytes())


def contact_sheet(folder: str | Path, *, cell: int = 96, columns: int = 10, include_rejected: bool = True) -> np.ndarray:
    """An RGB review image of a folder's silhouettes on grey, rejected ones crossed out in red, names omitted.

    Cells follow the index order, so cell i is ``load_index(folder)[i]`` (for a reviewer picking names to reject).
    """
    infos = load_index(folder) if include_rejected else load_silhouettes(folder)
    if not infos:
        raise ValueError(f"{folder}: no silhouettes to show")
    rows = (len(infos) + columns - 1) // columns
    sheet = np.full((rows * cell, columns * cell, 3), 128, np.uint8)
    for i, info in enumerate(infos):
        rgba = read_silhouette(folder, info)
        s = (cell - 4) / max(rgba.shape[:2])
        small = cv2.resize(rgba, (max(1, round(rgba.shape[1] * s)), max(1, round(rgba.shape[0] * s))),
                           interpolation=cv2.INTER_AREA)
        a = small[:, :, 3:4].astype(np.float32) / 255
        r, c = divmod(i, columns)
        y0 = r * cell + (cell - small.shape[0]) // 2
        x0 = c * cell + (cell - small.shape[1]) // 2
        region = sheet[y0:y0 + small.shape[0], x0:x0 + small.shape[1]]
        region[:] = (small[:, :, :3] * a + region * (1 - a)).astype(np.uint8)
        if not info.accepted:
            cv2.line(sheet, (c * cell, r * cell), ((c + 1) * cell - 1, (r + 1) * cell - 1), (255, 0, 0), 2)
    return sheet
