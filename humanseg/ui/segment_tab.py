"""Tab 3, segment: drop a clip, pick trained models and baselines; side-by-side video, overlay/mask videos, an
anonymised video on request, each method's people count chart and occupancy heatmap, PNG zips, CDnet metrics
when ground truth is given, and for a site model or plate-diff whose plate follows the site, the plate as captured
beside the plate at the end of the clip. The run is :func:`humanseg.site.segment_clip`.

Or a live camera: a stream URL segmented until Stop, with a preview about twice a second and rotating files
(:func:`humanseg.stream.segment_live`). The URL stays in the browser session that typed it; what the page shows
of it is redacted (no credentials), and the Stop button ends only that session's run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from humanseg import site as rules
from humanseg import workspace as ws
from humanseg.anonymise import STYLES
from humanseg.maintained_plate import DEFAULT_UPDATE_S
from humanseg.segment import MethodOutput, PlateFollowing
from humanseg.ui.common import APP, FILE_H, PROGRESS, Page, current_site, fail, positive_int, upload_path, user_errors

if TYPE_CHECKING:
    from humanseg.stream import LivePreview, LiveResult


def baseline_choices() -> list[tuple[str, str]]:
    """(description, name) of every method that needs no site training."""
    from humanseg.segmenters import describe

    return [(f"{n}: {describe(n)}", n) for n in rules.baselines()]


NO_ANONYMISE = "off"
PREVIEW_S = 0.5  # the live preview's refresh interval
PREVIEW_WIDTH = 480  # px per tile of the live preview
# Per browser session (Gradio's session hash): that session's live run's stop event. Nothing else of a run is
# shared between sessions, the URL included.
_LIVE_STOPS: dict[str, threading.Event] = {}
# One method's outputs, as the tab shows them.
VIEWS = ("overlay", "mask", "anonymised", "counts", "occupancy", "plate_captured", "plate_end")


def _method_views(state: dict, method: str | None) -> tuple[str | None, ...]:
    """The files of one method (:data:`VIEWS`; None for one not written)."""
    if not state or not method or method not in state:
        return (None,) * len(VIEWS)
    return tuple(state[method].get(view) for view in VIEWS)


def _views_of(method: MethodOutput) -> dict[str, str | None]:
    stats = method.stats
    files = (method.overlay_video, method.mask_video, method.anonymised_video, stats and stats.count_chart,
             stats and stats.heatmap_png, method.plate_captured, method.plate_end)  # fmt: skip
    return {view: str(f) if f else None for view, f in zip(VIEWS, files, strict=True)}


class SegmentTab:
    """The components of tab 3 (built in the page's Blocks context) and their events."""

    def __init__(self) -> None:
        with gr.Row():
            with gr.Column(scale=2):
                self.video = gr.Video(
                    label="Clip: drag a video here", sources=["upload"], height=300, elem_id="seg-video"
                )
                with gr.Row():
                    self.url = gr.Textbox(
                        label="Or a live camera", scale=4, elem_id="live-url",
                        placeholder="rtsp://user:pass@camera/stream, http(s)://, udp://, tcp:// URL, or /dev/video0",
                    )  # fmt: skip
                    self.live_btn = gr.Button("Start live", scale=1, min_width=90, elem_id="live-start")
                    self.stop_btn = gr.Button("Stop", variant="stop", scale=1, min_width=90, elem_id="live-stop")
                self.note = gr.Markdown(elem_id="seg-note")
                self.models = gr.CheckboxGroup(
                    label="Trained models (this workspace)", choices=[],
                    info="Models trained in tab 2 appear here (site/run).",
                )  # fmt: skip
                self.baselines = gr.CheckboxGroup(
                    label="Baselines", choices=baseline_choices(), value=["mog2", "plate-diff"]
                )
                with gr.Row():
                    self.anonymise = gr.Dropdown(
                        label="Anonymised video", choices=[NO_ANONYMISE, *STYLES], value=NO_ANONYMISE,
                        info="Hide people: blur, pixelate, fill with gray, or erase (show the site's plate).",
                        elem_id="seg-anonymise",
                    )  # fmt: skip
                    # A text box, so that "empty" (each person's own margin) differs from 0 (the bare mask).
                    self.margin = gr.Textbox(
                        label="Margin px", placeholder="empty: 10% of each person's height", elem_id="seg-margin"
                    )
                with gr.Row():
                    self.follow_plate = gr.Checkbox(
                        label="Plate follows the site", value=True, elem_id="seg-follow-plate",
                        info="Site models and plate-diff follow light changes and moved objects; off: the captured "
                        "plate as it is.",
                    )  # fmt: skip
                    self.plate_update_s = gr.Number(
                        label="Plate update time, s", value=DEFAULT_UPDATE_S, minimum=0, elem_id="seg-plate-update",
                        info="A moved object that stays is background again within 3x this time.",
                    )  # fmt: skip
                with gr.Row():
                    self.max_frames = gr.Number(
                        label="Max frames (keeps CPU runs short)", value=100, minimum=1, precision=0
                    )
                    self.gt_zip = gr.File(
                        label="Ground truth (optional): zip of groundtruth/gtNNNNNN.png", file_types=[".zip"],
                        height=FILE_H, elem_id="gt-zip",
                    )  # fmt: skip
                self.segment_btn = gr.Button("Segment", variant="primary")
            with gr.Column(scale=3):
                self.live_preview = gr.Image(
                    label="Live: input | each method (caption: name, ms/frame)", type="numpy", interactive=False,
                    visible=False, elem_id="live-preview",
                )  # fmt: skip
                self.live_status = gr.Markdown(elem_id="live-status")
                self.sbs_video = gr.Video(
                    label="Side by side: input | each method (caption: name, ms/frame)", interactive=False, height=320,
                    elem_id="sbs-video",
                )  # fmt: skip
                self.summary = gr.Markdown()
                self.method_dd = gr.Dropdown(label="Method to view", choices=[], allow_custom_value=True)
                with gr.Row():
                    self.overlay_video = gr.Video(label="Overlay", interactive=False, height=220)
                    self.mask_video = gr.Video(label="Mask", interactive=False, height=220)
                    self.anon_video = gr.Video(
                        label="Anonymised", interactive=False, height=220, visible=False, elem_id="anon-video"
                    )
                with gr.Row():
                    self.count_chart = gr.Image(
                        label="People in view", type="filepath", interactive=False, elem_id="count-chart"
                    )
                    self.heatmap = gr.Image(
                        label="Occupancy: share of frames with a person", type="filepath", interactive=False,
                        elem_id="heatmap",
                    )  # fmt: skip
                with gr.Row():
                    self.plate_captured = gr.Image(
                        label="Plate as captured", type="filepath", interactive=False, elem_id="plate-captured"
                    )
                    self.plate_end = gr.Image(
                        label="Plate at the end of the clip (it followed the site)", type="filepath",
                        interactive=False, elem_id="plate-end",
                    )  # fmt: skip
                self.files = gr.File(
                    label="Downloads: videos and PNG mask zips", file_count="multiple", interactive=False
                )
                self.metrics = gr.Markdown(visible=False)
                self.chart = gr.Image(label="F-measure per method", type="filepath", interactive=False, visible=False)
        self.state = gr.State({})

    # -- what the tab shows for a site

    def refresh(self, site: ws.Site | None) -> dict:
        """The trained models of the whole workspace (any site's model can segment any clip)."""
        return {self.models: gr.update(choices=rules.checkpoint_choices(APP.workspace), value=[])}

    def example(self) -> dict:
        """On page load, after the overview: the example clip and the example site's demo model, when installed."""
        updates: dict = {}
        choices = rules.checkpoint_choices(APP.workspace)
        if rules.EXAMPLE_MODEL in [value for _, value in choices]:
            updates[self.models] = gr.update(choices=choices, value=[rules.EXAMPLE_MODEL])
        clip = rules.example_clip(APP.workspace) if APP.example else None
        updates[self.video] = str(clip) if clip is not None else None
        if clip is not None:
            updates[self.note] = (
                f"The example clip ({rules.EXAMPLE_CLIP_FRAMES} frames of OpenCV's vtest.avi) is loaded; drop your own "
                "to replace it."
            )
        else:
            updates[self.note] = rules.example_note(APP.workspace) if APP.example else ""
        return updates

    # -- handlers

    @staticmethod
    def trained_models() -> dict:
        """The workspace's trained models, after a training ended (the selection is kept)."""
        return gr.update(choices=rules.checkpoint_choices(APP.workspace))

    @staticmethod
    def segment(
        site_name: str | None,
        video: Any,
        models: list[str] | None,
        baselines: list[str] | None,
        max_frames: float,
        gt_zip: Any,
        anonymise: str | None,
        margin: str | None,
        follow_plate: bool = True,
        plate_update_s: float | None = DEFAULT_UPDATE_S,
        progress: gr.Progress = PROGRESS,
    ) -> tuple:
        """Run the chosen methods over a clip: side-by-side, overlay and mask videos, an anonymised video (unless
        ``anonymise`` is off), the count chart and occupancy heatmap, PNG zips, metrics with ground truth, and the
        plates (captured, at the end) of the methods whose plate follows the site (``follow_plate``, updated with
        the time constant ``plate_update_s`` seconds)."""
        from humanseg.evaluate import results_markdown

        src = upload_path(video, "video")
        if src is None:
            raise fail("No clip: drag a video (mp4, avi, mkv, webm...) into the box first.")
        n = positive_int(max_frames, "Max frames")
        style = None if anonymise in (None, "", NO_ANONYMISE) else anonymise
        margin_px = None if not (margin or "").strip() else positive_int(margin.strip(), "Margin", minimum=0)
        if plate_update_s is None or not plate_update_s >= 0:
            raise fail(f"Plate update time must be a number of seconds >= 0, got {plate_update_s!r}.")
        following = PlateFollowing(bool(follow_plate), float(plate_update_s))
        site = current_site(site_name) if site_name else None
        run = rules.segment_clip(
            APP.workspace, site, src, list(models or []), list(baselines or []), n,
            upload_path(gt_zip, "ground-truth zip"), stats=True, anonymise=style, margin_px=margin_px, progress=True,
            following=following,
        )  # fmt: skip
        result = run.result
        state = {m.name: _views_of(m) for m in result.methods.values()}
        files = [str(result.side_by_side)] if result.side_by_side else []
        for m in result.methods.values():
            stats = [m.stats.counts_csv, m.stats.heatmap_npy] if m.stats else []
            made = (m.overlay_video, m.mask_video, m.anonymised_video, m.masks_zip, *stats)
            files += [str(p) for p in made if p is not None]
        lines = [
            f"{result.frames} frames of {result.size[0]}x{result.size[1]} in {result.seconds:.1f} s "
            f"({result.frames_per_second:.1f} frames/s, all methods and video writing included). Saved in `{run.out}`.",
            "",
            "| method | ms/frame | frames | people per frame (mean / max) |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {m.name} | {m.ms_per_frame:.1f} | {m.frames} | {m.mean_count or 0:.2f} / {m.max_count} |"
            for m in result.methods.values()
        ]
        if run.note:
            lines += ["", run.note]
        followed = [m.name for m in result.methods.values() if m.plate_end is not None]
        if followed:
            lines += ["", f"{', '.join(followed)}: the plate followed the site (update time {following.update_s:g} s); "
                      "pick a method to see its plate as captured and at the end of the clip."]  # fmt: skip
        metrics_md = results_markdown(run.rows) if run.rows else ""  # metrics and chart stay hidden without them
        first = next(iter(state), None)
        overlay_v, mask_v, anon_v, counts_png, heat_png, plate_start, plate_end = _method_views(state, first)
        return (
            str(result.side_by_side) if result.side_by_side else None,
            gr.update(choices=list(state), value=first),
            overlay_v,
            mask_v,
            gr.update(value=anon_v, visible=style is not None),
            counts_png,
            heat_png,
            files,
            "\n".join(lines),
            gr.update(value=metrics_md, visible=bool(metrics_md)),
            gr.update(value=str(run.chart) if run.chart else None, visible=run.chart is not None),
            plate_start,
            plate_end,
            state,
        )

    @staticmethod
    def live(
        site_name: str | None,
        url: str | None,
        models: list[str] | None,
        baselines: list[str] | None,
        anonymise: str | None,
        margin: str | None,
        request: gr.Request,
    ) -> Iterator[tuple]:
        """Segment a live camera until Stop (or until the stream is lost for good): a preview of the input and
        each method's overlay about twice a second with the running ms/frame, mask and overlay videos (and the
        anonymised one, unless off) in rotating files, listed for download at the end."""
        from humanseg.segmenters import capabilities
        from humanseg.stream import is_stream, redact, segment_live

        source = (url or "").strip()
        if not is_stream(source):
            raise fail(
                f"Not a live stream: {redact(source)!r}. Type an rtsp://, http(s)://, udp:// or tcp:// URL, or a "
                "capture device such as /dev/video0, into the live camera box."
            )
        baselines = list(baselines or [])
        if not models and not baselines:
            raise fail("Pick at least one method: a trained model and/or a baseline.")
        session = request.session_hash or "local"
        if session in _LIVE_STOPS:
            raise fail("A live run is already going on this page: press Stop first.")
        style = None if anonymise in (None, "", NO_ANONYMISE) else anonymise
        margin_px = None if not (margin or "").strip() else positive_int(margin.strip(), "Margin", minimum=0)
        site = current_site(site_name) if site_name else None
        out = ws.unique_path(site.outputs_dir if site else APP.workspace / ".outputs", ws.timestamp_name("live"))
        # As for clips: plate methods and 'erase' get the site's plate of the camera's size, when it has one.
        wants_plate = style == "erase" or any(capabilities(m).takes_plate for m in baselines)
        plate = (lambda size: rules.plate_for(site, size)) if site is not None and wants_plate else None
        trained = rules.trained_segmenters(APP.workspace, list(models or []))
        latest: list[LivePreview] = []  # the newest preview only
        outcome: dict[str, Any] = {}

        def keep(preview: LivePreview) -> None:
            latest[:] = [preview]

        def work() -> None:
            try:
                outcome["result"] = segment_live(
                    source, [*trained, *baselines], out, plate=plate, kinds=("mask", "overlay"), anonymise=style,
                    margin_px=margin_px, stop=stop, on_frame=keep,
                )  # fmt: skip
            except BaseException as err:  # handed to the page below
                outcome["error"] = err

        shown = redact(source)
        stop = _LIVE_STOPS[session] = threading.Event()
        worker = threading.Thread(target=work, name="humanseg-live-app", daemon=True)
        worker.start()
        try:
            yield gr.update(visible=True, value=None), f"Connecting to `{shown}` ...", gr.update()
            while worker.is_alive():
                worker.join(PREVIEW_S)
                if latest:
                    yield _preview_image(latest[-1]), _live_line(shown, latest[-1]), gr.update()
        finally:  # Stop, an error, or the browser went away: the files are finished either way
            stop.set()
            worker.join()
            for seg in trained:
                seg.close()
            _LIVE_STOPS.pop(session, None)
        if "error" in outcome:
            raise outcome["error"]
        result: LiveResult = outcome["result"]
        files = [str(p) for per in result.files.values() for paths in per.values() for p in paths]
        final = _live_line(shown, latest[-1]) if latest else ""
        ended = {"lost": f"The stream was lost: {result.error}", "stopped": "Stopped."}.get(result.stop, result.stop)
        summary = f"{final}\n\n{ended} {len(files)} files in `{Path(result.out_dir).name}` (downloads below)."
        yield (_preview_image(latest[-1]) if latest else gr.update()), summary, files

    @staticmethod
    def stop_live(request: gr.Request) -> None:
        """End this browser session's live run; its current files are finished and renamed."""
        stop = _LIVE_STOPS.get(request.session_hash or "local")
        if stop is not None:
            stop.set()

    @staticmethod
    def show_method(state: dict, method: str | None) -> tuple[str | None, ...]:
        """The overlay, mask and anonymised videos, count chart, heatmap and plates of one method of the last run."""
        return _method_views(state, method)

    # -- events

    def wire(self, page: Page, runs_ended: dict) -> None:
        """Connect the tab; ``runs_ended``: the Train tab's events of a run ending by name (a new model to pick)."""
        page.on_load([self.models, self.video, self.note], self.example)
        self.segment_btn.click(
            user_errors(self.segment),
            [page.site_dd, self.video, self.models, self.baselines, self.max_frames, self.gt_zip, self.anonymise,
             self.margin, self.follow_plate, self.plate_update_s],
            [self.sbs_video, self.method_dd, self.overlay_video, self.mask_video, self.anon_video, self.count_chart,
             self.heatmap, self.files, self.summary, self.metrics, self.chart, self.plate_captured, self.plate_end,
             self.state],
            api_name="segment", show_progress_on=[self.sbs_video],
        )  # fmt: skip
        self.live_btn.click(
            user_errors(self.live),
            [page.site_dd, self.url, self.models, self.baselines, self.anonymise, self.margin],
            [self.live_preview, self.live_status, self.files],
            api_name="live", show_progress="hidden",
        )  # fmt: skip
        self.stop_btn.click(self.stop_live, None, None, api_name="stop_live")
        page.demo.unload(self.stop_live)  # a closed page stops its live run (nobody could stop it otherwise)
        self.method_dd.input(
            self.show_method, [self.state, self.method_dd],
            [self.overlay_video, self.mask_video, self.anon_video, self.count_chart, self.heatmap, self.plate_captured,
             self.plate_end],
            api_name="show_method",
        )  # fmt: skip
        for name, event in runs_ended.items():
            event.then(self.trained_models, None, [self.models], api_name=f"trained_models_after_{name}")


def _preview_image(preview: LivePreview) -> Any:
    """Input | each method's overlay, captioned with its running ms/frame, at most :data:`PREVIEW_WIDTH` px a tile."""
    import cv2

    from humanseg.render import grid

    frame = preview.frame
    h, w = frame.shape[:2]
    if w > PREVIEW_WIDTH:  # grid() scales every tile to the first one's size
        frame = cv2.resize(frame, (PREVIEW_WIDTH, max(2, round(h * PREVIEW_WIDTH / w))), interpolation=cv2.INTER_AREA)
    captions = ["input", *(f"{n}  {preview.ms_per_frame[n]:.0f} ms/frame" for n in preview.overlays)]
    return grid([frame, *preview.overlays.values()], captions)


def _live_line(shown: str, preview: LivePreview) -> str:
    """The running figures of a live run (``shown``: the redacted URL)."""
    rate = preview.frames / preview.seconds if preview.seconds > 0 else 0.0
    methods = ", ".join(f"{n} {ms:.1f} ms/frame" for n, ms in preview.ms_per_frame.items())
    return (
        f"Live from `{shown}`: {preview.frames} frames in {preview.seconds:.0f} s ({rate:.1f} frames/s), "
        f"{preview.skipped} skipped to stay live, {preview.reconnects} reconnection(s). {methods}"
    )
