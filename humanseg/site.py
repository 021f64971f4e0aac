"""The site rules, without a user interface: what the app, ``examples/build_site.py`` and scripts do with a site.

A site is one fixed camera view (see :mod:`humanseg.workspace` for its folders). This module holds the rules
the app applied inline before: every plate of a site has one size (:func:`check_one_view`), which plate goes
with a clip (:func:`plate_for`), how silhouette sets and datasets are named and built, the ``site/run`` ids of
trained models, and the summaries with their "Next:" hints. Functions raise ``ValueError`` (or
``FileNotFoundError``) with a message written for the user: the app shows it as it is.

``progress: bool``: long steps show tqdm bars (humanseg.progress), which the app tracks with
``gr.Progress(track_tqdm=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from humanseg import workspace as ws
from humanseg.files import atomic_write
from humanseg.occupancy import HeightAt
from humanseg.segment import ExtraOutputs, PlateFollowing, SegmentResult
from humanseg.video import open_frames, read_image

if TYPE_CHECKING:
    from dataset_builder.perspective import PerspectiveModel
    from dataset_builder.site_scale import SiteScale

EXAMPLE_SITE = "vtest"
EXAMPLE_SOURCE = ws.PROJECT_ROOT / "examples" / "data" / "vtest.avi"
EXAMPLE_CLIP_FRAMES = 100
EXAMPLE_DEMO_CLIP = "vtest_demo.mp4"  # written by examples/build_site.py into the example site's clips
EXAMPLE_MODEL = f"{EXAMPLE_SITE}/demo"  # its demo model (runs/demo), preselected in the Segment tab

SILHOUETTE_PAGE = 60  # silhouettes per review page: a harvested clip gives thousands, a page is what one reviews
BUILD_POOL_FROM = 200  # images: from this many on, a dataset is composited by a pool of workers
BUILD_MAX_WORKERS = 8


# --------------------------------------------------------------------------------------------------------------
# One camera view: plates


def plate_sizes(site: ws.Site) -> set[tuple[int, int]]:
    """The (width, height) sizes of the site's plates (one, or none, in a consistent site)."""
    from PIL import Image

    sizes = set()
    for p in site.plates():
        with Image.open(p) as img:
            sizes.add(img.size)
    return sizes


def check_one_view(site: ws.Site, sizes: set[tuple[int, int]], what: str) -> None:
    """A site is one camera view: new plates (or a clip to estimate them from) must have one size, the size of
    the plates the site has. ``what`` names the new images in the message."""
    have = plate_sizes(site)
    if len(sizes | have) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        had = f" but the site's plates are {', '.join(f'{w}x{h}' for w, h in sorted(have))}" if have else ""
        raise ValueError(
            f"{what} are {shown}{had}: a site is one camera view of one size. Create a new site for another camera, "
            "or remove the old plates first."
        )


def plate_for(site: ws.Site | None, size: tuple[int, int]) -> Path | None:
    """The site's first plate of frame size ``size`` (width, height), if any."""
    from PIL import Image

    for p in site.plates() if site is not None else []:
        with Image.open(p) as img:
            if img.size == tuple(size):
                return p
    return None


def add_plates(site: ws.Site, images: list[Path]) -> list[Path]:
    """Copy empty-scene images into the site's plates, each checked to be a readable image of the site's size;
    returns the site's plates."""
    if not images:
        raise ValueError("No background image uploaded: add one or more photos of the empty scene (PNG/JPEG).")
    sizes = set()
    for p in images:
        img = read_image(p)  # VideoError (a ValueError) names a file that is not an image
        sizes.add((img.shape[1], img.shape[0]))
    check_one_view(site, sizes, "The background images")
    for p in images:
        ws.store_file(p, site.plates_dir)
    return site.plates()


def estimate_site_plates(
    site: ws.Site, clip: Path, count: int, *, leave_out_people: bool = False, progress: bool = False
) -> tuple[Path, list[Path], tuple[int, int]]:
    """Store a site clip and estimate ``count`` plates from it (temporal median, people removed; with
    ``leave_out_people`` also the people MediaPipe finds). Returns the stored clip, the new plates and the size."""
    from dataset_builder.backgrounds import estimate_plates, people_masker, save_plates

    with open_frames(clip) as reader:  # VideoError for text files, empty or zero-frame clips
        size = reader.size
    check_one_view(site, {size}, f"The clip's frames ({clip.name})")
    people = people_masker("mediapipe") if leave_out_people else None  # a missing model file says how to fetch it
    stored = ws.store_file(clip, site.clips_dir, overwrite=True)
    plates = estimate_plates(stored, count, progress=progress, people=people)
    return stored, save_plates(plates, site.plates_dir, prefix=f"{ws.safe_stem(stored.stem)}-plate"), size


def remove_plate(site: ws.Site, name: str | None) -> None:
    """Delete one plate image of the site (e.g. a bad estimate)."""
    if not name:
        raise ValueError("No plate selected: click a plate in the gallery first.")
    path = site.plates_dir / Path(name).name
    if not path.is_file():
        raise ValueError(f"Plate {name!r} not found in {site.plates_dir}.")
    path.unlink()


# --------------------------------------------------------------------------------------------------------------
# People: silhouette sets


def silhouette_set_name(clip: Path, method: str) -> str:
    """The set a clip's silhouettes go to: ``<clip stem>-<method>`` (so one clip can be tried with each method)."""
    return f"{ws.safe_stem(clip.stem)}-{ws.safe_stem(method)}"


def silhouette_sets(site: ws.Site) -> list[str]:
    """Names of the site's finished silhouette sets (those with an index)."""
    from dataset_builder.silhouettes import index_path

    return [d.name for d in site.silhouette_sets() if index_path(d).is_file()]


def silhouette_folder(site: ws.Site, set_name: str) -> Path:
    return site.silhouettes_dir / ws.check_name(set_name, "silhouette set")


@dataclass(frozen=True)
class SilhouettePage:
    """One page of a silhouette set: (image path, caption) items, their names, the page shown and a caption."""

    items: list[tuple[str, str]]
    names: list[str]
    page: int
    caption: str


def silhouette_page(folder: Path, page: int, per_page: int = SILHOUETTE_PAGE) -> SilhouettePage:
    """Page ``page`` (clamped to the pages there are) of the set in ``folder``; rejected ones are captioned so."""
    from dataset_builder.silhouettes import load_index

    infos = load_index(folder)
    pages = max(1, -(-len(infos) // per_page))
    page = min(max(int(page or 1), 1), pages)
    shown = infos[(page - 1) * per_page : page * per_page]
    items = [(str(folder / i.name), i.name if i.accepted else f"REJECTED {i.name}") for i in shown]
    rejected = sum(not i.accepted for i in infos)
    caption = f"page {page} of {pages}: {len(infos)} silhouettes, {rejected} rejected"
    return SilhouettePage(items, [i.name for i in shown], page, caption)


def set_accepted(site: ws.Site, set_name: str | None, names: list[str] | None, accepted: bool) -> int:
    """Reject (or accept again) silhouettes of a set; returns how many changed."""
    from dataset_builder.silhouettes import accept, reject

    if not set_name:
        raise ValueError("No silhouette set selected: pick one in 'Silhouette set'.")
    if not names:
        raise ValueError("No silhouette selected: click the bad ones in the gallery first.")
    folder = silhouette_folder(site, set_name)
    return accept(folder, names) if accepted else reject(folder, names)


def import_actor_clip(site: ws.Site, clip: Path, masks: Path | None, progress: bool = False) -> Path:
    """Bring an actor clip (video, or zip of a DAVIS/CDnet sequence) and optional mask zip into the site's actors
    folder; returns what ``extract_silhouettes`` reads (a sequence folder or the video file)."""
    stem = ws.safe_stem(clip.stem, "actor")
    if clip.suffix.lower() == ".zip":
        if masks is not None:
            raise ValueError(
                "The actor clip is already a zip of a sequence; put its masks inside it and leave 'masks zip' empty."
            )
        return ws.import_sequence_zip(clip, site.actors_dir, stem)
    with open_frames(clip):  # VideoError: not a video, empty, zero frames
        pass
    if masks is None:
        target = site.actors_dir / stem
        target.mkdir(parents=True, exist_ok=True)
        return ws.store_file(clip, target, overwrite=True)
    site.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="masks-", dir=site.root) as tmp:
        ws.extract_zip(masks, tmp)
        return ws.clip_to_sequence(clip, ws.label_folder(tmp), site.actors_dir / stem, progress=progress)


def extract_actor(
    site: ws.Site, clip: Path, masks: Path | None, method: str, step: int, progress: bool = False
) -> tuple[Path, int]:
    """Cut people out of an actor clip (its own masks, the plate method, or a segmenter) into a silhouette set;
    returns the set's folder and how many silhouettes were found."""
    from dataset_builder.silhouettes import extract_silhouettes

    if method == "masks" and masks is None and clip.suffix.lower() != ".zip":
        raise ValueError(
            "Method 'masks' needs the clip's masks: upload them as a zip (Annotations/NNNNN.png or "
            "groundtruth/gtNNNNNN.png), or pick the 'plate' method or a segmenter."
        )
    source = import_actor_clip(site, clip, masks, progress)
    out = site.silhouettes_dir / silhouette_set_name(clip, method)
    return out, len(extract_silhouettes(source, method, out, step=step, progress=progress))


def harvest(
    site: ws.Site, clip_name: str | None, method: str, step: int, progress: bool = False
) -> tuple[Path, int, Path | None]:
    """Harvest the passers-by of a site clip as a silhouette set, with the site's plate when it fits the clip;
    returns the set's folder, how many were found and the plate used."""
    from dataset_builder.silhouettes import extract_silhouettes

    clips = {c.name: c for c in site.clips()}
    if not clips:
        raise ValueError("The site has no clip yet: upload one under 'Plates from a site clip' first.")
    if clip_name not in clips:
        raise ValueError(f"Pick one of the site's clips to harvest from: {', '.join(clips)}.")
    clip = clips[clip_name]
    with open_frames(clip) as reader:
        size = reader.size
    plate = plate_for(site, size)  # used by 'plate' and plate-based segmenters, ignored by the others
    out = site.silhouettes_dir / silhouette_set_name(clip, method)
    found = extract_silhouettes(clip, method, out, step=step, plate=plate, progress=progress)
    return out, len(found), plate


# --------------------------------------------------------------------------------------------------------------
# Datasets

#: Frames of a site's clip the site scale is fitted from, spread over the clip (a clip often starts empty).
SCALE_FIT_FRAMES = 200
#: Beside a dataset's manifest: the site scale its composites followed (for the summary line).
SCALE_FILE = "site_scale.json"


@dataclass(frozen=True)
class CompositeScale:
    """How a site's composites follow the site's own scale (:mod:`humanseg.scale`), one rule for the app and the
    site benchmark: the person size fitted from the site's own frames and plate (never ground truth), and the
    ``build_dataset`` arguments that follow from it. ``site`` None (too few people found): composites as before."""

    site: SiteScale | None
    tiled: bool  # the network runs on input-sized tiles of the scaled frame: composites are input-sized windows
    input_size: tuple[int, int]  # (height, width) of the model's input
    frame_hw: tuple[int, int]  # (height, width) of the site's frames and plate

    @property
    def working_scale(self) -> float | None:
        return self.site.working_scale if self.site is not None else None

    def size(self, explicit: tuple[int, int] | None, default: tuple[int, int] | None) -> tuple[int, int] | None:
        """Composite (height, width): an explicit size wins, else the model input when tiled, else ``default``."""
        if explicit is not None:
            return explicit
        return self.input_size if self.tiled else default

    def build_scale(self, size: tuple[int, int] | None) -> float | None:
        """The working scale to give ``build_dataset`` for composites of ``size`` (None: the plate's size): the
        site's, unless the builder would then cut windows where the network sees the whole frame (or the other
        way round; an explicit size smaller than the scaled frame): None then, the composites and the model as
        before the site scale (whole frame at both ends)."""
        from humanseg.scale import tiled

        s = self.working_scale
        if s is None or tiled(self.frame_hw, s, size or self.frame_hw) != self.tiled:
            return None
        return s

    def perspective(self, explicit: str | None) -> str | PerspectiveModel | None:
        """An explicit perspective wins, else the site's fitted one (frame pixels: build_dataset scales it)."""
        if explicit:
            return explicit
        return self.site.perspective if self.site is not None else None

    def to_dict(self) -> dict[str, Any] | None:
        """What run.json and the dataset folder record; None when no scale was fitted."""
        if self.site is None:
            return None
        return self.site.to_dict() | {"tiled": self.tiled, "input_size": list(self.input_size)}

    def describe(self) -> str:
        if self.site is None:
            return "site scale not fitted (fewer than 5 whole people in the plate difference): composites as before"
        how = f"tiles of {self.input_size[0]}x{self.input_size[1]}" if self.tiled else "whole frame to the input"
        return f"{self.site.describe()}; {how}"


def fit_composite_scale(
    frames: Iterable[np.ndarray], plate: np.ndarray, input_size: tuple[int, int], *, progress: bool = False
) -> CompositeScale:
    """The site's :class:`CompositeScale` from its own ``frames`` and ``plate`` for a model of ``input_size``
    (height, width)."""
    from dataset_builder.site_scale import fit_site_scale
    from humanseg.scale import tiled

    site = fit_site_scale(frames, plate, max_frames=SCALE_FIT_FRAMES, progress=progress)
    frame_hw = (int(plate.shape[0]), int(plate.shape[1]))
    is_tiled = site is not None and tiled(frame_hw, site.working_scale, input_size)
    return CompositeScale(site, is_tiled, (int(input_size[0]), int(input_size[1])), frame_hw)


def fit_clip_scale(
    clip: Path, plate: np.ndarray, input_size: tuple[int, int], *, progress: bool = False
) -> CompositeScale:
    """:func:`fit_composite_scale` over at most :data:`SCALE_FIT_FRAMES` frames spread over ``clip`` (a video
    file, an image folder, or a CDnet/DAVIS folder: its input frames only)."""
    with open_frames(clip) as reader:
        total = reader.frame_count
    step = max(1, (total or 0) // SCALE_FIT_FRAMES)
    with open_frames(clip, step=step, max_frames=SCALE_FIT_FRAMES) as reader:
        return fit_composite_scale(reader, plate, input_size, progress=progress)


def dataset_size(height: int, width: int) -> tuple[int, int] | None:
    """The (height, width) to composite at; both 0 keep the plates' size, one of them alone is an error."""
    if (height > 0) != (width > 0):
        raise ValueError("Give both height and width of the images, or 0 for both to keep the plates' size.")
    return (height, width) if height > 0 else None


def dataset_name(name: str | None) -> str:
    """The dataset's folder name: ``name`` checked, or ``dataset-<timestamp>`` when empty."""
    return ws.check_name(name, "dataset name") if (name or "").strip() else ws.timestamp_name("dataset")


def build_workers(count: int) -> int:
    """Worker processes for compositing ``count`` images: one for small sets (a pool costs more than it saves)."""
    return min(os.cpu_count() or 1, BUILD_MAX_WORKERS) if count >= BUILD_POOL_FROM else 1


def build_site_dataset(
    site: ws.Site,
    name: str | None,
    sets: Iterable[str],
    count: int,
    size: tuple[int, int] | None,
    *,
    seed: int = 0,
    perspective: str | None = "auto",
    shake_px: int = 0,
    progress: bool = False,
) -> Path:
    """Composite the site's plates and the silhouette ``sets`` into a new dataset; returns its folder.

    The site's scale is fitted from its clip of the plates' size (:func:`site_scale`): its working scale goes to
    the build, and when the network runs on tiles (a camera with more pixels per person than the network needs)
    the composites are windows of the model's input size unless ``size`` is given.
    ``perspective``: ``"auto"`` (or empty) is the site scale's fitted perspective, else (too few people in the
    clip, or no clip) fitted from harvested silhouettes; or two reference people ``ROW:HEIGHT,ROW:HEIGHT``.
    ``shake_px``: each composite's background is shifted against its plate by up to this many pixels (a camera
    that shakes or sways); 0, a fixed camera, keeps them registered as its frames are with its plate.
    A finished dataset of the same name is refused; an interrupted one resumes (same inputs) or is replaced.
    """
    from dataset_builder.build import build_dataset
    from dataset_builder.composite import CompositeConfig

    if not isinstance(shake_px, int) or shake_px < 0:
        raise ValueError(f"Camera shake must be a whole number of pixels >= 0 (0: a fixed camera), got {shake_px!r}")

    if not site.plates():
        raise ValueError(
            "The site has no plates yet: add background images or estimate plates from a site clip (step 1)."
        )
    sets = list(sets)
    if not sets:
        raise ValueError(
            "No silhouettes yet: extract some from an actor clip or harvest them from the site clip (step 2), "
            "then tick their sets."
        )
    spec = (perspective or "").strip()
    references = None if spec.lower() in ("", "auto") else spec
    out = site.datasets_dir / dataset_name(name)
    if (out / "manifest.json").is_file():
        raise ValueError(f"A dataset named {out.name!r} already exists in this site; choose another name.")
    scale = site_scale(site, progress=progress)
    size = scale.size(size, None) if scale is not None else size
    build_dataset(
        site.plates(),  # not the folder: links that lead out of the workspace are left out
        [silhouette_folder(site, s) for s in sets],
        out,
        count,
        size=size,
        seed=seed,
        perspective=scale.perspective(references) if scale is not None else references,
        working_scale=scale.build_scale(size) if scale is not None else None,
        config=CompositeConfig(shift_px=shake_px),
        workers=build_workers(count),
        overwrite=True,
        progress=progress,
    )
    if scale is not None and scale.site is not None:
        atomic_write(out / SCALE_FILE, json.dumps(scale.to_dict(), indent=1).encode())
    return out


def site_scale(site: ws.Site, *, progress: bool = False) -> CompositeScale | None:
    """The site's :class:`CompositeScale` for the default model, from its first clip that has a plate of the
    clip's size (None: no such clip)."""
    from humanseg.models import DEFAULT_PRESET, get_preset

    for clip in site.clips():
        with open_frames(clip, max_frames=1) as reader:
            size = reader.size
        plate = plate_for(site, size)
        if plate is not None:
            return fit_clip_scale(clip, read_image(plate), get_preset(DEFAULT_PRESET).input_size, progress=progress)
    return None


def latest_dataset(site: ws.Site) -> Path | None:
    """The site's most recently built dataset, if any."""
    datasets = site.datasets()
    return max(datasets, key=lambda d: (d / "manifest.json").stat().st_mtime) if datasets else None


def dataset_summary(dataset: Path) -> str:
    """One markdown line on a dataset: samples, size, splits, sources, and where its perspective came from."""
    from dataset_builder.build import read_manifest

    m = read_manifest(dataset)
    persp = m.get("params", {}).get("perspective", {})
    origin = persp.get("origin", "?")
    hint = {
        "default": " (generic guess: harvest site silhouettes or give two reference people for a better one)",
        "fit": " (fitted to harvested site silhouettes)",
        "references": " (from your two reference people)",
    }.get(origin, "")
    sil = m.get("sources", {}).get("silhouettes", [])
    scale_file = dataset / SCALE_FILE
    if scale_file.is_file():
        fitted = json.loads(scale_file.read_text())
        scale = (
            f" Site scale: people {fitted['person_height']:.0f} px tall, working scale "
            f"{fitted['working_scale']:.2f} ({'input-sized windows of the plate' if fitted['tiled'] else 'whole plate'})."
        )
    else:
        scale = " Site scale: not fitted (no site clip with enough whole people): composites of the whole plate."
    return (
        f"**{dataset.name}**: {m['count']} samples of {m['size'][1]}x{m['size'][0]} px "
        f"(train {m['splits']['train']}, val {m['splits']['val']}), seed {m['seed']}, "
        f"{len(m['sources']['plates'])} plate(s), {sum(s.get('count', 0) for s in sil)} silhouettes from "
        f"{len(sil)} set(s); perspective: {origin}{hint}.{scale}"
    )


def site_summary(site: ws.Site) -> str:
    """What the site has, and the next step when one is missing (markdown)."""
    plates, sets, datasets = site.plates(), silhouette_sets(site), site.datasets()
    lines = [
        f"Site **{site.name}** in `{site.root}`: {len(plates)} plate(s), {len(site.clips())} site clip(s), "
        f"{len(site.actors())} actor clip(s), {len(sets)} silhouette set(s), {len(datasets)} dataset(s), "
        f"{len(site.runs())} training run(s)."
    ]
    if not plates:
        lines.append("Next: add background images of the empty scene, or a site clip to estimate plates from.")
    elif not sets:
        lines.append("Next: extract silhouettes from an actor clip, or harvest them from the site clip.")
    elif not datasets:
        lines.append("Next: build a dataset (step 3).")
    return "\n\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Trained models: ids ``site/run``


def model_id(checkpoint: Path) -> str:
    """The id of a run's checkpoint (``<workspace>/<site>/runs/<run>/best.pt`` -> ``site/run``)."""
    return f"{checkpoint.parent.parent.parent.name}/{checkpoint.parent.name}"


def checkpoint_choices(workspace: Path) -> list[tuple[str, str]]:
    """(label, id) of every trained model in the workspace."""
    return [(f"{model_id(c)} ({c.name})", model_id(c)) for c in ws.find_checkpoints(workspace)]


def checkpoint_for(workspace: Path, model: str) -> Path:
    """The checkpoint of trained model ``site/run``."""
    site_name, _, run = model.partition("/")
    site = ws.open_site(workspace, site_name)
    for ckpt in site.checkpoints():
        if ckpt.parent.name == run:
            return ckpt
    raise ValueError(f"Trained model {model!r} not found (no checkpoint in {site.runs_dir / run}); train it first.")


def trained_backends() -> list[str]:
    """Registry names of the backends that run a network trained on the site (read from their class flags)."""
    from humanseg.segmenters import available, capabilities

    return [name for name in available() if capabilities(name).trained]


def baselines() -> list[str]:
    """Registry names of the fixed methods a trained model is compared with (everything not trained)."""
    from humanseg.segmenters import available

    trained = trained_backends()
    return [name for name in available() if name not in trained]


def trained_segmenters(workspace: Path, models: Iterable[str], following: PlateFollowing | None = None) -> list:
    """One segmenter per trained model id, labelled ``site:<site/run>`` in captions, tables and file names;
    ``following``: how a plate model treats its plate over a clip (default: it follows the site)."""
    from humanseg.segmenters import create_segmenter
    from humanseg.segmenters.segnet import site_label

    (backend,) = trained_backends()
    segs: list = []
    try:
        for model in models:
            options = following.options() if following is not None else {}
            seg = create_segmenter(backend, checkpoint=checkpoint_for(workspace, model), **options)
            seg.label = site_label(model)
            segs.append(seg)
    except BaseException:
        for seg in segs:
            seg.close()
        raise
    return segs


def resumable_runs(site: ws.Site) -> list[str]:
    """Runs of the site that can be resumed (they have a ``last.pt``)."""
    return [r.name for r in site.runs() if (r / "last.pt").is_file()]


def validation_sequences(site: ws.Site, upload: Path | None, names: Iterable[str] | None) -> list[Path]:
    """The site's validation clips ``names`` plus an uploaded CDnet zip (stored as a new validation clip)."""
    from humanseg.video import load_sequence

    seqs = [site.validation_dir / ws.check_name(n, "validation clip") for n in names or []]
    if upload is not None:
        seq_dir = ws.import_sequence_zip(upload, site.validation_dir, ws.safe_stem(upload.stem, "validation"))
        if not load_sequence(seq_dir).scored_items():
            raise ValueError(
                f"{upload.name}: no frame has a ground-truth mask; add groundtruth/gtNNNNNN.png numbered like the "
                "frames."
            )
        seqs.append(seq_dir)
    for s in seqs:
        if not s.is_dir():
            raise ValueError(f"Validation sequence {s.name} not found in {site.validation_dir}.")
    return list(dict.fromkeys(seqs))


# --------------------------------------------------------------------------------------------------------------
# The example site (examples/build_site.py)


def example_clip(workspace: Path) -> Path | None:
    """The short H.264 example clip: the example site's demo cut (made by ``examples/build_site.py``), else a
    cut of examples/data/vtest.avi written on first use; None without either."""
    demo = workspace / EXAMPLE_SITE / "clips" / EXAMPLE_DEMO_CLIP
    if demo.is_file():
        return demo
    if not EXAMPLE_SOURCE.is_file():
        return None
    return ws.cut_clip(
        EXAMPLE_SOURCE, workspace / ".examples" / f"vtest-{EXAMPLE_CLIP_FRAMES}.mp4", EXAMPLE_CLIP_FRAMES
    )


def example_note(workspace: Path) -> str:
    """What is missing of the example (clip, site) and the command that installs it; empty when installed."""
    have_site = (workspace / EXAMPLE_SITE).is_dir()
    have_clip = EXAMPLE_SOURCE.is_file()
    if have_site and have_clip:
        return ""
    missing = []
    if not have_clip:
        missing.append("the example clip (`bash scripts/fetch_vtest.sh` puts OpenCV's vtest.avi in examples/data/)")
    if not have_site:
        missing.append(
            f"the example site `{EXAMPLE_SITE}` (`make example` builds its plates, silhouettes, dataset and demo model)"
        )
    return "**Example not installed:** " + "; ".join(missing) + ". The app works without it."


# --------------------------------------------------------------------------------------------------------------
# Segmenting a clip of the site


@dataclass
class Segmentation:
    """One segmentation run of a clip: where it went, what was written, the scores (with ground truth) and a note
    on the plate the plate-based methods used."""

    out: Path
    result: SegmentResult
    rows: list[dict]
    note: str
    chart: Path | None


def site_perspective(site: ws.Site | None, size: tuple[int, int]) -> HeightAt | None:
    """Person height at a feet row for frames of ``size`` (width, height), from the perspective the site's latest
    dataset was built with, when it was measured (given references or fitted to site silhouettes, not the generic
    guess) on frames of the same shape; else None (each blob then counts as one person)."""
    dataset = latest_dataset(site) if site is not None else None
    if dataset is None:
        return None
    from dataset_builder.build import read_manifest
    from dataset_builder.perspective import PerspectiveModel

    manifest = read_manifest(dataset)
    params = manifest.get("params", {}).get("perspective") or {}
    if params.get("origin") not in ("references", "fit"):
        return None
    rows, cols = manifest["size"]
    if rows * size[0] != cols * size[1]:  # another aspect ratio: not this view
        return None
    return PerspectiveModel(**params).scaled(size[1]).height_at


def segment_clip(
    workspace: Path,
    site: ws.Site | None,
    clip: Path,
    models: list[str],
    methods: list[str],
    max_frames: int,
    ground_truth: Path | None = None,
    *,
    stats: bool = False,
    anonymise: str | None = None,
    margin_px: int | None = None,
    progress: bool = False,
    following: PlateFollowing | None = None,
) -> Segmentation:
    """Segment the first ``max_frames`` frames of ``clip`` with trained ``models`` (``site/run`` ids) and baseline
    ``methods`` into a new folder of the site's outputs: videos, PNG mask zips, and with ``ground_truth`` (a zip
    of the clip's masks) the CDnet scores, ``metrics.json`` and an F-measure chart. Plate-based methods get the
    site's plate of the clip's size. ``stats``: each method's people counts and occupancy heatmap (a measured
    site perspective splits merged people); ``anonymise``/``margin_px``: each method's anonymised video, ``erase``
    showing the site's plate (see :class:`humanseg.segment.ExtraOutputs`). ``following``: whether the plate of
    the site models and plate methods follows the site, and its update time (default: it follows, at
    :data:`humanseg.maintained_plate.DEFAULT_UPDATE_S`); each such method's plate after the last frame is written
    beside the captured one (``result.methods[name].plate_end``, ``.plate_captured``). A failed run leaves no
    output folder behind."""
    if not models and not methods:
        raise ValueError("Pick at least one method: a trained model and/or a baseline.")
    with open_frames(clip, max_frames=max_frames) as reader:  # VideoError: text file, empty, zero frames, corrupt
        size, fps = reader.size, reader.fps
    extras = ExtraOutputs(  # checks the style and margin before any folder is made
        anonymise=anonymise, margin_px=margin_px, stats=stats, height_at=site_perspective(site, size) if stats else None
    )
    parent = site.outputs_dir if site is not None else workspace / ".outputs"
    out = ws.unique_path(parent, ws.timestamp_name("segment"))
    out.mkdir(parents=True)
    try:
        return _segment_into(
            workspace, site, out, clip, (size, fps), models, methods, max_frames, ground_truth, extras, progress,
            following or PlateFollowing(),
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _segment_into(
    workspace: Path,
    site: ws.Site | None,
    out: Path,
    clip: Path,
    view: tuple[tuple[int, int], float],
    models: list[str],
    methods: list[str],
    max_frames: int,
    ground_truth: Path | None,
    extras: ExtraOutputs,
    progress: bool,
    following: PlateFollowing,
) -> Segmentation:
    from humanseg.evaluate import f_measure_chart
    from humanseg.segment import segment_and_score, segment_video
    from humanseg.segmenters import capabilities

    size, fps = view  # the clip's (width, height) and frame rate
    seq_dir = None
    if ground_truth is not None:
        ws.extract_zip(ground_truth, out / "groundtruth-upload")
        labels = ws.label_folder(out / "groundtruth-upload")
        # The sequence folder's name labels the rows of the metrics table.
        seq_dir = ws.clip_to_sequence(
            clip, labels, out / ws.safe_stem(clip.stem, "clip"), max_frames=max_frames, progress=progress
        )
    takes_plate = [m for m in methods if capabilities(m).takes_plate]
    erase = extras.anonymise == "erase"
    plate = plate_for(site, size) if takes_plate or erase else None
    if erase and plate is None and len(takes_plate) < len(methods):
        where = f"site {site.name} has" if site is not None else "no site is selected, so there is"
        raise ValueError(
            f"Anonymise 'erase' shows the empty scene, but {where} no plate of this clip's size {size[0]}x{size[1]}: "
            "add one in tab 1 (Site and dataset), or pick another style."
        )
    note = ""
    if takes_plate:
        note = (
            f"{', '.join(takes_plate)} used the plate {plate.name} of site {site.name}."
            if plate is not None and site is not None
            else f"{', '.join(takes_plate)} had no site plate of this clip's size {size[0]}x{size[1]}, "
            "so it used a running median of the clip's frames."
        )
    trained = trained_segmenters(workspace, models, following)
    rows: list[dict] = []
    try:
        segs = [*trained, *methods]
        if seq_dir is not None:
            scored = segment_and_score(
                seq_dir,
                segs,
                out,
                plate=plate,
                skip_first=False,
                save_pngs=True,
                progress=progress,
                extras=extras,
                fps=fps,
                following=following,
            )
            result, rows = scored.result, scored.rows
        else:
            result = segment_video(
                clip, segs, out, plate=plate, max_frames=max_frames, save_pngs=True, progress=progress, extras=extras,
                following=following,
            )  # fmt: skip
    finally:
        for seg in trained:
            seg.close()
    chart = None
    if rows:
        (out / "metrics.json").write_text(json.dumps(rows, indent=1, default=str))
        chart = f_measure_chart(rows, out / "f_measure.png")
    return Segmentation(out, result, rows, note, chart)
