"""humanseg web app: build a site dataset, train a site model, and segment videos, in the browser.

    python app.py                      # http://127.0.0.1:7860, workspace ./workspace
    python app.py --workspace DIR --host 0.0.0.0 --port 8080

Three tabs wire the browser to the same library functions the command-line tools use:

1. Site and dataset: plates (uploaded empty-scene images, or estimated from a site clip), actor silhouettes
   (from actor clips with masks, a segmenter, or harvested from the site clip), review/reject, build the dataset.
2. Train: a dataset and a model preset, a time budget or epochs; live loss and validation-F curve, stop, resume.
3. Segment: drop a clip, pick trained models and baselines; side-by-side video, overlay/mask videos, PNG zips,
   and CDnet metrics when ground truth is given.

Everything is kept in a per-site workspace folder (see humanseg.workspace), so a restart loses nothing. The app
binds 127.0.0.1 unless told otherwise, serves files only from its workspace and temp folders, and never makes a
share link.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no usage pings

import argparse
import functools
import inspect
import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from humanseg import workspace as ws

DEFAULT_MAX_FILE_SIZE = "1gb"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line flags (see the module docstring)."""
    parser = argparse.ArgumentParser(description="humanseg web app (Gradio)")
    parser.add_argument("--workspace", type=Path, help=f"workspace folder (default ${ws.ENV_VAR} or ./workspace)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes the app to the network")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload, e.g. 500mb or 2gb")
    return parser.parse_args(argv)


if __name__ == "__main__":
    parse_args()  # --help and bad flags answer at once, before the slow imports below (gradio, torch)

import gradio as gr  # noqa: E402

from humanseg.video import open_frames  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent
EXAMPLE_SITE = "vtest"
EXAMPLE_SOURCE = PROJECT_ROOT / "examples" / "data" / "vtest.avi"
EXAMPLE_CLIP_FRAMES = 100
EXAMPLE_DEMO_CLIP = "vtest_demo.mp4"  # written by examples/build_site.py into the site's clips
EXAMPLE_MODEL = f"{EXAMPLE_SITE}/demo"  # its demo model (runs/demo), preselected in the Segment tab
# Gradio spots a progress parameter by its default being a gr.Progress and passes each event its own tracker,
# so one shared marker instance serves every handler.
PROGRESS = gr.Progress()
# Exceptions whose message is written for the user (library contract: they name the value and the fix).
USER_ERRORS = (ValueError, OSError, ImportError, KeyError)


@dataclass
class AppState:
    """Process-wide settings; ``main()`` may point ``workspace`` elsewhere before launching."""

    # Not created at import: importing the app (tests, tools) must not make folders.
    workspace: Path = field(default_factory=lambda: ws.resolve_workspace(create=False))
    example: bool = True  # preload the example clip in the Segment tab (when examples/data/vtest.avi exists)


APP = AppState()


# --------------------------------------------------------------------------------------------------------------
# Small helpers


def user_errors(fn: Callable) -> Callable:
    """Turn the library's user-facing errors into ``gr.Error`` so the browser shows what to do and the app
    keeps serving. Works for plain and generator handlers; the signature stays visible to Gradio."""

    def convert(err: BaseException) -> gr.Error:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        return gr.Error(tidy_message(str(message)), print_exception=False)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except USER_ERRORS as err:
                raise convert(err) from err

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as err:
            raise convert(err) from err

    return wrapper


_UPLOAD_DIR = re.compile(r"\S*/gradio/[0-9a-f]{32,}/")


def tidy_message(message: str) -> str:
    """Drop Gradio's upload folder from paths in a message, so the user sees their own file name."""
    return _UPLOAD_DIR.sub("", message)


def fail(message: str) -> gr.Error:
    """A user-facing error (no traceback in the server log: it is not a bug)."""
    return gr.Error(message, print_exception=False)


def progress_callback(progress: gr.Progress, desc: str, unit: str = "frames") -> Callable[[int, int | None], None]:
    """Adapt the library's ``progress(done, total)`` callbacks to a Gradio progress bar."""

    def update(done: int, total: int | None) -> None:
        progress((int(done), int(total) if total else None), desc=desc, unit=unit)

    return update


def current_site(name: str | None, create: bool = False) -> ws.Site:
    if not name:
        raise fail("No site selected: pick a site at the top, or type a name and click 'Create site'.")
    return ws.open_site(APP.workspace, name, create=create)


def upload_path(value: Any, what: str) -> Path | None:
    """The local path of an uploaded file (a str, a FileData-like dict or an object with ``.name``)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    path = Path(getattr(value, "name", value))
    if not path.is_file():
        raise fail(f"The uploaded {what} could not be found on the server; upload it again.")
    return path


def upload_paths(values: Any, what: str) -> list[Path]:
    if not values:
        return []
    items = values if isinstance(values, list) else [values]
    return [p for v in items if (p := upload_path(v, what)) is not None]


def positive_int(value: Any, what: str, minimum: int = 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise fail(f"{what} must be a whole number, got {value!r}.") from None
    if number < minimum or number != float(value):
        raise fail(f"{what} must be a whole number >= {minimum}, got {value!r}.")
    return number


def device_text() -> str:
    """Which device training and the trained models use here."""
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)} (CUDA)"
    return f"CPU ({os.cpu_count() or 1} cores; no CUDA GPU found)"


def example_clip() -> Path | None:
    """The short H.264 example clip shown in the Segment tab: the example site's demo cut (made by
    ``examples/build_site.py``), else a cut of examples/data/vtest.avi written on first use; None without either."""
    if not APP.example:
        return None
    demo = APP.workspace / EXAMPLE_SITE / "clips" / EXAMPLE_DEMO_CLIP
    if demo.is_file():
        return demo
    if not EXAMPLE_SOURCE.is_file():
        return None
    return ws.cut_clip(
        EXAMPLE_SOURCE, APP.workspace / ".examples" / f"vtest-{EXAMPLE_CLIP_FRAMES}.mp4", EXAMPLE_CLIP_FRAMES
    )


def example_note() -> str:
    have_site = (APP.workspace / EXAMPLE_SITE).is_dir()
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
# Site overview: what a site already has, for every tab


SIL_PAGE = 60  # silhouettes per gallery page: a harvested clip gives thousands, the browser shows a page


def _sil_page(folder: Path, page: int) -> tuple[list[tuple[str, str]], list[str], int, str]:
    """Gallery items and names of one page of a silhouette set, the page shown (clamped) and a caption."""
    from dataset_builder.silhouettes import load_index

    infos = load_index(folder)
    pages = max(1, -(-len(infos) // SIL_PAGE))
    page = min(max(int(page or 1), 1), pages)
    shown = infos[(page - 1) * SIL_PAGE : page * SIL_PAGE]
    items = [(str(folder / i.name), i.name if i.accepted else f"REJECTED {i.name}") for i in shown]
    rejected = sum(not i.accepted for i in infos)
    caption = f"page {page} of {pages}: {len(infos)} silhouettes, {rejected} rejected"
    return items, [i.name for i in shown], page, caption


def silhouette_sets(site: ws.Site) -> list[str]:
    from dataset_builder.silhouettes import index_path

    return [d.name for d in site.silhouette_sets() if index_path(d).is_file()]


def checkpoint_choices() -> list[tuple[str, str]]:
    """(label, id) of every trained model in the workspace; the id is ``site/run``."""
    out = []
    for ckpt in ws.find_checkpoints(APP.workspace):
        run, site = ckpt.parent.name, ckpt.parent.parent.parent.name
        out.append((f"{site}/{run} ({ckpt.name})", f"{site}/{run}"))
    return out


def checkpoint_for(model_id: str) -> Path:
    site_name, _, run = model_id.partition("/")
    site = ws.open_site(APP.workspace, site_name)
    for ckpt in site.checkpoints():
        if ckpt.parent.name == run:
            return ckpt
    raise fail(f"Trained model {model_id!r} not found (no checkpoint in {site.runs_dir / run}); train it first.")


def resumable_runs(site: ws.Site) -> list[str]:
    return [r.name for r in site.runs() if (r / "last.pt").is_file()]


def dataset_summary(dataset: Path) -> str:
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
    return (
        f"**{dataset.name}**: {m['count']} samples of {m['size'][1]}x{m['size'][0]} px "
        f"(train {m['splits']['train']}, val {m['splits']['val']}), seed {m['seed']}, "
        f"{len(m['sources']['plates'])} plate(s), {sum(s.get('count', 0) for s in sil)} silhouettes from "
        f"{len(sil)} set(s); perspective: {origin}{hint}."
    )


def site_overview(site_name: str | None) -> dict:
    """Updates for every component that shows what the site has (called on load and when the site changes)."""
    sites = ws.list_sites(APP.workspace)
    if site_name not in sites:
        site_name = None
    models = checkpoint_choices()
    if site_name is None:
        empty: dict = {
            site_dd: gr.update(choices=sites, value=None),
            site_info: "No site yet: type a name (e.g. `lobby-cam2`) and click **Create site**. " + example_note(),
            plates_gallery: [],
            harvest_clip: gr.update(choices=[], value=None),
            sil_set: gr.update(choices=[], value=None),
            sil_gallery: [],
            sil_names: [],
            sil_selected: gr.update(choices=[], value=[]),
            sil_page: 1,
            sil_info: "",
            build_sets: gr.update(choices=[], value=[]),
            dataset_preview: None,
            dataset_info: "",
            train_dataset: gr.update(choices=[], value=None),
            resume_run: gr.update(choices=[], value=None),
            val_existing: gr.update(choices=[], value=[]),
            seg_models: gr.update(choices=models, value=[]),
            **dict(zip(TRAIN_OUT, _idle_train_view(None), strict=True)),
        }
        return empty
    site = current_site(site_name)
    plates = site.plates()
    clips = [c.name for c in site.clips()]
    sets = silhouette_sets(site)
    datasets = [d.name for d in site.datasets()]
    latest = max(site.datasets(), key=lambda d: (d / "manifest.json").stat().st_mtime) if datasets else None
    lines = [
        f"Site **{site.name}** in `{site.root}`: {len(plates)} plate(s), {len(clips)} site clip(s), "
        f"{len(site.actors())} actor clip(s), {len(sets)} silhouette set(s), {len(datasets)} dataset(s), "
        f"{len(site.runs())} training run(s)."
    ]
    if not plates:
        lines.append("Next: add background images of the empty scene, or a site clip to estimate plates from.")
    elif not sets:
        lines.append("Next: extract silhouettes from an actor clip, or harvest them from the site clip.")
    elif not datasets:
        lines.append("Next: build a dataset (step 3).")
    note = example_note()
    return {
        site_dd: gr.update(choices=sites, value=site.name),
        site_info: "\n\n".join(lines + ([note] if note else [])),
        plates_gallery: [(str(p), p.name) for p in plates],
        harvest_clip: gr.update(choices=clips, value=clips[-1] if clips else None),
        **_silhouette_updates(site.name, sets[-1] if sets else None),
        build_sets: gr.update(choices=sets, value=sets),
        dataset_preview: str(latest / "preview.png") if latest and (latest / "preview.png").is_file() else None,
        dataset_info: dataset_summary(latest) if latest else "",
        train_dataset: gr.update(choices=datasets, value=latest.name if latest else None),
        resume_run: gr.update(choices=resumable_runs(site), value=None),
        val_existing: gr.update(choices=[v.name for v in site.validation_sequences()], value=[]),
        seg_models: gr.update(choices=models, value=[]),
        **dict(zip(TRAIN_OUT, _idle_train_view(site), strict=True)),
    }


def _idle_train_view(site: ws.Site | None) -> tuple:
    """What the Train tab shows for a site: nothing new while a training runs (it streams), else its last run."""
    if TRAINING.running:
        return gr.update(), gr.update(), gr.update(), gr.update()
    if site is None:
        return f"No site selected. Trains on: {device_text()}.", curves_frame([]), "", None
    return last_run_view(site)


def on_load() -> dict:
    sites = ws.list_sites(APP.workspace)
    chosen = EXAMPLE_SITE if EXAMPLE_SITE in sites else (sites[0] if sites else None)
    updates = site_overview(chosen)
    models = [value for _, value in checkpoint_choices()]
    if EXAMPLE_MODEL in models:
        updates[seg_models] = gr.update(choices=checkpoint_choices(), value=[EXAMPLE_MODEL])
    clip = example_clip()
    updates[seg_video] = str(clip) if clip is not None else None
    if clip is not None:
        note = f"The example clip ({EXAMPLE_CLIP_FRAMES} frames of OpenCV's vtest.avi) is loaded; drop your own to replace it."
    else:
        note = example_note() if APP.example else ""
    updates[seg_note] = note
    return updates


# --------------------------------------------------------------------------------------------------------------
# Tab 1: site and dataset


@user_errors
def create_site(name: str) -> dict:
    """Create a site folder (or select it if it exists)."""
    site = ws.open_site(APP.workspace, ws.check_name(name, "site name"), create=True)
    return site_overview(site.name)


@user_errors
def add_backgrounds(site_name: str, files: Any) -> tuple[list, str]:
    """Copy uploaded empty-scene images into the site's plates (each checked to be a readable image)."""
    from humanseg.video import read_image

    site = current_site(site_name)
    paths = upload_paths(files, "background image")
    if not paths:
        raise fail("No background image uploaded: add one or more photos of the empty scene (PNG/JPEG).")
    sizes = {}
    for p in paths:
        img = read_image(p)  # VideoError (a ValueError) names a file that is not an image
        sizes[p.name] = (img.shape[1], img.shape[0])
    _check_one_view(site, set(sizes.values()), "The background images")
    for p in paths:
        ws.store_file(p, site.plates_dir)
    plates = site.plates()
    status = f"Added {len(paths)} background image(s); the site has {len(plates)} plate(s)."
    return [(str(p), p.name) for p in plates], status


def _check_one_view(site: ws.Site, sizes: set[tuple[int, int]], what: str) -> None:
    """A site is one camera view: new plates must have one size, the size of the plates it has."""
    have = _plate_sizes(site)
    if len(sizes | have) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        had = f" but the site's plates are {', '.join(f'{w}x{h}' for w, h in sorted(have))}" if have else ""
        raise fail(
            f"{what} are {shown}{had}: a site is one camera view of one size. Create a new site for another camera, "
            "or remove the old plates first."
        )


def _plate_sizes(site: ws.Site) -> set[tuple[int, int]]:
    from PIL import Image

    sizes = set()
    for p in site.plates():
        with Image.open(p) as img:
            sizes.add(img.size)
    return sizes


@user_errors
def estimate_site_plates(
    site_name: str, clip: Any, count: float, leave_out_people: bool = False, progress: gr.Progress = PROGRESS
) -> dict:
    """Store a site clip and estimate ``count`` plates from it (temporal median, people removed; with
    ``leave_out_people`` also the people MediaPipe finds, for someone standing still most of the clip)."""
    from dataset_builder.backgrounds import estimate_plates, people_masker, save_plates

    site = current_site(site_name)
    src = upload_path(clip, "site clip")
    if src is None:
        raise fail("No site clip uploaded: drop a video of the site (people may walk through it).")
    n = positive_int(count, "Number of plates")
    with open_frames(src) as reader:  # VideoError for text files, empty or zero-frame clips
        size = reader.size
    _check_one_view(site, {size}, f"The clip's frames ({src.name})")
    people = people_masker("mediapipe") if leave_out_people else None  # a missing model file says how to fetch it
    stored = ws.store_file(src, site.clips_dir, overwrite=True)
    plates = estimate_plates(stored, n, progress=progress_callback(progress, "estimating plates"), people=people)
    save_plates(plates, site.plates_dir, prefix=f"{ws.safe_stem(stored.stem)}-plate")
    updates = site_overview(site.name)
    updates[plates_status] = f"Estimated {len(plates)} plate(s) from {stored.name} ({size[0]}x{size[1]})."
    return updates


@user_errors
def remove_plate(site_name: str, plate_name: str | None) -> tuple[list, str]:
    """Delete one plate image of the site (e.g. a bad estimate)."""
    site = current_site(site_name)
    if not plate_name:
        raise fail("No plate selected: click a plate in the gallery first.")
    path = site.plates_dir / Path(plate_name).name
    if not path.is_file():
        raise fail(f"Plate {plate_name!r} not found in {site.plates_dir}.")
    path.unlink()
    plates = site.plates()
    return [(str(p), p.name) for p in plates], f"Removed {plate_name}; {len(plates)} plate(s) left."


def selected_plate(evt: gr.SelectData) -> str:
    """The file name (gallery caption) of the plate clicked in the plates gallery."""
    value = evt.value if isinstance(evt.value, dict) else {}
    return value.get("caption") or ""


def _site_plate_for(site: ws.Site, size: tuple[int, int]) -> Path | None:
    """The site's first plate of frame size ``size`` (width, height), if any."""
    from PIL import Image

    for p in site.plates():
        with Image.open(p) as img:
            if img.size == tuple(size):
                return p
    return None


def _actor_source(site: ws.Site, clip: Path, masks: Path | None, progress: gr.Progress) -> Path:
    """Bring an uploaded actor clip (video, or zip of a DAVIS/CDnet sequence) and optional mask zip into the
    site's actors folder; returns what ``extract_silhouettes`` reads (a sequence folder or the video file)."""
    stem = ws.safe_stem(clip.stem, "actor")
    if clip.suffix.lower() == ".zip":
        if masks is not None:
            raise fail(
                "The actor clip is already a zip of a sequence; put its masks inside it and leave 'masks zip' empty."
            )
        return ws.import_sequence_zip(clip, site.actors_dir, stem)
    with open_frames(clip):  # VideoError: not a video, empty, zero frames
        pass
    if masks is None:
        target = site.actors_dir / stem
        target.mkdir(parents=True, exist_ok=True)
        return ws.store_file(clip, target, overwrite=True)
    with tempfile.TemporaryDirectory(prefix="masks-", dir=site.root) as tmp:
        ws.extract_zip(masks, tmp)
        labels = ws.label_folder(tmp)
        return ws.clip_to_sequence(
            clip, labels, site.actors_dir / stem, progress=progress_callback(progress, "unpacking the actor clip")
        )


@user_errors
def extract_actor(
    site_name: str, clip: Any, masks: Any, method: str, step: float, progress: gr.Progress = PROGRESS
) -> dict:
    """Cut people out of an actor clip (its own masks, the plate method, or a segmenter) into a silhouette set."""
    from dataset_builder.silhouettes import extract_silhouettes

    site = current_site(site_name)
    clip_path = upload_path(clip, "actor clip")
    if clip_path is None:
        raise fail("No actor clip uploaded: drop a video (with a masks zip), or a zip of a DAVIS/CDnet sequence.")
    mask_path = upload_path(masks, "masks zip")
    if method == "masks" and mask_path is None and clip_path.suffix.lower() != ".zip":
        raise fail(
            "Method 'masks' needs the clip's masks: upload them as a zip (Annotations/NNNNN.png or "
            "groundtruth/gtNNNNNN.png), or pick the 'plate' method or a segmenter."
        )
    source = _actor_source(site, clip_path, mask_path, progress)
    out = site.silhouettes_dir / f"{ws.safe_stem(clip_path.stem)}-{ws.safe_stem(method)}"
    found = extract_silhouettes(
        source, method, out, step=positive_int(step, "Frame step"),
        progress=progress_callback(progress, f"extracting silhouettes ({method})"),
    )  # fmt: skip
    return _after_extraction(site, out, f"{len(found)} silhouettes extracted from {clip_path.name} with '{method}' "
                             f"into set {out.name}.")


@user_errors
def harvest(site_name: str, clip_name: str | None, method: str, step: float, progress: gr.Progress = PROGRESS) -> dict:
    """Harvest the passers-by of a site clip as silhouettes (with the site's plate when it fits the clip)."""
    from dataset_builder.silhouettes import extract_silhouettes

    site = current_site(site_name)
    clips = {c.name: c for c in site.clips()}
    if not clips:
        raise fail("The site has no clip yet: upload one under 'Plates from a site clip' first.")
    if clip_name not in clips:
        raise fail(f"Pick one of the site's clips to harvest from: {', '.join(clips)}.")
    clip = clips[clip_name]
    with open_frames(clip) as reader:
        size = reader.size
    plate = _site_plate_for(site, size)  # used by 'plate' and plate-based segmenters, ignored by the others
    out = site.silhouettes_dir / f"{ws.safe_stem(clip.stem)}-{ws.safe_stem(method)}"
    found = extract_silhouettes(
        clip, method, out, step=positive_int(step, "Frame step"), plate=plate,
        progress=progress_callback(progress, f"harvesting silhouettes ({method})"),
    )  # fmt: skip
    return _after_extraction(
        site, out,
        f"Harvested {len(found)} silhouettes of passers-by from {clip.name} with '{method}' into set {out.name}"
        + (f" (plate {plate.name})." if plate is not None else ".")
        + " Reject the bad ones (cut, merged, shadows) before building.",
    )  # fmt: skip


def _after_extraction(site: ws.Site, out: Path, message: str) -> dict:
    """The page after a silhouette extraction: the site's overview, the new set in the review gallery, a status."""
    updates = site_overview(site.name)
    updates.update(_silhouette_updates(site.name, out.name))
    updates[sil_status] = message
    return updates


def _silhouette_updates(site_name: str, set_name: str | None) -> dict:
    gallery, names, selected, page, caption = show_silhouettes(site_name, set_name)
    sets = silhouette_sets(current_site(site_name))
    return {
        sil_set: gr.update(choices=sets, value=set_name),
        sil_gallery: gallery,
        sil_names: names,
        sil_selected: selected,
        sil_page: page,
        sil_info: caption,
    }


@user_errors
def show_silhouettes(site_name: str, set_name: str | None, page: float = 1) -> tuple[list, list[str], dict, int, str]:
    """One page of a silhouette set: gallery items, their names (gallery order), an emptied selection, the
    page number shown and a caption with the counts."""
    if not site_name or not set_name:
        return [], [], gr.update(choices=[], value=[]), 1, ""
    folder = current_site(site_name).silhouettes_dir / ws.check_name(set_name, "silhouette set")
    items, names, shown, caption = _sil_page(folder, int(page or 1))
    return items, names, gr.update(choices=names, value=[]), shown, caption


def select_silhouette(names: list[str], selected: list[str] | None, evt: gr.SelectData) -> dict:
    """Clicking a silhouette adds it to the selection (clicking it again removes it)."""
    chosen = list(selected or [])
    index = evt.index if isinstance(evt.index, int) else evt.index[0]
    if 0 <= index < len(names):
        name = names[index]
        chosen = [n for n in chosen if n != name] if name in chosen else chosen + [name]
    return gr.update(value=chosen)


def _set_accepted(site_name: str, set_name: str | None, names: list[str] | None, accepted: bool, page: float) -> tuple:
    from dataset_builder.silhouettes import accept, reject

    if not set_name:
        raise fail("No silhouette set selected: pick one in 'Silhouette set'.")
    if not names:
        raise fail("No silhouette selected: click the bad ones in the gallery first.")
    folder = current_site(site_name).silhouettes_dir / ws.check_name(set_name, "silhouette set")
    changed = accept(folder, names) if accepted else reject(folder, names)
    gallery, page_names, cleared, shown, caption = show_silhouettes(site_name, set_name, page)
    verb = "Accepted" if accepted else "Rejected"
    status = f"{verb} {changed} silhouette(s) in {set_name}; the dataset builder skips rejected ones."
    return gallery, page_names, cleared, shown, caption, status


@user_errors
def reject_silhouettes(site_name: str, set_name: str | None, names: list[str] | None, page: float = 1) -> tuple:
    """Mark the selected silhouettes as rejected (kept on disk, skipped by the builder)."""
    return _set_accepted(site_name, set_name, names, False, page)


@user_errors
def accept_silhouettes(site_name: str, set_name: str | None, names: list[str] | None, page: float = 1) -> tuple:
    """Undo a rejection."""
    return _set_accepted(site_name, set_name, names, True, page)


@user_errors
def build(
    site_name: str,
    name: str,
    sets: list[str] | None,
    count: float,
    height: float,
    width: float,
    seed: float,
    perspective: str,
    progress: gr.Progress = PROGRESS,
) -> dict:
    """Composite the site's plates and the chosen silhouette sets into a new dataset."""
    from dataset_builder.build import build_dataset

    site = current_site(site_name)
    if not site.plates():
        raise fail("The site has no plates yet: add background images or estimate plates from a site clip (step 1).")
    if not sets:
        raise fail(
            "No silhouettes yet: extract some from an actor clip or harvest them from the site clip (step 2), then tick their sets."
        )
    count_n = positive_int(count, "Number of images")
    h, w = int(height or 0), int(width or 0)
    size = (h, w) if h > 0 and w > 0 else None
    if (h > 0) != (w > 0):
        raise fail("Give both height and width of the images, or 0 for both to keep the plates' size.")
    spec = (perspective or "").strip()
    dataset_name = ws.check_name(name, "dataset name") if (name or "").strip() else ws.timestamp_name("dataset")
    out = site.datasets_dir / dataset_name
    if (out / "manifest.json").is_file():
        raise fail(f"A dataset named {dataset_name!r} already exists in this site; choose another name.")
    build_dataset(
        site.plates_dir,
        [site.silhouettes_dir / ws.check_name(s, "silhouette set") for s in sets],
        out,
        count_n,
        size=size,
        seed=positive_int(seed, "Seed", minimum=0),
        perspective=None if spec.lower() in ("", "auto") else spec,
        workers=min(os.cpu_count() or 1, 8) if count_n >= 200 else 1,
        # An interrupted build under this name resumes (same inputs) or is replaced; a finished one was refused above.
        overwrite=True,
        progress=progress_callback(progress, "compositing", unit="images"),
    )
    updates = site_overview(site.name)
    updates[dataset_preview] = str(out / "preview.png")
    updates[dataset_info] = dataset_summary(out)
    updates[train_dataset] = gr.update(choices=[d.name for d in site.datasets()], value=out.name)
    updates[build_status] = f"Built dataset {out.name} in {out}."
    return updates


# --------------------------------------------------------------------------------------------------------------
# Tab 2: train


RUN_LOG = "app-log.txt"
MAX_PLOT_POINTS = 300  # loss points drawn; longer runs are averaged in bins


def curves_frame(rows: list[dict]) -> Any:
    """A long-format table (step, value, curve) for gr.LinePlot from training rows with ``step`` and ``loss``
    and/or ``val_f`` (training events or a run's history.json); losses are bin-averaged to stay light."""
    import pandas as pd

    losses = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    out = []
    bin_size = max(1, -(-len(losses) // MAX_PLOT_POINTS))
    for i in range(0, len(losses), bin_size):
        chunk = losses[i : i + bin_size]
        out.append({"step": chunk[-1][0], "value": sum(v for _, v in chunk) / len(chunk), "curve": "training loss"})
    out += [
        {"step": r["step"], "value": r["val_f"], "curve": "validation F"} for r in rows if r.get("val_f") is not None
    ]
    return pd.DataFrame(out, columns=["step", "value", "curve"])


def last_run_view(site: ws.Site) -> tuple[str, Any, str, str | None]:
    """Status, curves, log and best checkpoint of the site's most recent training run (from its files)."""
    runs = [r for r in site.runs() if (r / "history.json").is_file()]
    if not runs:
        return f"No training yet for site {site.name}. Trains on: {device_text()}.", curves_frame([]), "", None
    run = max(runs, key=lambda r: (r / "history.json").stat().st_mtime)
    history = json.loads((run / "history.json").read_text())
    last = history[-1] if history else {}
    vals = [r["val_f"] for r in history if r.get("val_f") is not None]
    parts = [f"Last run **{run.name}**", f"step {last.get('step', 0)}, epoch {float(last.get('epoch', 0)):.2f}"]
    if vals:
        parts.append(f"validation F {vals[-1]:.3f} (best {max(vals):.3f})")
    if (run / "last.pt").is_file():
        parts.append("resumable")
    log = (run / RUN_LOG).read_text() if (run / RUN_LOG).is_file() else ""
    best = run / "best.pt"
    return " | ".join(parts), curves_frame(history), log, str(best) if best.is_file() else None


class TrainingJob:
    """The app's single training run. It runs in a background thread, so closing the browser does not stop it;
    any page (re)opened later follows it. ``stop_event`` is the library's stop request."""

    LOG_EVERY_S = 5.0  # seconds between step lines in the log (every validation and checkpoint is logged)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.events: list[Any] = []
        self.log: list[str] = []
        self.error: str | None = None
        self.run_dir: Path | None = None
        self.title = ""
        self._last_log = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, make_events: Callable[[threading.Event], Iterator[Any]], run_dir: Path, title: str) -> None:
        """Start ``make_events(stop_event)`` (a ``humanseg.train.train`` iterator) unless a run is going."""
        with self._lock:
            if self.running:
                raise fail(
                    f"A training is already running ({self.title}). One training runs at a time: stop it with "
                    "'Stop' or wait until it ends, then start again."
                )
            self.stop_event = threading.Event()
            self.events, self.log, self.error = [], [], None
            self.run_dir, self.title, self._last_log = run_dir, title, 0.0
            iterator = make_events(self.stop_event)
            self._thread = threading.Thread(target=self._consume, args=(iterator,), name="humanseg-train", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _consume(self, iterator: Iterator[Any]) -> None:
        try:
            for event in iterator:
                self.events.append(event)
                line = self._describe(event)
                if line:
                    self.log.append(line)
                    self._save_log(line)
        except USER_ERRORS as err:
            self.error = str(err)
            self.log.append(f"error: {err}")
        except Exception as err:  # a bug: keep the app serving, show it, and log the traceback
            import traceback

            traceback.print_exc()
            self.error = f"{type(err).__name__}: {err}"
            self.log.append(f"error: {self.error}")

    def _save_log(self, line: str) -> None:
        # Kept beside the checkpoints, so the Train tab can show a finished run's log after a restart.
        if self.run_dir is not None and self.run_dir.is_dir():
            with open(self.run_dir / RUN_LOG, "a") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {line}\n")

    def _describe(self, ev: Any) -> str:
        if ev.kind == "start":
            m = ev.metrics
            text = (
                f"start on {ev.device}: {m.get('train_samples')} training / {m.get('val_samples')} validation images, "
                f"{m.get('steps_per_epoch')} steps per epoch"
            )
            return text + (f" ({ev.message})" if ev.message else "")
        if ev.kind == "step":
            now = time.monotonic()
            if now - self._last_log < self.LOG_EVERY_S and ev.step > 1:
                return ""
            self._last_log = now
            ips = f", {ev.images_per_s:.1f} images/s" if ev.images_per_s else ""
            return f"step {ev.step} (epoch {ev.epoch:.2f}): loss {ev.loss:.4f}, lr {ev.lr:.2e}{ips}"
        if ev.kind == "val":
            scores = ", ".join(f"{k} {v:.3f}" for k, v in ev.metrics.items() if isinstance(v, (int, float)))
            return f"validation at step {ev.step}: {scores}"
        if ev.kind == "checkpoint":
            return f"saved {Path(ev.path).name} ({ev.message})"
        if ev.kind == "done":
            return f"done at step {ev.step}: {ev.message}; model: {ev.path}"
        return ""

    # -- what the page shows

    def status(self) -> str:
        if not self.events and self.error is None:
            return "Starting..." if self.running else "No training yet."
        last = self.events[-1] if self.events else None
        if self.error is not None:
            return f"**Training failed** ({self.title}): {self.error}"
        parts = [f"**{self.title}**"]
        if last is not None:
            parts.append(f"device: {last.device}")
            total = f" of ~{last.total_steps}" if last.total_steps else ""
            parts.append(f"step {last.step}{total}, epoch {last.epoch:.2f}, {last.elapsed_s / 60:.1f} min")
            losses = [e.loss for e in self.events if e.kind == "step" and e.loss is not None]
            if losses:
                parts.append(f"loss {losses[-1]:.4f}")
            vals = [e.val_f for e in self.events if e.kind == "val" and e.val_f is not None]
            if vals:
                parts.append(f"validation F {vals[-1]:.3f} (best {max(vals):.3f})")
            if last.kind == "done":
                parts.append(f"finished: {last.message}")
            elif self.stop_event.is_set():
                parts.append("stopping...")
        return " | ".join(parts)

    def curves(self) -> Any:
        """Loss per step and validation F per validation, for a gr.LinePlot."""
        rows = [{"step": e.step, "loss": e.loss} for e in self.events if e.kind == "step"]
        rows += [{"step": e.step, "val_f": e.val_f} for e in self.events if e.kind == "val"]
        return curves_frame(rows)

    def checkpoint(self) -> str | None:
        if self.run_dir is None:
            return None
        best = self.run_dir / "best.pt"
        return str(best) if best.is_file() and not self.running else None

    def outputs(self) -> tuple[str, Any, str, str | None]:
        return self.status(), self.curves(), "\n".join(self.log[-400:]), self.checkpoint()

    def fraction(self) -> tuple[int, int | None] | None:
        last = self.events[-1] if self.events else None
        if last is None:
            return None
        return last.step, last.total_steps


TRAINING = TrainingJob()
POLL_S = 0.5  # how often the page refreshes from the training thread


def follow_training(progress: gr.Progress) -> Iterator[tuple]:
    """Stream the running (or last) training's status, curves, log and final checkpoint to the page."""
    seen = -1
    while True:
        running = TRAINING.running
        count = len(TRAINING.events) + len(TRAINING.log)
        if count != seen or not running:
            seen = count
            frac = TRAINING.fraction()
            if frac is not None and running:
                progress(frac, desc="training", unit="steps")
            yield TRAINING.outputs()
        if not running:
            break
        time.sleep(POLL_S)
    if TRAINING.error is not None:
        raise fail(f"Training failed: {TRAINING.error}")


def watch_training(progress: gr.Progress = PROGRESS) -> Iterator[tuple]:
    """On page load: follow a training that is running (e.g. started before the browser was closed).
    With none running the page keeps the site's last run, which the site overview shows."""
    if not TRAINING.running:
        yield gr.update(), gr.update(), gr.update(), gr.update()
        return
    try:
        yield from follow_training(progress)
    except gr.Error:
        return  # a failure of an earlier run was shown to whoever started it; the status says it too


def _validation_sequences(site: ws.Site, upload: Any, names: list[str] | None) -> list[Path]:
    from humanseg.video import load_sequence

    seqs = [site.validation_dir / ws.check_name(n, "validation clip") for n in names or []]
    zip_path = upload_path(upload, "validation zip")
    if zip_path is not None:
        seq_dir = ws.import_sequence_zip(zip_path, site.validation_dir, ws.safe_stem(zip_path.stem, "validation"))
        seq = load_sequence(seq_dir)
        if not seq.scored_items():
            raise fail(
                f"{zip_path.name}: no frame has a ground-truth mask; add groundtruth/gtNNNNNN.png numbered like the frames."
            )
        seqs.append(seq_dir)
    for s in seqs:
        if not s.is_dir():
            raise fail(f"Validation sequence {s.name} not found in {site.validation_dir}.")
    return list(dict.fromkeys(seqs))


@user_errors
def start_training(
    site_name: str,
    dataset_name: str | None,
    preset: str,
    minutes: float,
    epochs: float,
    batch_size: float,
    val_zip: Any,
    val_names: list[str] | None,
    progress: gr.Progress = PROGRESS,
) -> Iterator[tuple]:
    """Train a model preset on a site dataset in the background; streams status, curves and log."""
    from humanseg.train import TrainConfig, train

    site = current_site(site_name)
    if not dataset_name:
        raise fail("No dataset picked: build one in the 'Site and dataset' tab first.")
    dataset = site.datasets_dir / ws.check_name(dataset_name, "dataset name")
    if not (dataset / "manifest.json").is_file():
        raise fail(f"Dataset {dataset_name!r} is not a finished dataset of site {site.name}; build it first.")
    budget = float(minutes or 0)
    n_epochs = int(epochs or 0)
    if budget <= 0 and n_epochs <= 0:
        raise fail("Set a time budget (minutes) or a number of epochs, or both.")
    config = TrainConfig(
        model=preset,
        minutes=budget if budget > 0 else None,
        epochs=n_epochs if n_epochs > 0 else None,
        batch_size=positive_int(batch_size, "Batch size"),
    )
    config.validate()  # a bad option is reported before anything starts
    if TRAINING.running:
        raise fail(f"A training is already running ({TRAINING.title}); stop it or wait until it ends.")
    val_seqs = _validation_sequences(site, val_zip, val_names)
    run_dir = ws.unique_path(site.runs_dir, ws.timestamp_name(preset))
    TRAINING.start(
        lambda stop: train(config, dataset, run_dir, val_seqs, resume=False, stop=stop),
        run_dir,
        f"{preset} on {site.name}/{dataset.name} -> runs/{run_dir.name}",
    )
    yield from follow_training(progress)


@user_errors
def resume_training(
    site_name: str, run_name: str | None, minutes: float, epochs: float, progress: gr.Progress = PROGRESS
) -> Iterator[tuple]:
    """Continue a stopped run from its last.pt for ``minutes`` more and/or ``epochs`` more."""
    from humanseg.checkpoint import read_checkpoint
    from humanseg.train import TrainConfig, train

    site = current_site(site_name)
    if not run_name:
        raise fail("No run picked: choose a stopped run of this site under 'Resume'.")
    run_dir = site.runs_dir / ws.check_name(run_name, "run name")
    state = read_checkpoint(run_dir / "last.pt")
    info_path = run_dir / "config.json"
    if not info_path.is_file() or not state.get("train_config"):
        raise fail(f"Run {run_name} has no saved training options (config.json); it cannot be resumed.")
    info = json.loads(info_path.read_text())
    more_min, more_ep = float(minutes or 0), int(epochs or 0)
    if more_min <= 0 and more_ep <= 0:
        raise fail("Set how much longer to train: minutes and/or epochs more.")
    # Budgets in a checkpoint count from the run's start, so "N more" is added to what was done.
    config = TrainConfig.from_dict(state["train_config"]).replace(
        minutes=float(state.get("elapsed_s", 0.0)) / 60.0 + more_min if more_min > 0 else None,
        epochs=int(state.get("epoch", 0)) + more_ep if more_ep > 0 else None,
    )
    config.validate()
    dataset = Path(info["dataset"])
    val_seqs = [Path(s) for s in info.get("val_sequences", [])]
    TRAINING.start(
        lambda stop: train(config, dataset, run_dir, val_seqs, resume=True, stop=stop),
        run_dir,
        f"{config.model} on {site.name}/{dataset.name} -> runs/{run_dir.name} (resumed at step {state.get('step', 0)})",
    )
    yield from follow_training(progress)


def stop_training() -> str:
    """Ask the running training to stop after its current step (last.pt is saved; it can be resumed)."""
    if not TRAINING.running:
        return "No training is running."
    TRAINING.stop_event.set()
    return "Stopping after the current step; last.pt will be saved and the run can be resumed."


def refresh_models(site_name: str | None) -> tuple[dict, dict]:
    """The trained models and resumable runs, after a training ended."""
    runs = resumable_runs(current_site(site_name)) if site_name in ws.list_sites(APP.workspace) else []
    return gr.update(choices=checkpoint_choices()), gr.update(choices=runs)


def preset_table() -> str:
    from humanseg.models import PRESETS

    lines = ["| preset | network | width | inputs | input size (HxW) |", "|---|---|---:|---|---|"]
    for name, cfg in PRESETS.items():
        lines.append(
            f"| {name} | {cfg.arch} | {cfg.width:g} | {cfg.inputs} | {cfg.input_size[0]}x{cfg.input_size[1]} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Tab 3: segment


def baseline_choices() -> list[tuple[str, str]]:
    from humanseg.segmenters import DESCRIPTIONS, available

    return [(f"{n}: {DESCRIPTIONS.get(n, n)}", n) for n in available() if n != "segnet"]


def _build_segmenters(
    site: ws.Site | None, size: tuple[int, int], models: list[str], baselines: list[str]
) -> tuple[list, str]:
    """Segmenter instances for the chosen trained models and baselines, and a note on the plate used."""
    from humanseg.segment import resolve_segmenters
    from humanseg.segmenters import accepted_options, create_segmenter

    segs: list[Any] = []
    note = ""
    try:
        for model_id in models:
            seg = create_segmenter("segnet", checkpoint=checkpoint_for(model_id))
            seg.name = f"trained:{model_id}"  # captions and file names tell the models apart
            segs.append(seg)
        if baselines:
            takes_plate = [b for b in baselines if "plate" in accepted_options(b)]
            plate = _site_plate_for(site, size) if (site is not None and takes_plate) else None
            if takes_plate:
                note = (
                    f"{', '.join(takes_plate)} used the plate {plate.name} of site {site.name}."
                    if plate is not None
                    else f"{', '.join(takes_plate)} had no site plate of this clip's size {size[0]}x{size[1]}, "
                    "so it used a running median of the clip's frames."
                )
            segs += resolve_segmenters(baselines, plate=plate)
    except BaseException:
        for seg in segs:
            seg.close()
        raise
    return segs, note


def _segment_into(
    out: Path,
    src: Path,
    n: int,
    site: ws.Site | None,
    size: tuple[int, int],
    models: list[str],
    baselines: list[str],
    gt_zip: Any,
    progress: gr.Progress,
) -> tuple[Any, list[dict], str]:
    """Segment ``src`` into ``out`` (and score it when ground truth is given): (SegmentResult, metric rows, note)."""
    from humanseg.evaluate import evaluate_sequence
    from humanseg.segment import segment_video

    source, seq_dir = src, None
    gt_path = upload_path(gt_zip, "ground-truth zip")
    if gt_path is not None:
        ws.extract_zip(gt_path, out / "groundtruth-upload")
        labels = ws.label_folder(out / "groundtruth-upload")
        # The sequence folder's name labels the rows of the metrics table.
        seq_dir = ws.clip_to_sequence(
            src, labels, out / ws.safe_stem(src.stem, "clip"), max_frames=n,
            progress=progress_callback(progress, "reading the clip"),
        )  # fmt: skip
        source = seq_dir
    segs, note = _build_segmenters(site, size, models, baselines)
    rows = []
    try:
        result = segment_video(
            source, segs, out, max_frames=n, save_pngs=True, progress=progress_callback(progress, "segmenting")
        )
        for seg in segs if seq_dir is not None else []:
            scoring = progress_callback(progress, f"scoring {seg.name}")
            rows.append(evaluate_sequence(seq_dir, seg, skip_first=False, progress=scoring))
    finally:
        for seg in segs:
            seg.close()
    return result, rows, note


def _method_views(state: dict, method: str | None) -> tuple[str | None, str | None]:
    if not state or not method or method not in state:
        return None, None
    return state[method]["overlay"], state[method]["mask"]


@user_errors
def segment(
    site_name: str | None,
    video: Any,
    models: list[str] | None,
    baselines: list[str] | None,
    max_frames: float,
    gt_zip: Any,
    progress: gr.Progress = PROGRESS,
) -> tuple:
    """Run the chosen methods over a clip: side-by-side, overlay and mask videos, PNG zips, metrics with ground truth."""
    from humanseg.evaluate import f_measure_chart, results_markdown

    src = upload_path(video, "video")
    if src is None:
        raise fail("No clip: drag a video (mp4, avi, mkv, webm...) into the box first.")
    models, baselines = list(models or []), list(baselines or [])
    if not models and not baselines:
        raise fail("Pick at least one method: a trained model and/or a baseline.")
    n = positive_int(max_frames, "Max frames")
    with open_frames(src, max_frames=n) as reader:  # VideoError: text file, empty, zero frames, corrupt
        size = reader.size
    site = current_site(site_name) if site_name else None
    parent = site.outputs_dir if site is not None else APP.workspace / ".outputs"
    out = ws.unique_path(parent, ws.timestamp_name("segment"))
    out.mkdir(parents=True)
    try:
        result, rows, note = _segment_into(out, src, n, site, size, models, baselines, gt_zip, progress)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # a failed run leaves no half-written output folder
        raise
    state = {m.name: {"overlay": str(m.overlay_video), "mask": str(m.mask_video)} for m in result.methods.values()}
    files = [str(result.side_by_side)] if result.side_by_side else []
    for m in result.methods.values():
        files += [str(p) for p in (m.overlay_video, m.mask_video, m.masks_zip) if p is not None]
    lines = [
        f"{result.frames} frames of {result.size[0]}x{result.size[1]} in {result.seconds:.1f} s "
        f"({result.frames_per_second:.1f} frames/s, all methods and video writing included). Saved in `{out}`.",
        "",
        "| method | ms/frame | frames |",
        "|---|---:|---:|",
    ]
    lines += [f"| {m.name} | {m.ms_per_frame:.1f} | {m.frames} |" for m in result.methods.values()]
    if note:
        lines += ["", note]
    metrics_md, chart = "", None  # both stay hidden without ground truth
    if rows:
        metrics_md = results_markdown(rows)
        (out / "metrics.json").write_text(json.dumps(rows, indent=1, default=str))
        chart = str(f_measure_chart(rows, out / "f_measure.png"))
    first = next(iter(state), None)
    overlay_v, mask_v = _method_views(state, first)
    return (
        str(result.side_by_side) if result.side_by_side else None,
        gr.update(choices=list(state), value=first),
        overlay_v,
        mask_v,
        files,
        "\n".join(lines),
        gr.update(value=metrics_md, visible=bool(metrics_md)),
        gr.update(value=chart, visible=chart is not None),
        state,
    )


def show_method(state: dict, method: str | None) -> tuple[str | None, str | None]:
    """The overlay and mask videos of one method of the last segmentation."""
    return _method_views(state, method)


# --------------------------------------------------------------------------------------------------------------
# The page

INTRO = """# humanseg: people segmentation for one fixed camera
Build a training set for *your* camera from its empty scene and some people, train a small network on it, and
compare it with classic background subtraction and generic person models on your own clips."""

FILE_H = 140  # px: upload boxes stay compact

CSS = """
#site-info p, #seg-note p {margin: 0.2em 0;}
.hs-step h3 {margin-top: 0.4em;}
"""


def _segmenter_methods() -> list[str]:
    from dataset_builder.silhouettes import methods

    return methods()


from humanseg.models import DEFAULT_PRESET, PRESETS  # noqa: E402  (the preset list is part of the page)

with gr.Blocks(title="humanseg") as demo:
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        site_dd = gr.Dropdown(
            label="Site (one fixed camera view)", choices=[], value=None, scale=3, interactive=True,
            allow_custom_value=True, elem_id="site-dd",
        )  # fmt: skip
        new_site = gr.Textbox(label="New site name", placeholder="e.g. lobby-cam2", scale=2)
        with gr.Column(scale=1, min_width=120):
            create_btn = gr.Button("Create site")
    site_info = gr.Markdown(elem_id="site-info")

    with gr.Tabs():
        # ---------------------------------------------------------------------------------------- tab 1
        with gr.Tab("1. Site and dataset", id="site"):
            gr.Markdown("### Step 1: plates, the empty scene", elem_classes="hs-step")
            with gr.Row():
                with gr.Column(scale=1):
                    bg_files = gr.File(
                        label="Background images of the empty scene",
                        file_count="multiple",
                        file_types=["image"],
                        height=FILE_H,
                    )
                    add_bg_btn = gr.Button("Add backgrounds")
                    site_clip = gr.File(
                        label="...or a clip of the site (people may walk through)",
                        file_types=["video", ".avi", ".mkv"],
                        height=FILE_H,
                    )
                    with gr.Row():
                        plate_count = gr.Number(label="Plates to estimate", value=1, minimum=1, precision=0)
                        estimate_btn = gr.Button("Estimate plates from clip")
                    plate_people = gr.Checkbox(
                        label="Leave out people MediaPipe finds (someone stands still for most of the clip)",
                        value=False,
                    )
                with gr.Column(scale=2):
                    # fit_columns=False: a single plate keeps a thumbnail's shape instead of a cropped full-width strip
                    plates_gallery = gr.Gallery(
                        label="Plates", columns=3, height=300, object_fit="contain", preview=False, fit_columns=False
                    )
                    with gr.Row():
                        plate_sel = gr.Textbox(label="Selected plate", interactive=False, scale=3)
                        remove_plate_btn = gr.Button("Remove plate", scale=1)
                    plates_status = gr.Markdown(elem_id="plates-status")

            gr.Markdown("### Step 2: people (actor silhouettes)", elem_classes="hs-step")
            with gr.Row():
                with gr.Column():
                    gr.Markdown("**From an actor clip** (any camera), with its masks or a segmenter")
                    actor_clip = gr.File(
                        label="Actor clip (video, or zip of a DAVIS/CDnet sequence)",
                        file_types=["video", ".avi", ".mkv", ".zip"], height=FILE_H,
                    )  # fmt: skip
                    actor_masks = gr.File(
                        label="Masks zip (optional: Annotations/NNNNN.png or groundtruth/gtNNNNNN.png)",
                        file_types=[".zip"], height=FILE_H,
                    )  # fmt: skip
                    with gr.Row():
                        actor_method = gr.Dropdown(
                            label="Extraction method", choices=_segmenter_methods(), value="masks"
                        )
                        actor_step = gr.Number(label="Use every N-th frame", value=1, minimum=1, precision=0)
                    extract_btn = gr.Button("Extract silhouettes")
                with gr.Column():
                    gr.Markdown("**Harvested from the site clip**: the passers-by of your own camera")
                    harvest_clip = gr.Dropdown(label="Site clip", choices=[], allow_custom_value=True)
                    with gr.Row():
                        harvest_method = gr.Dropdown(
                            label="Method", choices=[m for m in _segmenter_methods() if m != "masks"], value="plate"
                        )
                        harvest_step = gr.Number(label="Use every N-th frame", value=4, minimum=1, precision=0)
                    harvest_btn = gr.Button("Harvest silhouettes")
            with gr.Row(equal_height=True):
                sil_set = gr.Dropdown(label="Silhouette set to review", choices=[], allow_custom_value=True, scale=3)
                sil_page = gr.Number(label="Page", value=1, minimum=1, precision=0, scale=1)
                sil_info = gr.Markdown()
            sil_gallery = gr.Gallery(
                label="Silhouettes: click the bad ones (cut off, merged, shadows), then 'Reject selected'",
                columns=10, height=330, object_fit="contain", allow_preview=False, elem_id="sil-gallery",
            )  # fmt: skip
            sil_names = gr.State([])
            with gr.Row(equal_height=True):
                sil_selected = gr.Dropdown(
                    label="Selected silhouettes", choices=[], multiselect=True, scale=4, allow_custom_value=True
                )
                reject_btn = gr.Button("Reject selected", variant="stop", scale=1)
                accept_btn = gr.Button("Accept again", scale=1)
            sil_status = gr.Markdown(elem_id="sil-status")

            gr.Markdown("### Step 3: build the dataset", elem_classes="hs-step")
            with gr.Row():
                with gr.Column():
                    build_sets = gr.CheckboxGroup(label="Silhouette sets to use", choices=[])
                    with gr.Row():
                        build_name = gr.Textbox(label="Dataset name (empty: automatic)", placeholder="dataset-...")
                        build_count = gr.Number(label="Images", value=2000, minimum=1, precision=0)
                        build_seed = gr.Number(label="Seed", value=0, minimum=0, precision=0)
                    with gr.Row():
                        build_h = gr.Number(label="Height px (0: plate size)", value=240, minimum=0, precision=0)
                        build_w = gr.Number(label="Width px (0: plate size)", value=320, minimum=0, precision=0)
                    build_persp = gr.Textbox(
                        label="Perspective",
                        value="auto",
                        info="'auto' fits person height to feet row from harvested site silhouettes (a generic guess "
                        "without them); or two reference people as ROW:HEIGHT,ROW:HEIGHT in output pixels, "
                        "e.g. 80:30,230:110",
                    )
                    build_btn = gr.Button("Build dataset", variant="primary")
                    build_status = gr.Markdown(elem_id="build-status")
                with gr.Column():
                    dataset_preview = gr.Image(
                        label="Dataset preview (person outlines in red)", type="filepath", interactive=False
                    )
                    dataset_info = gr.Markdown()

        # ---------------------------------------------------------------------------------------- tab 2
        with gr.Tab("2. Train", id="train"):
            device_md = gr.Markdown(f"Training runs on: **{device_text()}**")
            with gr.Row():
                with gr.Column():
                    train_dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True)
                    train_preset = gr.Dropdown(label="Model preset", choices=list(PRESETS), value=DEFAULT_PRESET)
                    with gr.Row():
                        train_minutes = gr.Number(label="Time budget, minutes (0: none)", value=10, minimum=0)
                        train_epochs = gr.Number(label="Epochs (0: none)", value=0, minimum=0, precision=0)
                        train_batch = gr.Number(label="Batch size", value=8, minimum=1, precision=0)
                    with gr.Accordion("Validation on a real clip with ground truth (optional)", open=False):
                        val_zip = gr.File(
                            label="Zip of a CDnet-layout clip: input/inNNNNNN.jpg + groundtruth/gtNNNNNN.png",
                            file_types=[".zip"], height=FILE_H,
                        )  # fmt: skip
                        val_existing = gr.Dropdown(
                            label="...or the site's validation clips",
                            choices=[],
                            multiselect=True,
                            allow_custom_value=True,
                        )
                    with gr.Row():
                        train_btn = gr.Button("Start training", variant="primary")
                        stop_btn = gr.Button("Stop", variant="stop")
                    stop_msg = gr.Markdown()
                    with gr.Accordion("Resume a stopped run", open=False):
                        resume_run = gr.Dropdown(label="Run", choices=[], allow_custom_value=True)
                        with gr.Row():
                            resume_minutes = gr.Number(label="Minutes more", value=5, minimum=0)
                            resume_epochs = gr.Number(label="Epochs more", value=0, minimum=0, precision=0)
                        resume_btn = gr.Button("Resume")
                    with gr.Accordion("Model presets", open=False):
                        gr.Markdown(preset_table())
                with gr.Column():
                    train_status = gr.Markdown("No training yet.")
                    train_plot = gr.LinePlot(
                        x="step", y="value", color="curve", title="Training loss and validation F",
                        x_title="step", y_title="loss / F", height=300,
                    )  # fmt: skip
                    train_log = gr.Textbox(label="Log", lines=10, max_lines=10, autoscroll=True, interactive=False)
                    train_ckpt = gr.File(label="Best checkpoint (when the run ends)", interactive=False, height=FILE_H)

        # ---------------------------------------------------------------------------------------- tab 3
        with gr.Tab("3. Segment", id="segment"):
            with gr.Row():
                with gr.Column(scale=2):
                    seg_video = gr.Video(
                        label="Clip: drag a video here", sources=["upload"], height=300, elem_id="seg-video"
                    )
                    seg_note = gr.Markdown(elem_id="seg-note")
                    seg_models = gr.CheckboxGroup(
                        label="Trained models (this workspace)", choices=[],
                        info="Models trained in tab 2 appear here (site/run).",
                    )  # fmt: skip
                    seg_baselines = gr.CheckboxGroup(
                        label="Baselines", choices=baseline_choices(), value=["mog2", "plate-diff"]
                    )
                    with gr.Row():
                        max_frames = gr.Number(
                            label="Max frames (keeps CPU runs short)", value=100, minimum=1, precision=0
                        )
                        gt_zip = gr.File(
                            label="Ground truth (optional): zip of groundtruth/gtNNNNNN.png", file_types=[".zip"], height=FILE_H,
                            elem_id="gt-zip",
                        )  # fmt: skip
                    seg_btn = gr.Button("Segment", variant="primary")
                with gr.Column(scale=3):
                    sbs_video = gr.Video(
                        label="Side by side: input | each method (caption: name, ms/frame)", interactive=False, height=320,
                        elem_id="sbs-video",
                    )  # fmt: skip
                    seg_summary = gr.Markdown()
                    method_dd = gr.Dropdown(label="Method to view", choices=[], allow_custom_value=True)
                    with gr.Row():
                        overlay_video = gr.Video(label="Overlay", interactive=False, height=220)
                        mask_video = gr.Video(label="Mask", interactive=False, height=220)
                    seg_files = gr.File(
                        label="Downloads: videos and PNG mask zips", file_count="multiple", interactive=False
                    )
                    seg_metrics = gr.Markdown(visible=False)
                    seg_chart = gr.Image(
                        label="F-measure per method", type="filepath", interactive=False, visible=False
                    )
            seg_state = gr.State({})

    TRAIN_OUT = [train_status, train_plot, train_log, train_ckpt]
    OVERVIEW = [
        site_dd, site_info, plates_gallery, harvest_clip, sil_set, sil_gallery, sil_names, sil_selected, sil_page,
        sil_info, build_sets, dataset_preview, dataset_info, train_dataset, resume_run, val_existing, seg_models,
        *TRAIN_OUT,
    ]  # fmt: skip

    demo.load(on_load, None, [*OVERVIEW, seg_video, seg_note], api_visibility="private")
    demo.load(
        watch_training,
        None,
        TRAIN_OUT,
        concurrency_limit=None,
        show_progress_on=[train_status],
        api_name="training_status",
    )

    create_btn.click(create_site, [new_site], OVERVIEW, api_name="create_site")
    site_dd.input(user_errors(site_overview), [site_dd], OVERVIEW, api_name="site_overview")

    # Long steps show their progress bar on the output next to their button, not over every output they update.
    add_bg_btn.click(add_backgrounds, [site_dd, bg_files], [plates_gallery, plates_status], api_name="add_backgrounds")
    estimate_btn.click(
        estimate_site_plates, [site_dd, site_clip, plate_count, plate_people], [*OVERVIEW, plates_status],
        api_name="estimate_plates", show_progress_on=[plates_gallery],
    )  # fmt: skip
    plates_gallery.select(selected_plate, None, plate_sel, api_visibility="private")
    remove_plate_btn.click(remove_plate, [site_dd, plate_sel], [plates_gallery, plates_status], api_name="remove_plate")

    extract_btn.click(
        extract_actor,
        [site_dd, actor_clip, actor_masks, actor_method, actor_step],
        [*OVERVIEW, sil_status],
        api_name="extract_silhouettes",
        show_progress_on=[sil_gallery],
    )
    harvest_btn.click(
        harvest,
        [site_dd, harvest_clip, harvest_method, harvest_step],
        [*OVERVIEW, sil_status],
        api_name="harvest_silhouettes",
        show_progress_on=[sil_gallery],
    )
    SIL_OUT = [sil_gallery, sil_names, sil_selected, sil_page, sil_info]
    sil_set.input(show_silhouettes, [site_dd, sil_set], SIL_OUT, api_name="show_silhouettes")
    sil_page.input(
        show_silhouettes, [site_dd, sil_set, sil_page], SIL_OUT, api_visibility="private", trigger_mode="always_last"
    )
    sil_gallery.select(select_silhouette, [sil_names, sil_selected], [sil_selected], api_visibility="private")
    reject_btn.click(
        reject_silhouettes, [site_dd, sil_set, sil_selected, sil_page], [*SIL_OUT, sil_status],
        api_name="reject_silhouettes",
    )  # fmt: skip
    accept_btn.click(
        accept_silhouettes, [site_dd, sil_set, sil_selected, sil_page], [*SIL_OUT, sil_status],
        api_name="accept_silhouettes",
    )  # fmt: skip
    build_btn.click(
        build,
        [site_dd, build_name, build_sets, build_count, build_h, build_w, build_seed, build_persp],
        [*OVERVIEW, build_status],
        api_name="build_dataset",
        show_progress_on=[dataset_preview],
    )

    # Training streams from a background thread: no queue slot is held per run (a second start is refused with
    # a message, not queued), and the progress bar sits on the status line so the plot and log stay visible.
    train_event = train_btn.click(
        start_training,
        [site_dd, train_dataset, train_preset, train_minutes, train_epochs, train_batch, val_zip, val_existing],
        TRAIN_OUT,
        api_name="train",
        concurrency_limit=None,
        show_progress_on=[train_status],
    )
    resume_event = resume_btn.click(
        resume_training, [site_dd, resume_run, resume_minutes, resume_epochs], TRAIN_OUT,
        api_name="resume_training", concurrency_limit=None, show_progress_on=[train_status],
    )  # fmt: skip
    # A finished or stopped run becomes a model to segment with and a run to resume.
    for event in (train_event, resume_event):
        event.then(refresh_models, [site_dd], [seg_models, resume_run], api_visibility="private")
    stop_btn.click(stop_training, None, [stop_msg], api_name="stop_training", concurrency_limit=None)

    seg_btn.click(
        segment,
        [site_dd, seg_video, seg_models, seg_baselines, max_frames, gt_zip],
        [sbs_video, method_dd, overlay_video, mask_video, seg_files, seg_summary, seg_metrics, seg_chart, seg_state],
        api_name="segment",
        show_progress_on=[sbs_video],
    )
    method_dd.input(show_method, [seg_state, method_dd], [overlay_video, mask_video], api_visibility="private")


# --------------------------------------------------------------------------------------------------------------
# Launch


def launch(
    workspace: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int | None = 7860,
    max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
    example: bool = True,
    **kwargs: Any,
) -> Any:
    """Point the app at ``workspace`` and start the server (``kwargs`` go to ``demo.launch``, e.g.
    ``prevent_thread_lock=True`` for tests). Files are served only from the workspace and temp folders.
    ``example``: preload the example clip in the Segment tab (cut from examples/data/vtest.avi if present)."""
    APP.workspace = ws.resolve_workspace(workspace)
    APP.example = example
    example_clip()  # cut once here, before the first page asks for it
    return demo.queue(default_concurrency_limit=1).launch(
        server_name=host,
        server_port=port,
        share=False,
        allowed_paths=[str(APP.workspace)],
        max_file_size=max_file_size,
        css=CSS,
        show_error=False,
        **kwargs,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    launch(args.workspace, args.host, args.port, args.max_file_size)


if __name__ == "__main__":
    main()
