"""The humanseg web app (Gradio): the page, its three tabs, and launching it. The only package that imports gradio.

The page is a site picker over three tabs, one module each (:mod:`~humanseg.ui.site_tab`,
:mod:`~humanseg.ui.train_tab`, :mod:`~humanseg.ui.segment_tab`); each builds its components, wires its own
events and refreshes its own outputs when the site changes (:class:`~humanseg.ui.common.Page`). Handlers only
call the Gradio-free library (:mod:`humanseg.site`, :mod:`humanseg.training_job`, :mod:`humanseg.segment`).
Every endpoint has an ``api_name``, so ``gradio_client`` callers use names.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no usage pings

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from humanseg import site as rules  # noqa: E402
from humanseg import workspace as ws  # noqa: E402
from humanseg.ui.common import APP, TRAINING, Page, user_errors  # noqa: E402
from humanseg.ui.segment_tab import SegmentTab  # noqa: E402
from humanseg.ui.site_tab import SiteTab  # noqa: E402
from humanseg.ui.train_tab import TrainTab  # noqa: E402

__all__ = ["APP", "CSS", "DEFAULT_MAX_FILE_SIZE", "TRAINING", "build_demo", "launch"]

DEFAULT_MAX_FILE_SIZE = "1gb"

INTRO = """# humanseg: people segmentation for one fixed camera
Build a training set for *your* camera from its empty scene and some people, train a small network on it, and
compare it with classic background subtraction and generic person models on your own clips."""

CSS = """
#site-info p, #seg-note p {margin: 0.2em 0;}
.hs-step h3 {margin-top: 0.4em;}
"""


def _header(page: Page) -> None:
    """The site picker and the site's summary take part in the overview like a tab."""

    def refresh(site: ws.Site | None) -> dict:
        sites = ws.list_sites(APP.workspace)
        note = rules.example_note(APP.workspace)
        if site is None:
            info = "No site yet: type a name (e.g. `lobby-cam2`) and click **Create site**. " + note
            return {page.site_dd: gr.update(choices=sites, value=None), page.site_info: info}
        info = "\n\n".join([rules.site_summary(site)] + ([note] if note else []))
        return {page.site_dd: gr.update(choices=sites, value=site.name), page.site_info: info}

    page.add([page.site_dd, page.site_info], refresh)


def build_demo() -> gr.Blocks:
    """The page: site picker, three tabs, and their events."""
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
            with gr.Tab("1. Site and dataset", id="site"):
                site_tab = SiteTab()
            with gr.Tab("2. Train", id="train"):
                train_tab = TrainTab()
            with gr.Tab("3. Segment", id="segment"):
                segment_tab = SegmentTab()

        page = Page(demo, site_dd, site_info)
        _header(page)
        page.add(_site_outputs(site_tab), site_tab.refresh)
        page.add([train_tab.dataset, train_tab.resume_run, train_tab.val_existing, *train_tab.view], train_tab.refresh)
        page.add([segment_tab.models], segment_tab.refresh)
        site_tab.wire(page)
        runs_ended = train_tab.wire(page)
        segment_tab.wire(page, runs_ended)

        def on_load() -> dict:
            sites = ws.list_sites(APP.workspace)
            chosen = rules.EXAMPLE_SITE if rules.EXAMPLE_SITE in sites else (sites[0] if sites else None)
            updates = page.overview(chosen)
            for load in page.loaders:
                updates.update(load())
            return updates

        def create_site(name: str) -> dict:
            """Create a site folder (or select it if it exists)."""
            site = ws.open_site(APP.workspace, ws.check_name(name, "site name"), create=True)
            return page.overview(site.name)

        demo.load(on_load, None, [*page.outputs, *page.load_outputs], api_name="load")
        create_btn.click(user_errors(create_site), [new_site], page.outputs, api_name="create_site")
        site_dd.input(user_errors(page.overview), [site_dd], page.outputs, api_name="site_overview")
    return demo


def _site_outputs(tab: SiteTab) -> list:
    """The Site tab's components that show what the site has, in the order API callers read them."""
    return [tab.plates_gallery, tab.harvest_clip, tab.sil_set, *tab.sil_outputs, tab.build_sets,
            tab.dataset_preview, tab.dataset_info]  # fmt: skip


def launch(
    demo: gr.Blocks,
    workspace: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int | None = 7860,
    max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
    example: bool = True,
    **kwargs: Any,
) -> Any:
    """Point the app at ``workspace`` and start ``demo``'s server (``kwargs`` go to ``demo.launch``, e.g.
    ``prevent_thread_lock=True`` for tests). Files are served only from the workspace and temp folders; no
    share link is ever made. ``example``: preload the example clip in the Segment tab."""
    APP.workspace = ws.resolve_workspace(workspace)
    APP.example = example
    if example:
        rules.example_clip(APP.workspace)  # cut once here, before the first page asks for it
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
