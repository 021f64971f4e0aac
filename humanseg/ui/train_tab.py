"""Tab 2, train: a dataset and a model preset, a time budget or epochs; live loss and validation-F curve, stop,
resume. The run itself is :class:`humanseg.training_job.TrainingJob`; this module lays out the tab and streams the
job's state to it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from humanseg import site as rules
from humanseg import training_job as jobs
from humanseg import workspace as ws
from humanseg.models import DEFAULT_PRESET, PRESETS
from humanseg.ui.common import (
    APP,
    FILE_H,
    PROGRESS,
    TRAINING,
    Page,
    current_site,
    fail,
    positive_int,
    upload_path,
    user_errors,
)

POLL_S = 0.5  # how often the page refreshes from the training thread


def preset_table() -> str:
    """The model presets as a markdown table."""
    lines = ["| preset | network | width | inputs | input size (HxW) |", "|---|---|---:|---|---|"]
    for name, cfg in PRESETS.items():
        lines.append(
            f"| {name} | {cfg.arch} | {cfg.width:g} | {cfg.inputs} | {cfg.input_size[0]}x{cfg.input_size[1]} |"
        )
    return "\n".join(lines)


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


class TrainTab:
    """The components of tab 2 (built in the page's Blocks context) and their events."""

    def __init__(self) -> None:
        gr.Markdown(f"Training runs on: **{jobs.device_text()}**")
        with gr.Row():
            with gr.Column():
                self.dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True)
                self.preset = gr.Dropdown(label="Model preset", choices=list(PRESETS), value=DEFAULT_PRESET)
                with gr.Row():
                    self.minutes = gr.Number(label="Time budget, minutes (0: none)", value=10, minimum=0)
                    self.epochs = gr.Number(label="Epochs (0: none)", value=0, minimum=0, precision=0)
                    self.batch = gr.Number(label="Batch size", value=8, minimum=1, precision=0)
                with gr.Accordion("Validation on a real clip with ground truth (optional)", open=False):
                    self.val_zip = gr.File(
                        label="Zip of a CDnet-layout clip: input/inNNNNNN.jpg + groundtruth/gtNNNNNN.png",
                        file_types=[".zip"], height=FILE_H,
                    )  # fmt: skip
                    self.val_existing = gr.Dropdown(
                        label="...or the site's validation clips", choices=[], multiselect=True, allow_custom_value=True
                    )
                with gr.Row():
                    self.train_btn = gr.Button("Start training", variant="primary")
                    self.stop_btn = gr.Button("Stop", variant="stop")
                self.stop_msg = gr.Markdown()
                with gr.Accordion("Resume a stopped run", open=False):
                    self.resume_run = gr.Dropdown(label="Run", choices=[], allow_custom_value=True)
                    with gr.Row():
                        self.resume_minutes = gr.Number(label="Minutes more", value=5, minimum=0)
                        self.resume_epochs = gr.Number(label="Epochs more", value=0, minimum=0, precision=0)
                    self.resume_btn = gr.Button("Resume")
                with gr.Accordion("Model presets", open=False):
                    gr.Markdown(preset_table())
            with gr.Column():
                self.status = gr.Markdown("No training yet.")
                self.plot = gr.LinePlot(
                    x="step", y="value", color="curve", title="Training loss and validation F",
                    x_title="step", y_title="loss / F", height=300,
                )  # fmt: skip
                self.log = gr.Textbox(label="Log", lines=10, max_lines=10, autoscroll=True, interactive=False)
                self.ckpt = gr.File(label="Best checkpoint (when the run ends)", interactive=False, height=FILE_H)
        self.view = [self.status, self.plot, self.log, self.ckpt]

    # -- what the tab shows for a site

    def refresh(self, site: ws.Site | None) -> dict:
        """Datasets, resumable runs and validation clips of ``site``, and its training view: nothing new while a
        training runs (the running one streams), else the site's last run from its files."""
        if site is None:
            view = (f"No site selected. Trains on: {jobs.device_text()}.", jobs.curves_frame([]), "", None)
            updates = {
                self.dataset: gr.update(choices=[], value=None),
                self.resume_run: gr.update(choices=[], value=None),
                self.val_existing: gr.update(choices=[], value=[]),
            }
        else:
            latest = rules.latest_dataset(site)
            view = jobs.last_run(site)
            updates = {
                self.dataset: gr.update(
                    choices=[d.name for d in site.datasets()], value=latest.name if latest else None
                ),
                self.resume_run: gr.update(choices=rules.resumable_runs(site), value=None),
                self.val_existing: gr.update(choices=[v.name for v in site.validation_sequences()], value=[]),
            }
        if TRAINING.running:
            view = (gr.update(),) * 4
        return updates | dict(zip(self.view, view, strict=True))

    # -- handlers

    @staticmethod
    def watch(progress: gr.Progress = PROGRESS) -> Iterator[tuple]:
        """On page load: follow a training that is running (e.g. started before the browser was closed).
        With none running the page keeps the site's last run, which the site overview shows."""
        if not TRAINING.running:
            yield gr.update(), gr.update(), gr.update(), gr.update()
            return
        try:
            yield from follow_training(progress)
        except gr.Error:
            return  # a failure of an earlier run was shown to whoever started it; the status says it too

    @staticmethod
    def start(
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
        site = current_site(site_name)
        jobs.start_training(
            TRAINING, site, dataset_name, preset, minutes=float(minutes or 0), epochs=int(epochs or 0),
            batch_size=positive_int(batch_size, "Batch size"),
            val_sequences=lambda: rules.validation_sequences(site, upload_path(val_zip, "validation zip"), val_names),
        )  # fmt: skip
        yield from follow_training(progress)

    @staticmethod
    def resume(
        site_name: str, run_name: str | None, minutes: float, epochs: float, progress: gr.Progress = PROGRESS
    ) -> Iterator[tuple]:
        """Continue a stopped run from its last.pt for ``minutes`` more and/or ``epochs`` more."""
        site = current_site(site_name)
        jobs.resume_training(TRAINING, site, run_name, minutes=float(minutes or 0), epochs=int(epochs or 0))
        yield from follow_training(progress)

    @staticmethod
    def stop() -> str:
        """Ask the running training to stop after its current step (last.pt is saved; it can be resumed)."""
        return TRAINING.stop()

    def after_run(self, site_name: str | None) -> dict:
        """The resumable runs after a training ended (the Segment tab refreshes its models itself)."""
        runs = rules.resumable_runs(current_site(site_name)) if site_name in ws.list_sites(APP.workspace) else []
        return {self.resume_run: gr.update(choices=runs)}

    # -- events

    def wire(self, page: Page) -> dict:
        """Connect the tab; returns the events of a run ending (finished or stopped) by endpoint name, for other
        tabs to follow.

        Training streams from a background thread: no queue slot is held per run (a second start is refused with
        a message, not queued), and the progress bar sits on the status line so the plot and log stay visible."""
        page.demo.load(
            self.watch, None, self.view, concurrency_limit=None, show_progress_on=[self.status],
            api_name="training_status",
        )  # fmt: skip
        inputs = [page.site_dd, self.dataset, self.preset, self.minutes, self.epochs, self.batch, self.val_zip,
                  self.val_existing]  # fmt: skip
        started = self.train_btn.click(
            user_errors(self.start), inputs, self.view, api_name="train", concurrency_limit=None,
            show_progress_on=[self.status],
        )  # fmt: skip
        resumed = self.resume_btn.click(
            user_errors(self.resume), [page.site_dd, self.resume_run, self.resume_minutes, self.resume_epochs],
            self.view, api_name="resume_training", concurrency_limit=None, show_progress_on=[self.status],
        )  # fmt: skip
        ended = {"train": started, "resume_training": resumed}
        for name, event in ended.items():
            event.then(self.after_run, [page.site_dd], [self.resume_run], api_name=f"resumable_runs_after_{name}")
        self.stop_btn.click(self.stop, None, [self.stop_msg], api_name="stop_training", concurrency_limit=None)
        return ended
