"""Tab 1, site and dataset: plates of the empty scene, actor silhouettes (extracted or harvested, reviewed), and
building the dataset. The rules live in :mod:`humanseg.site`; this module lays out the tab and wires it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from humanseg import site as rules
from humanseg import workspace as ws
from humanseg.ui.common import (
    FILE_H,
    PROGRESS,
    Page,
    current_site,
    fail,
    positive_int,
    upload_path,
    upload_paths,
    user_errors,
)


def _segmenter_methods() -> list[str]:
    from dataset_builder.silhouettes import methods

    return methods()


def _gallery(paths: list[Path]) -> list[tuple[str, str]]:
    return [(str(p), p.name) for p in paths]


class SiteTab:
    """The components of tab 1 (built in the page's Blocks context) and their events."""

    def __init__(self) -> None:
        gr.Markdown("### Step 1: plates, the empty scene", elem_classes="hs-step")
        with gr.Row():
            with gr.Column(scale=1):
                self.bg_files = gr.File(
                    label="Background images of the empty scene", file_count="multiple", file_types=["image"],
                    height=FILE_H,
                )  # fmt: skip
                self.add_bg_btn = gr.Button("Add backgrounds")
                self.site_clip = gr.File(
                    label="...or a clip of the site (people may walk through)",
                    file_types=["video", ".avi", ".mkv"], height=FILE_H,
                )  # fmt: skip
                with gr.Row():
                    self.plate_count = gr.Number(label="Plates to estimate", value=1, minimum=1, precision=0)
                    self.estimate_btn = gr.Button("Estimate plates from clip")
                self.plate_people = gr.Checkbox(
                    label="Leave out people MediaPipe finds (someone stands still for most of the clip)", value=False
                )
            with gr.Column(scale=2):
                # fit_columns=False: a single plate keeps a thumbnail's shape instead of a cropped full-width strip
                self.plates_gallery = gr.Gallery(
                    label="Plates", columns=3, height=300, object_fit="contain", preview=False, fit_columns=False
                )
                with gr.Row():
                    self.plate_sel = gr.Textbox(label="Selected plate", interactive=False, scale=3)
                    self.remove_plate_btn = gr.Button("Remove plate", scale=1)
                self.plates_status = gr.Markdown(elem_id="plates-status")

        gr.Markdown("### Step 2: people (actor silhouettes)", elem_classes="hs-step")
        with gr.Row():
            with gr.Column():
                gr.Markdown("**From an actor clip** (any camera), with its masks or a segmenter")
                self.actor_clip = gr.File(
                    label="Actor clip (video, or zip of a DAVIS/CDnet sequence)",
                    file_types=["video", ".avi", ".mkv", ".zip"], height=FILE_H,
                )  # fmt: skip
                self.actor_masks = gr.File(
                    label="Masks zip (optional: Annotations/NNNNN.png or groundtruth/gtNNNNNN.png)",
                    file_types=[".zip"], height=FILE_H,
                )  # fmt: skip
                with gr.Row():
                    self.actor_method = gr.Dropdown(
                        label="Extraction method", choices=_segmenter_methods(), value="masks"
                    )
                    self.actor_step = gr.Number(label="Use every N-th frame", value=1, minimum=1, precision=0)
                self.extract_btn = gr.Button("Extract silhouettes")
            with gr.Column():
                gr.Markdown("**Harvested from the site clip**: the passers-by of your own camera")
                self.harvest_clip = gr.Dropdown(label="Site clip", choices=[], allow_custom_value=True)
                with gr.Row():
                    self.harvest_method = gr.Dropdown(
                        label="Method", choices=[m for m in _segmenter_methods() if m != "masks"], value="plate"
                    )
                    self.harvest_step = gr.Number(label="Use every N-th frame", value=4, minimum=1, precision=0)
                self.harvest_btn = gr.Button("Harvest silhouettes")
        with gr.Row(equal_height=True):
            self.sil_set = gr.Dropdown(label="Silhouette set to review", choices=[], allow_custom_value=True, scale=3)
            self.sil_page = gr.Number(label="Page", value=1, minimum=1, precision=0, scale=1)
            self.sil_info = gr.Markdown()
        self.sil_gallery = gr.Gallery(
            label="Silhouettes: click the bad ones (cut off, merged, shadows), then 'Reject selected'",
            columns=10, height=330, object_fit="contain", allow_preview=False, elem_id="sil-gallery",
        )  # fmt: skip
        self.sil_names = gr.State([])
        with gr.Row(equal_height=True):
            self.sil_selected = gr.Dropdown(
                label="Selected silhouettes", choices=[], multiselect=True, scale=4, allow_custom_value=True
            )
            self.reject_btn = gr.Button("Reject selected", variant="stop", scale=1)
            self.accept_btn = gr.Button("Accept again", scale=1)
        self.sil_status = gr.Markdown(elem_id="sil-status")

        gr.Markdown("### Step 3: build the dataset", elem_classes="hs-step")
        with gr.Row():
            with gr.Column():
                self.build_sets = gr.CheckboxGroup(label="Silhouette sets to use", choices=[])
                with gr.Row():
                    self.build_name = gr.Textbox(label="Dataset name (empty: automatic)", placeholder="dataset-...")
                    self.build_count = gr.Number(label="Images", value=2000, minimum=1, precision=0)
                    self.build_seed = gr.Number(label="Seed", value=0, minimum=0, precision=0)
                with gr.Row():
                    self.build_h = gr.Number(label="Height px (0: plate size)", value=240, minimum=0, precision=0)
                    self.build_w = gr.Number(label="Width px (0: plate size)", value=320, minimum=0, precision=0)
                self.build_persp = gr.Textbox(
                    label="Perspective",
                    value="auto",
                    info="'auto' fits person height to feet row from harvested site silhouettes (a generic guess "
                    "without them); or two reference people as ROW:HEIGHT,ROW:HEIGHT in output pixels, "
                    "e.g. 80:30,230:110",
                )
                self.build_shake = gr.Number(
                    label="Camera shake px (0: fixed camera)",
                    value=0,
                    minimum=0,
                    precision=0,
                    info="Shift each composite's background against its plate by up to this many pixels: only for "
                    "a camera that shakes or sways. A fixed camera's frames line up with their plate; shifted "
                    "composites teach the model to ignore changes in cluttered areas.",
                )
                self.build_btn = gr.Button("Build dataset", variant="primary")
                self.build_status = gr.Markdown(elem_id="build-status")
            with gr.Column():
                self.dataset_preview = gr.Image(
                    label="Dataset preview (person outlines in red)", type="filepath", interactive=False
                )
                self.dataset_info = gr.Markdown()
        self.sil_outputs = [self.sil_gallery, self.sil_names, self.sil_selected, self.sil_page, self.sil_info]
        self.page: Page | None = None

    # -- what the tab shows for a site

    def refresh(self, site: ws.Site | None) -> dict:
        """The tab's view of ``site`` (empty without one): plates, clips, silhouette sets, the latest dataset."""
        if site is None:
            return {
                self.plates_gallery: [],
                self.harvest_clip: gr.update(choices=[], value=None),
                **self._silhouettes(None, None),
                self.build_sets: gr.update(choices=[], value=[]),
                self.dataset_preview: None,
                self.dataset_info: "",
            }
        clips = [c.name for c in site.clips()]
        sets = rules.silhouette_sets(site)
        latest = rules.latest_dataset(site)
        preview = latest / "preview.png" if latest is not None else None
        info = rules.dataset_summary(latest) if latest is not None else ""
        stray = site.stray_plates()
        if stray:
            # A link out of the workspace is never served; say so instead of failing the whole overview.
            names = ", ".join(f"plates/{p.name}" for p in stray)
            warning = f"Skipped {names}: a link to a file outside the workspace; copy the image in instead."
            gr.Warning(warning)
            info = f"{warning}\n\n{info}"
        return {
            self.plates_gallery: _gallery(site.plates()),
            self.harvest_clip: gr.update(choices=clips, value=clips[-1] if clips else None),
            **self._silhouettes(site, sets[-1] if sets else None),
            self.build_sets: gr.update(choices=sets, value=sets),
            self.dataset_preview: str(preview) if preview is not None and preview.is_file() else None,
            self.dataset_info: info,
        }

    def _silhouettes(self, site: ws.Site | None, set_name: str | None) -> dict:
        sets = rules.silhouette_sets(site) if site is not None else []
        values = self.show_silhouettes(site.name if site is not None else None, set_name)
        return {
            self.sil_set: gr.update(choices=sets, value=set_name),
            **dict(zip(self.sil_outputs, values, strict=True)),
        }

    # -- handlers

    def add_backgrounds(self, site_name: str, files: Any) -> tuple[list, str]:
        """Copy uploaded empty-scene images into the site's plates (each checked to be a readable image)."""
        paths = upload_paths(files, "background image")
        plates = rules.add_plates(current_site(site_name), paths)
        return _gallery(plates), f"Added {len(paths)} background image(s); the site has {len(plates)} plate(s)."

    def estimate_plates(
        self, site_name: str, clip: Any, count: float, leave_out_people: bool = False, progress: gr.Progress = PROGRESS
    ) -> dict:
        """Store a site clip and estimate ``count`` plates from it (temporal median, people removed; with
        ``leave_out_people`` also the people MediaPipe finds, for someone standing still most of the clip)."""
        site = current_site(site_name)
        src = upload_path(clip, "site clip")
        if src is None:
            raise fail("No site clip uploaded: drop a video of the site (people may walk through it).")
        n = positive_int(count, "Number of plates")
        stored, plates, size = rules.estimate_site_plates(
            site, src, n, leave_out_people=leave_out_people, progress=True
        )
        updates = self.page.overview(site.name)
        updates[self.plates_status] = f"Estimated {len(plates)} plate(s) from {stored.name} ({size[0]}x{size[1]})."
        return updates

    def remove_plate(self, site_name: str, plate_name: str | None) -> tuple[list, str]:
        """Delete one plate image of the site (e.g. a bad estimate)."""
        site = current_site(site_name)
        rules.remove_plate(site, plate_name)
        plates = site.plates()
        return _gallery(plates), f"Removed {plate_name}; {len(plates)} plate(s) left."

    @staticmethod
    def selected_plate(evt: gr.SelectData) -> str:
        """The file name (gallery caption) of the plate clicked in the plates gallery."""
        value = evt.value if isinstance(evt.value, dict) else {}
        return value.get("caption") or ""

    def extract(
        self, site_name: str, clip: Any, masks: Any, method: str, step: float, progress: gr.Progress = PROGRESS
    ) -> dict:
        """Cut people out of an actor clip (its own masks, the plate method, or a segmenter) into a silhouette set."""
        site = current_site(site_name)
        clip_path = upload_path(clip, "actor clip")
        if clip_path is None:
            raise fail("No actor clip uploaded: drop a video (with a masks zip), or a zip of a DAVIS/CDnet sequence.")
        n_step = positive_int(step, "Frame step")
        out, found = rules.extract_actor(
            site, clip_path, upload_path(masks, "masks zip"), method, n_step, progress=True
        )
        return self._after_extraction(
            site, out, f"{found} silhouettes extracted from {clip_path.name} with '{method}' into set {out.name}."
        )

    def harvest(
        self, site_name: str, clip_name: str | None, method: str, step: float, progress: gr.Progress = PROGRESS
    ) -> dict:
        """Harvest the passers-by of a site clip as silhouettes (with the site's plate when it fits the clip)."""
        site = current_site(site_name)
        n_step = positive_int(step, "Frame step")
        out, found, plate = rules.harvest(site, clip_name, method, n_step, progress=True)
        return self._after_extraction(
            site, out,
            f"Harvested {found} silhouettes of passers-by from {clip_name} with '{method}' into set {out.name}"
            + (f" (plate {plate.name})." if plate is not None else ".")
            + " Reject the bad ones (cut, merged, shadows) before building.",
        )  # fmt: skip

    def _after_extraction(self, site: ws.Site, out: Path, message: str) -> dict:
        """The page after a silhouette extraction: the site's overview, the new set in the review gallery, a status."""
        updates = self.page.overview(site.name)
        updates.update(self._silhouettes(site, out.name))
        updates[self.sil_status] = message
        return updates

    @staticmethod
    def show_silhouettes(site_name: str | None, set_name: str | None, page: float = 1) -> tuple:
        """One page of a silhouette set: gallery items, their names (gallery order), an emptied selection, the
        page number shown and a caption with the counts."""
        if not site_name or not set_name:
            return [], [], gr.update(choices=[], value=[]), 1, ""
        shown = rules.silhouette_page(rules.silhouette_folder(current_site(site_name), set_name), int(page or 1))
        return shown.items, shown.names, gr.update(choices=shown.names, value=[]), shown.page, shown.caption

    @staticmethod
    def select_silhouette(names: list[str], selected: list[str] | None, evt: gr.SelectData) -> dict:
        """Clicking a silhouette adds it to the selection (clicking it again removes it)."""
        chosen = list(selected or [])
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        if 0 <= index < len(names):
            name = names[index]
            chosen = [n for n in chosen if n != name] if name in chosen else chosen + [name]
        return gr.update(value=chosen)

    def _set_accepted(self, site_name: str, set_name: str | None, names: list[str] | None, accepted: bool, page: float):
        changed = rules.set_accepted(current_site(site_name), set_name, names, accepted)
        verb = "Accepted" if accepted else "Rejected"
        status = f"{verb} {changed} silhouette(s) in {set_name}; the dataset builder skips rejected ones."
        return (*self.show_silhouettes(site_name, set_name, page), status)

    def reject(self, site_name: str, set_name: str | None, names: list[str] | None, page: float = 1) -> tuple:
        """Mark the selected silhouettes as rejected (kept on disk, skipped by the builder)."""
        return self._set_accepted(site_name, set_name, names, False, page)

    def accept(self, site_name: str, set_name: str | None, names: list[str] | None, page: float = 1) -> tuple:
        """Undo a rejection."""
        return self._set_accepted(site_name, set_name, names, True, page)

    def build(
        self,
        site_name: str,
        name: str,
        sets: list[str] | None,
        count: float,
        height: float,
        width: float,
        seed: float,
        perspective: str,
        shake: float = 0,
        progress: gr.Progress = PROGRESS,
    ) -> dict:
        """Composite the site's plates and the chosen silhouette sets into a new dataset."""
        site = current_site(site_name)
        out = rules.build_site_dataset(
            site, name, sets or [], positive_int(count, "Number of images"), rules.dataset_size(int(height or 0), int(width or 0)),
            seed=positive_int(seed, "Seed", minimum=0), perspective=perspective,
            shake_px=positive_int(shake, "Camera shake px", minimum=0), progress=True,
        )  # fmt: skip
        updates = self.page.overview(site.name)
        updates[self.build_status] = f"Built dataset {out.name} in {out}."
        return updates

    # -- events

    def wire(self, page: Page) -> None:
        """Connect the tab's buttons; long steps show their progress bar on the output next to their button."""
        self.page = page
        site = page.site_dd
        self.add_bg_btn.click(
            user_errors(self.add_backgrounds), [site, self.bg_files], [self.plates_gallery, self.plates_status],
            api_name="add_backgrounds",
        )  # fmt: skip
        self.estimate_btn.click(
            user_errors(self.estimate_plates), [site, self.site_clip, self.plate_count, self.plate_people],
            [*page.outputs, self.plates_status], api_name="estimate_plates", show_progress_on=[self.plates_gallery],
        )  # fmt: skip
        self.plates_gallery.select(self.selected_plate, None, self.plate_sel, api_name="selected_plate")
        self.remove_plate_btn.click(
            user_errors(self.remove_plate), [site, self.plate_sel], [self.plates_gallery, self.plates_status],
            api_name="remove_plate",
        )  # fmt: skip
        self.extract_btn.click(
            user_errors(self.extract), [site, self.actor_clip, self.actor_masks, self.actor_method, self.actor_step],
            [*page.outputs, self.sil_status], api_name="extract_silhouettes", show_progress_on=[self.sil_gallery],
        )  # fmt: skip
        self.harvest_btn.click(
            user_errors(self.harvest), [site, self.harvest_clip, self.harvest_method, self.harvest_step],
            [*page.outputs, self.sil_status], api_name="harvest_silhouettes", show_progress_on=[self.sil_gallery],
        )  # fmt: skip
        show = user_errors(self.show_silhouettes)
        self.sil_set.input(show, [site, self.sil_set], self.sil_outputs, api_name="show_silhouettes")
        self.sil_page.input(
            show, [site, self.sil_set, self.sil_page], self.sil_outputs, api_name="show_silhouette_page",
            trigger_mode="always_last",
        )  # fmt: skip
        self.sil_gallery.select(
            self.select_silhouette, [self.sil_names, self.sil_selected], [self.sil_selected],
            api_name="select_silhouette",
        )  # fmt: skip
        review = [site, self.sil_set, self.sil_selected, self.sil_page]
        self.reject_btn.click(
            user_errors(self.reject), review, [*self.sil_outputs, self.sil_status], api_name="reject_silhouettes"
        )
        self.accept_btn.click(
            user_errors(self.accept), review, [*self.sil_outputs, self.sil_status], api_name="accept_silhouettes"
        )
        self.build_btn.click(
            user_errors(self.build),
            [site, self.build_name, self.build_sets, self.build_count, self.build_h, self.build_w, self.build_seed,
             self.build_persp, self.build_shake],
            [*page.outputs, self.build_status], api_name="build_dataset", show_progress_on=[self.dataset_preview],
        )  # fmt: skip
