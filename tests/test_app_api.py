"""The app end to end through its HTTP API (gradio_client), as a browser would drive it.

One app is launched per session (tests/app_fixtures.py) with an empty temporary workspace; the tests build on
each other in file order where noted (site -> dataset -> training -> segmentation with the trained model).
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.register_assert_rewrite("app_fixtures")  # before the import below (it is also loaded as a plugin)

from app_fixtures import CLIP_FRAMES, CLIP_SIZE, array_of  # noqa: E402
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytest_plugins = ["app_fixtures"]
# Gradio's queue calls a pandas option that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

SITE = "testsite"


def value(output):
    """The value of an output that the app returns as an update (e.g. made visible)."""
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


def overview(result: tuple) -> dict:
    """Name the outputs of the endpoints that return the site overview: the header, then each tab's own outputs
    in the order the tabs add them to the page (humanseg.ui.build_demo); State components are not returned."""
    names = [
        "site", "site_info", "plates", "harvest_clip", "sil_set", "sil_gallery", "sil_selected", "sil_page",
        "sil_info", "build_sets", "preview", "dataset_info", "train_dataset", "resume_run", "val_existing",
        "train_status", "train_plot", "train_log", "train_ckpt", "models",
    ]  # fmt: skip
    out = dict(zip(names, result[: len(names)], strict=True))
    if len(result) > len(names):
        out["status"] = result[len(names)]
    return out


@pytest.fixture(scope="module")
def site(client, app_server, inputs) -> dict:
    """A site with a plate, its clip, an actor silhouette set and a harvested set (built through the API)."""
    created = overview(client.predict("testsite", api_name="/create_site"))
    assert created["site"]["value"] == SITE
    gallery, status = client.predict(SITE, [handle_file(inputs.plate)], api_name="/add_backgrounds")
    assert len(gallery) == 1 and "1 plate" in status
    est = overview(client.predict(SITE, handle_file(inputs.site_clip), 1, False, api_name="/estimate_plates"))
    actor = overview(
        client.predict(
            SITE, handle_file(inputs.actor_clip), handle_file(inputs.actor_masks_zip), "masks", 1,
            api_name="/extract_silhouettes",
        )
    )  # fmt: skip
    return {"estimate": est, "actor": actor}


def test_site_plates_and_silhouettes_are_saved_in_the_workspace(site, app_server, inputs):
    root = app_server.workspace / SITE
    est, actor = site["estimate"], site["actor"]
    # The uploaded plate plus one estimated from the clip; the estimate matches the true empty scene.
    plates = sorted((root / "plates").glob("*.png"))
    assert [p.name for p in plates] == ["plate.png", "site-plate000.png"]
    estimated, truth = array_of(plates[1]).astype(int), array_of(inputs.plate).astype(int)
    assert estimated.shape == (*CLIP_SIZE, 3)
    assert np.abs(estimated - truth).mean() < 4.0  # grey levels; the clip adds noise and H.264 loss
    assert len(est["plates"]) == 2 and "Estimated 1 plate" in est["status"]
    assert (root / "clips" / "site.mp4").is_file()
    # The actor clip + its masks became a CDnet sequence; one silhouette per frame where the actor is whole.
    assert actor["sil_set"]["value"] == "actor-masks"
    index = json.loads((root / "silhouettes" / "actor-masks" / "silhouettes.json").read_text())["items"]
    assert len(index) == len(actor["sil_gallery"]) >= 5
    assert all(it["height"] == 70 and it["method"] == "masks" for it in index)  # the figure is 70 px tall
    assert f"{len(index)} silhouettes extracted" in actor["status"]


def test_reject_and_accept_silhouettes(client, site, app_server):
    folder = app_server.workspace / SITE / "silhouettes" / "actor-masks"
    names = [it["name"] for it in json.loads((folder / "silhouettes.json").read_text())["items"]]
    gallery, _, page, caption, status = client.predict(
        SITE, "actor-masks", names[:2], 1, api_name="/reject_silhouettes"
    )
    assert "Rejected 2" in status and page == 1 and f"{len(names)} silhouettes, 2 rejected" in caption
    items = json.loads((folder / "silhouettes.json").read_text())["items"]
    assert [it["accepted"] for it in items[:3]] == [False, False, True]
    assert [g["caption"].startswith("REJECTED") for g in gallery[:3]] == [True, True, False]
    *_, status = client.predict(SITE, "actor-masks", names[1:2], 1, api_name="/accept_silhouettes")
    assert "Accepted 1" in status
    items = json.loads((folder / "silhouettes.json").read_text())["items"]
    assert [it["accepted"] for it in items[:2]] == [False, True]


def test_harvest_from_the_site_clip(client, site, app_server):
    result = overview(client.predict(SITE, "site.mp4", "plate", 1, api_name="/harvest_silhouettes"))
    assert result["sil_set"]["value"] == "site-plate"
    index = json.loads((app_server.workspace / SITE / "silhouettes" / "site-plate" / "silhouettes.json").read_text())
    heights = [it["height"] for it in index["items"]]
    # The two walkers are 50 and 36 px tall: the plate method finds both. Where they cross they merge into
    # one taller blob (what the reject button is for), so only most silhouettes match a walker.
    near = [h for h in heights if min(abs(h - 50), abs(h - 36)) <= 3]
    assert any(abs(h - 50) <= 3 for h in heights) and any(abs(h - 36) <= 3 for h in heights)
    assert len(near) >= 0.7 * len(heights)
    assert "plate plate.png" in result["status"]


@pytest.fixture(scope="module")
def dataset(client, site, app_server) -> Path:
    result = overview(client.predict(SITE, "tiny", ["actor-masks"], 8, 48, 64, 0, "auto", 0, api_name="/build_dataset"))
    assert result["train_dataset"]["value"] == "tiny"
    return app_server.workspace / SITE / "datasets" / "tiny"


def test_build_dataset(dataset, client):
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["count"] == 8 and manifest["size"] == [48, 64]
    assert manifest["params"]["composite"]["shift_px"] == 0  # camera shake 0: composites registered with their plate
    # 'auto': the site's own perspective, fitted from the plate-difference blobs of its clip (walkers 50 and 36 px).
    assert manifest["params"]["perspective"]["origin"].startswith("fit")
    # The network sees this camera's whole frame, so the user's 48x64 composites are whole plates, not windows.
    assert manifest["working_scale"] is None and manifest["tiled"] is False
    assert manifest["splits"]["train"] + manifest["splits"]["val"] == 8
    for sample in manifest["samples"]:
        assert array_of(dataset / sample["image"]).shape == (48, 64, 3)
        mask = array_of(dataset / sample["mask"])
        assert mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 255}
    assert (dataset / "preview.png").is_file()
    with pytest.raises(AppError, match="bad perspective 'tall'"):
        client.predict(SITE, "tiny2", ["actor-masks"], 8, 48, 64, 0, "tall", 0, api_name="/build_dataset")
    assert not (dataset.parent / "tiny2").exists()
    # A second build under the same name is refused with a message (the finished one is kept).
    with pytest.raises(AppError, match="already exists"):
        client.predict(SITE, "tiny", ["actor-masks"], 8, 48, 64, 0, "auto", 0, api_name="/build_dataset")


def test_plates_without_people_need_the_mediapipe_model(client, site, inputs, app_server, tmp_path, monkeypatch):
    monkeypatch.setenv("HUMANSEG_MODELS", str(tmp_path / "no_models"))  # the app runs in this process
    before = sorted(p.name for p in (app_server.workspace / SITE / "plates").iterdir())
    with pytest.raises(AppError, match="models fetch mediapipe"):
        client.predict(SITE, handle_file(inputs.site_clip), 1, True, api_name="/estimate_plates")
    assert sorted(p.name for p in (app_server.workspace / SITE / "plates").iterdir()) == before


def test_a_site_is_one_camera_view(client, site, tmp_path):
    other = tmp_path / "other-camera.png"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(other)
    with pytest.raises(AppError, match="one camera view"):
        client.predict(SITE, [handle_file(other)], api_name="/add_backgrounds")
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    with pytest.raises(AppError, match="fake.png: not an image"):
        client.predict(SITE, [handle_file(fake)], api_name="/add_backgrounds")


def test_build_needs_plates_and_silhouettes(client, inputs):
    client.predict("bare", api_name="/create_site")
    with pytest.raises(AppError, match="no plates yet"):
        client.predict("bare", "", [], 8, 48, 64, 0, "auto", 0, api_name="/build_dataset")
    client.predict("bare", [handle_file(inputs.plate)], api_name="/add_backgrounds")
    with pytest.raises(AppError, match="No silhouettes yet"):
        client.predict("bare", "", [], 8, 48, 64, 0, "auto", 0, api_name="/build_dataset")
    client.predict(SITE, api_name="/site_overview")  # back to the main test site in this session


def _wait_running(app_module, timeout: float = 30.0) -> None:
    t0 = time.monotonic()
    while not (app_module.TRAINING.running and app_module.TRAINING.events):
        assert time.monotonic() - t0 < timeout, "training did not start"
        time.sleep(0.1)


def newest_run(workspace: Path) -> Path:
    return max((workspace / SITE / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def trained(client, dataset, app_server, inputs) -> tuple[Path, dict, str]:
    """The run folder of a 1-epoch segnet-tiny training, its curves and log."""
    status, plot, log, ckpt = client.predict(
        SITE, "tiny", "segnet-tiny", 0, 1, 4, handle_file(inputs.site_seq_zip), [], api_name="/train"
    )
    assert "epoch limit reached" in status, status
    assert ckpt is not None and Path(ckpt).name == "best.pt"  # the download the page offers
    return newest_run(app_server.workspace), plot, log


def test_train_one_epoch(trained, app_server):
    from humanseg.checkpoint import read_checkpoint
    from humanseg.models import PRESETS

    run, plot, log = trained
    state = read_checkpoint(run / "best.pt")
    assert state["model_config"]["width"] == PRESETS["segnet-tiny"].width
    spe = int(re.search(r"(\d+) steps per epoch", log).group(1))
    assert spe >= 1 and read_checkpoint(run / "last.pt")["step"] == spe  # exactly one epoch
    assert plot["columns"] == ["step", "value", "curve"]
    curves = {row[2] for row in plot["data"]}
    assert curves == {"training loss", "validation F"}
    assert "start on cpu" in log or "start on cuda" in log
    # The uploaded real clip with ground truth was scored at each validation and kept for the site.
    assert re.search(r"validation at step \d+: .*real_f \d\.\d{3}", log), log
    assert (app_server.workspace / SITE / "validation" / "site_seq" / "groundtruth").is_dir()
    assert json.loads((run / "config.json").read_text())["val_sequences"][0].endswith("validation/site_seq")
    assert (run / "last.pt").is_file() and run.parent.name == "runs"


def test_one_training_at_a_time_stop_and_resume(client, trained, app_server):
    app = app_server.module
    job = client.submit(SITE, "tiny", "segnet-tiny", 10, 0, 4, None, [], api_name="/train")
    _wait_running(app)
    with pytest.raises(AppError, match="already running"):
        client.predict(SITE, "tiny", "segnet-tiny", 0, 1, 4, None, [], api_name="/train")
    assert client.predict(api_name="/stop_training").startswith("Stopping")
    status, _, log, ckpt = job.result(timeout=60)
    assert "stopped on request" in status and ckpt is not None
    run = newest_run(app_server.workspace).name
    steps_before = app.TRAINING.events[-1].step
    assert run in overview(client.predict(SITE, api_name="/site_overview"))["resume_run"]["choices"][-1]
    status, _, log, _ = client.predict(SITE, run, 0, 1, api_name="/resume_training")
    assert "resumed at step" in log and "epoch limit reached" in status
    assert app.TRAINING.events[-1].step > steps_before


def test_train_tab_shows_the_last_run_from_its_files(client, trained, app_server):
    """After a restart the in-memory job is gone; the Train tab rebuilds the view from the run folder."""
    app_server.module.TRAINING.wait(30)
    view = overview(client.predict(SITE, api_name="/site_overview"))
    run = newest_run(app_server.workspace)
    assert view["train_status"].startswith(f"Last run **{run.name}**")
    history = json.loads((run / "history.json").read_text())
    losses = [row[1] for row in view["train_plot"]["data"] if row[2] == "training loss"]
    assert losses == pytest.approx([h["loss"] for h in history if h.get("loss") is not None])
    assert "done at step" in view["train_log"] and (run / "app-log.txt").is_file()
    assert Path(view["train_ckpt"]).name == "best.pt"


def test_command_line_defaults_are_safe():
    import app

    args = app.parse_args([], environ={})
    assert (args.host, args.port, args.max_file_size) == ("127.0.0.1", 7860, "1gb")
    assert app.parse_args(["--host", "0.0.0.0", "--port", "8080"], environ={}).port == 8080


def test_gradio_server_variables_apply_unless_flags_are_given(capsys):
    import app

    env = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "9001"}
    args = app.parse_args([], environ=env)
    assert (args.host, args.port) == ("0.0.0.0", 9001)
    args = app.parse_args(["--host", "127.0.0.1", "--port", "8080"], environ=env)
    assert (args.host, args.port) == ("127.0.0.1", 8080)
    assert app.parse_args(["--port", "8080"], environ={"GRADIO_SERVER_NAME": "10.0.0.2"}).host == "10.0.0.2"
    with pytest.raises(SystemExit):
        app.parse_args([], environ={"GRADIO_SERVER_PORT": "http"})
    assert "GRADIO_SERVER_PORT='http' is not a port number" in capsys.readouterr().err


def _decode(video: str | dict) -> list[np.ndarray]:
    """Frames of a returned video (a path, or a {"video": path} dict in some client versions); must be H.264."""
    import av

    path = video["video"] if isinstance(video, dict) else video
    with av.open(path) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_segment_two_baselines_with_ground_truth(client, site, inputs):
    sbs, method_dd, overlay, mask, anon, counts, heat, files, summary, metrics, chart, plate0, plate1 = client.predict(
        SITE, handle_file(inputs.site_clip), [], ["mog2", "plate-diff"], 100, handle_file(inputs.site_gt_zip),
        "blur", "3", api_name="/segment",
    )  # fmt: skip
    metrics, chart, anon = value(metrics), value(chart), value(anon)
    # The plate view (the plate followed the site by default): nothing for mog2, the method shown first; for
    # plate-diff its plate as captured (the uploaded plate, bit for bit) and as it stood after the last frame.
    assert plate0 is None and plate1 is None
    assert "plate-diff: the plate followed the site (update time 3.5 s)" in summary
    *_, captured, end = client.predict("plate-diff", api_name="/show_method")
    assert Path(captured).name == "plate-diff_plate_captured.png" and Path(end).name == "plate-diff_plate_end.png"
    assert np.array_equal(array_of(captured), array_of(inputs.plate))
    assert np.abs(array_of(end).astype(int) - array_of(inputs.plate)).mean() < 4.0  # the scene did not change
    frames = _decode(sbs)
    h, w = CLIP_SIZE
    assert len(frames) == CLIP_FRAMES
    # input | mog2 | plate-diff, each 160 px wide under an 18 px caption bar
    assert frames[0].shape == (h + 18, 3 * w, 3)
    assert method_dd["choices"] == [["mog2", "mog2"], ["plate-diff", "plate-diff"]]
    assert len(_decode(overlay)) == len(_decode(mask)) == len(_decode(anon)) == CLIP_FRAMES
    assert Path(anon).name == "mog2_anonymised.mp4"
    # The count chart and the occupancy heatmap of the method shown (mog2), and their raw files to download.
    assert Path(counts).name == "mog2_counts.png" and Path(heat).name == "mog2_occupancy.png"
    assert Image.open(heat).size[0] == CLIP_SIZE[1]  # drawn at the clip's own width
    for name in ("mog2_anonymised.mp4", "plate-diff_counts.csv", "plate-diff_occupancy.npy"):
        assert any(Path(f).name == name for f in files), name
    csv_file = next(f for f in files if Path(f).name == "plate-diff_counts.csv")
    lines = Path(csv_file).read_text().splitlines()
    assert lines[0] == "frame,time_s,count,person_pixels" and len(lines) == 1 + CLIP_FRAMES
    assert lines[2].startswith("1,0.100,")  # frame 1 of the 10 fps clip
    npy = next(f for f in files if Path(f).name == "plate-diff_occupancy.npy")
    occupancy = np.load(npy)
    assert occupancy.shape == CLIP_SIZE and 0 < occupancy.max() <= 1.0
    zips = [f for f in files if f.endswith("_masks.zip")]
    assert len(zips) == 2
    with zipfile.ZipFile(zips[0]) as zf:
        names = sorted(zf.namelist())
        assert len(names) == CLIP_FRAMES
        first = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(zf.open(names[5])))
        assert set(np.unique(first)) <= {0, 255} and (first == 255).any()
    assert "| mog2 |" in summary and "ms/frame" in summary and "people per frame (mean / max)" in summary
    assert "plate-diff used the plate plate.png" in summary
    # CDnet table: both methods scored on the 20 labelled frames; plate-diff with the true plate is accurate.
    rows = {line.split("|")[2].strip(): line for line in metrics.splitlines() if line.startswith("| site |")}
    assert set(rows) == {"mog2", "plate-diff"}
    f_plate = float(rows["plate-diff"].split("|")[4])
    assert f_plate > 0.8
    assert Path(chart).is_file()


def test_segment_with_the_trained_model(client, trained, inputs):
    model_id = f"{SITE}/{trained[0].name}"
    models = overview(client.predict(SITE, api_name="/site_overview"))["models"]["choices"]
    assert [model_id, model_id] in [[label.split(" ")[0], value] for label, value in models]
    sbs, method_dd, *rest = client.predict(
        SITE, handle_file(inputs.site_clip), [model_id], ["mog2"], 5, None, "off", None, False, 3.5,
        api_name="/segment",
    )  # fmt: skip
    assert rest[-2:] == [None, None]  # the plate fixed: no plate view for the site model shown first
    frames = _decode(sbs)
    assert len(frames) == 5 and frames[0].shape[1] == 3 * CLIP_SIZE[1]
    anon, metrics, chart = rest[2], rest[7], rest[8]
    assert anon["visible"] is False and anon["value"] is None  # anonymising was off
    assert metrics["visible"] is False and chart["visible"] is False  # no ground truth: no metrics shown
    assert [c[0] for c in method_dd["choices"]] == [f"site:{model_id}", "mog2"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("text_file", "not a readable video"),
        ("zero_frames", "zero frames"),
    ],
)
def test_bad_clips_are_explained_and_the_app_keeps_serving(client, inputs, bad, message):
    with pytest.raises(AppError, match=message):
        client.predict(
            SITE, handle_file(getattr(inputs, bad)), [], ["mog2"], 10, None, "off", None, api_name="/segment"
        )
    sbs, *_ = client.predict(
        SITE, handle_file(inputs.site_clip), [], ["mog2"], 3, None, "off", None, api_name="/segment"
    )
    assert len(_decode(sbs)) == 3


def test_bad_zips_and_missing_choices_are_explained(client, inputs, app_server):
    outputs = app_server.workspace / SITE / "outputs"
    before = sorted(outputs.iterdir())
    with pytest.raises(AppError, match="empty zip"):
        client.predict(
            SITE,
            handle_file(inputs.site_clip),
            [],
            ["mog2"],
            10,
            handle_file(inputs.empty_zip),
            "off",
            None,
            api_name="/segment",
        )
    assert sorted(outputs.iterdir()) == before  # the failed run left no output folder behind
    with pytest.raises(AppError, match=r"Margin must be a whole number >= 0, got '-2'"):
        client.predict(SITE, handle_file(inputs.site_clip), [], ["mog2"], 3, None, "blur", "-2", api_name="/segment")
    with pytest.raises(AppError, match="Pick at least one method"):
        client.predict(SITE, handle_file(inputs.site_clip), [], [], 10, None, "off", None, api_name="/segment")
    for bad, message in ((None, "Plate update time must be a number of seconds >= 0, got None"),
                         (-1, "less than minimum value 0")):  # fmt: skip
        with pytest.raises(AppError, match=message):
            client.predict(
                SITE, handle_file(inputs.site_clip), [], ["plate-diff"], 3, None, "off", None, True, bad,
                api_name="/segment",
            )  # fmt: skip
    with pytest.raises(AppError, match="needs the clip's masks"):
        client.predict(SITE, handle_file(inputs.actor_clip), None, "masks", 1, api_name="/extract_silhouettes")
    with pytest.raises(AppError, match="not a readable video"):
        client.predict(SITE, handle_file(inputs.text_file), 1, False, api_name="/estimate_plates")
