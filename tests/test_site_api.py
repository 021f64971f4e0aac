"""The Gradio-free site API (humanseg.site, humanseg.training_job): the rules the app applies, without the app."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from humanseg import site as rules
from humanseg import workspace as ws
from humanseg.training_job import TrainingBusy, TrainingJob, curves_frame

ROOT = Path(__file__).resolve().parents[1]


def test_the_library_imports_no_gradio():
    code = (
        "import sys; import humanseg.workspace, humanseg.segment, humanseg.train, humanseg.site, "
        "humanseg.training_job; print('gradio' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def _png(path: Path, size: tuple[int, int], value: int = 0) -> Path:
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def test_a_site_is_one_camera_view(tmp_path):
    site = ws.open_site(tmp_path / "ws", "cam", create=True)
    plates = rules.add_plates(site, [_png(tmp_path / "a.png", (64, 48))])
    assert [p.name for p in plates] == ["a.png"] and rules.plate_sizes(site) == {(64, 48)}
    with pytest.raises(ValueError, match=r"are 32x32 but the site's plates are 64x48: a site is one camera view"):
        rules.add_plates(site, [_png(tmp_path / "b.png", (32, 32))])
    with pytest.raises(ValueError, match="No background image uploaded"):
        rules.add_plates(site, [])
    assert rules.plate_for(site, (64, 48)) == plates[0]
    assert rules.plate_for(site, (32, 32)) is None and rules.plate_for(None, (64, 48)) is None
    rules.remove_plate(site, "a.png")
    assert site.plates() == []
    with pytest.raises(ValueError, match="not found"):
        rules.remove_plate(site, "a.png")


def test_dataset_rules(tmp_path, monkeypatch):
    assert rules.dataset_size(0, 0) is None and rules.dataset_size(48, 64) == (48, 64)
    with pytest.raises(ValueError, match="both height and width"):
        rules.dataset_size(48, 0)
    assert rules.dataset_name(" tiny ") == "tiny" and rules.dataset_name("").startswith("dataset-")
    monkeypatch.setattr("os.cpu_count", lambda: 32)
    assert rules.build_workers(199) == 1 and rules.build_workers(200) == rules.BUILD_MAX_WORKERS
    site = ws.open_site(tmp_path, "cam", create=True)
    with pytest.raises(ValueError, match="no plates yet"):
        rules.build_site_dataset(site, "d", ["s"], 8, None)
    site.plates_dir.mkdir()
    _png(site.plates_dir / "p.png", (64, 48))
    with pytest.raises(ValueError, match="No silhouettes yet"):
        rules.build_site_dataset(site, "d", [], 8, None)
    assert rules.site_summary(site).endswith(
        "Next: extract silhouettes from an actor clip, or harvest them from the site clip."
    )


def test_model_ids_and_resumable_runs(tmp_path):
    site = ws.open_site(tmp_path, "cam", create=True)
    (site.runs_dir / "r1").mkdir(parents=True)
    (site.runs_dir / "r1" / "best.pt").write_bytes(b"x")
    (site.runs_dir / "r1" / "last.pt").write_bytes(b"x")
    (site.runs_dir / "r2").mkdir()
    assert rules.checkpoint_choices(tmp_path) == [("cam/r1 (best.pt)", "cam/r1")]
    assert rules.checkpoint_for(tmp_path, "cam/r1") == site.runs_dir / "r1" / "best.pt"
    with pytest.raises(ValueError, match=r"Trained model 'cam/r2' not found"):
        rules.checkpoint_for(tmp_path, "cam/r2")
    assert rules.resumable_runs(site) == ["r1"]


def test_baselines_leave_out_trained_backends():
    assert rules.trained_backends() == ["segnet"]
    assert "segnet" not in rules.baselines() and {"mog2", "plate-diff"} <= set(rules.baselines())


def test_curves_bin_long_runs():
    rows = [{"step": s, "loss": 1.0} for s in range(1, 1001)] + [{"step": 500, "val_f": 0.7}]
    frame = curves_frame(rows)
    assert list(frame.columns) == ["step", "value", "curve"]
    assert (frame["curve"] == "training loss").sum() <= 300 and frame.iloc[-1].tolist() == [500, 0.7, "validation F"]


def test_one_training_job_at_a_time(tmp_path):
    import threading

    from humanseg.train import TrainEvent

    release = threading.Event()

    def events(stop):
        counts = {"train_samples": 8, "val_samples": 2, "steps_per_epoch": 4}
        yield TrainEvent("start", total_steps=10, device="cpu", metrics=counts)
        release.wait(10)
        yield TrainEvent("done", step=10, epoch=2.5, total_steps=10, device="cpu", message="epoch limit reached")

    job = TrainingJob()
    job.start(events, tmp_path, "test run")
    with pytest.raises(TrainingBusy, match="already running"):
        job.start(events, tmp_path, "second")
    release.set()
    job.wait(10)
    assert not job.running and "finished: epoch limit reached" in job.status()
    log = (tmp_path / "app-log.txt").read_text()
    assert "start on cpu: 8 training / 2 validation images, 4 steps per epoch" in log and "done at step 10" in log
    assert job.stop() == "No training is running."


def test_segment_clip_scores_with_ground_truth_and_uses_the_site_plate(tmp_path):
    from _synthetic_site import Person, write_clip
    from app_fixtures import sequence_to_mp4, zip_dir

    seq = write_clip(tmp_path / "seq", [Person(20, 100, 50, (200, 40, 40), 4.0)], frames=12, size=(120, 160))
    clip = sequence_to_mp4(seq, tmp_path / "walk.mp4")
    gt = zip_dir(seq / "groundtruth", tmp_path / "gt.zip", "groundtruth")
    site = ws.open_site(tmp_path / "ws", "cam", create=True)
    rules.add_plates(site, [seq / "empty_bg000001.png"])

    run = rules.segment_clip(tmp_path / "ws", site, clip, [], ["mog2", "plate-diff"], 10, gt)
    assert run.out.parent == site.outputs_dir and run.result.frames == 10
    assert run.note == "plate-diff used the plate empty_bg000001.png of site cam."
    assert [r["segmenter"] for r in run.rows] == ["mog2", "plate-diff"] and run.rows[1]["f_measure"] > 0.8
    assert run.rows[0]["sequence"] == "walk" and run.rows[0]["frames"] == 10  # the clip cut to max_frames
    saved = json.loads((run.out / "metrics.json").read_text())
    assert [r["f_measure"] for r in saved] == [r["f_measure"] for r in run.rows] and run.chart.is_file()

    plain = rules.segment_clip(tmp_path / "ws", None, clip, [], ["plate-diff"], 4)
    assert plain.rows == [] and plain.chart is None and plain.out.parent == tmp_path / "ws" / ".outputs"
    assert "had no site plate of this clip's size 160x120" in plain.note

    before = sorted(site.outputs_dir.iterdir())
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(ValueError, match="empty zip"):
        rules.segment_clip(tmp_path / "ws", site, clip, [], ["mog2"], 4, empty)
    assert sorted(site.outputs_dir.iterdir()) == before  # a failed run leaves no output folder
    with pytest.raises(ValueError, match="Pick at least one method"):
        rules.segment_clip(tmp_path / "ws", site, clip, [], [], 4)


def test_segment_clip_anonymises_counts_and_maps_occupancy_per_method(tmp_path):
    from _synthetic_site import Person, write_clip
    from app_fixtures import sequence_to_mp4

    from humanseg.video import open_frames, read_image

    seq = write_clip(tmp_path / "seq", [Person(20, 100, 50, (200, 40, 40), 4.0)], frames=8, size=(120, 160))
    clip = sequence_to_mp4(seq, tmp_path / "walk.mp4")
    site = ws.open_site(tmp_path / "ws", "cam", create=True)
    (plate_path,) = rules.add_plates(site, [seq / "empty_bg000001.png"])

    run = rules.segment_clip(
        tmp_path / "ws", site, clip, [], ["plate-diff", "mog2"], 8, stats=True, anonymise="erase", margin_px=4
    )
    for name in ("plate-diff", "mog2"):
        m = run.result.methods[name]
        assert m.anonymised_video == run.out / f"{name}_anonymised.mp4" and m.stats is not None
        assert m.stats.counts_csv.read_text().count("\n") == 1 + 8 and m.stats.heatmap_png.is_file()
    pd = run.result.methods["plate-diff"]
    assert pd.max_count == 1 and pd.mean_count == pytest.approx(1.0)  # the walker, found in every frame
    # Erased with the site's plate: where the walker stood in the last frame, the video shows the empty scene.
    last = list(open_frames(pd.anonymised_video))[-1]
    plate = read_image(plate_path)
    truth = np.asarray(Image.open(sorted((seq / "groundtruth").iterdir())[7]).convert("L")) > 127
    assert np.abs(last[truth].astype(int) - plate[truth].astype(int)).mean() < 8
    heat = np.load(pd.stats.heatmap_npy)
    assert heat.shape == (120, 160) and heat.max() <= 1.0 and heat[truth].mean() > 0.1

    # Erase needs the site's plate unless every method holds one: a clear error, and no folder left behind.
    before = sorted((tmp_path / "ws" / ".outputs").glob("*")) if (tmp_path / "ws" / ".outputs").exists() else []
    with pytest.raises(ValueError, match=r"no site is selected, so there is no plate of this clip's size 160x120"):
        rules.segment_clip(tmp_path / "ws", None, clip, [], ["mog2"], 4, anonymise="erase")
    after = sorted((tmp_path / "ws" / ".outputs").glob("*")) if (tmp_path / "ws" / ".outputs").exists() else []
    assert after == before
    with pytest.raises(ValueError, match="unknown style 'smear'"):
        rules.segment_clip(tmp_path / "ws", site, clip, [], ["mog2"], 4, anonymise="smear")


def test_site_perspective_comes_from_the_latest_measured_dataset(tmp_path):
    from dataset_builder.build import FORMAT, MANIFEST_NAME

    site = ws.open_site(tmp_path, "cam", create=True)
    assert rules.site_perspective(site, (160, 120)) is None and rules.site_perspective(None, (160, 120)) is None
    folder = site.datasets_dir / "d"
    folder.mkdir(parents=True)
    persp = {"slope": 0.5, "intercept": 10.0, "image_height": 60, "origin": "fit"}
    manifest = {"format": FORMAT, "size": [60, 80], "params": {"perspective": persp}}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    height_at = rules.site_perspective(site, (160, 120))  # the same view at twice the size
    assert height_at(100) == pytest.approx(0.5 * 100 + 20.0)
    assert rules.site_perspective(site, (160, 90)) is None  # another aspect ratio: another view
    manifest["params"]["perspective"]["origin"] = "default"  # a generic guess splits no blobs
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert rules.site_perspective(site, (160, 120)) is None


def test_a_sites_dataset_follows_the_scale_of_its_own_clip(tmp_path):
    """The app's build fits the site's person size from its clip and plate (the benchmark's rule): the working
    scale goes into the manifest and the summary says it; a site without people keeps the composites as before."""
    from _synthetic_site import Person, write_clip

    from dataset_builder.silhouettes import extract_silhouettes
    from humanseg.video import H264Writer, open_frames

    seq = write_clip(tmp_path / "seq", [Person(8, 50, 40), Person(70, 66, 40, colour=(40, 60, 210), speed=-2.5)],
                     frames=24, size=(72, 96), seed=4)  # fmt: skip
    site = ws.open_site(tmp_path / "ws", "cam", create=True)
    rules.add_plates(site, [seq / "empty_bg000001.png"])
    site.clips_dir.mkdir(parents=True, exist_ok=True)
    with open_frames(seq) as reader, H264Writer(site.clips_dir / "walk.mp4", 5.0, crf=12) as writer:
        for frame in reader:
            writer.write(frame)
    extract_silhouettes(seq, "plate", rules.silhouette_folder(site, "walk-plate"), plate=seq / "empty_bg000001.png")

    scale = rules.site_scale(site)
    assert scale is not None and scale.site is not None and not scale.tiled  # 96x72 fits the 240x320 input
    assert scale.site.person_height == pytest.approx(40, rel=0.1) and scale.working_scale == 1.0
    out = rules.build_site_dataset(site, "d", ["walk-plate"], 8, None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["working_scale"] == 1.0 and manifest["tiled"] is False and manifest["size"] == [72, 96]
    assert manifest["params"]["perspective"]["origin"].startswith("fit")
    assert manifest["params"]["composite"]["shift_px"] == 0  # a fixed camera: composites registered with their plate
    assert json.loads((out / rules.SCALE_FILE).read_text())["person_height"] == scale.site.person_height
    assert f"Site scale: people {scale.site.person_height:.0f} px tall, working scale 1.00 (whole plate)." in (
        rules.dataset_summary(out)
    )

    (site.clips_dir / "walk.mp4").unlink()  # no clip: nothing to fit, the build as before
    assert rules.site_scale(site) is None
    out = rules.build_site_dataset(site, "e", ["walk-plate"], 8, None, shake_px=2)  # the app's camera-shake box
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["working_scale"] is None and manifest["params"]["composite"]["shift_px"] == 2
    with pytest.raises(ValueError, match=r"Camera shake must be .* >= 0 \(0: a fixed camera\), got -1"):
        rules.build_site_dataset(site, "f", ["walk-plate"], 8, None, shake_px=-1)
    assert "Site scale: not fitted" in rules.dataset_summary(out)


def test_segment_clip_shows_the_plate_as_captured_and_at_the_end(tmp_path, monkeypatch):
    """The app's plate view: a plate method that follows the site writes its plate as captured (the site's, bit
    for bit) and after the last frame (light switched off half way: the end plate has moved toward the darker
    scene); with the plate fixed, or for a method without a plate, nothing is written."""
    from _synthetic_site import Person, write_clip
    from app_fixtures import sequence_to_mp4

    from humanseg.segment import PlateFollowing
    from humanseg.video import read_image

    seq = write_clip(tmp_path / "seq", [Person(20, 100, 50, (200, 40, 40), 4.0)], frames=12, size=(120, 160))
    for i, frame in enumerate(sorted((seq / "input").iterdir())):
        if i >= 4:  # a light switched off at frame 4
            Image.fromarray((np.asarray(Image.open(frame)) * 0.7).astype(np.uint8)).save(frame)
    clip = sequence_to_mp4(seq, tmp_path / "walk.mp4")
    site = ws.open_site(tmp_path / "ws", "cam", create=True)
    (plate_path,) = rules.add_plates(site, [seq / "empty_bg000001.png"])
    plate = read_image(plate_path)

    run = rules.segment_clip(tmp_path / "ws", site, clip, [], ["plate-diff", "mog2"], 12)
    pd, mog2 = run.result.methods["plate-diff"], run.result.methods["mog2"]
    assert (
        pd.plate_captured == run.out / "plate-diff_plate_captured.png"
        and pd.plate_end == run.out / "plate-diff_plate_end.png"
    )
    assert np.array_equal(read_image(pd.plate_captured), plate)
    end = read_image(pd.plate_end).astype(float)
    assert end.mean() < plate.mean() - 2  # 8 dark frames at 3.5 s and the clip's rate: part of the way down
    assert mog2.plate_captured is None and mog2.plate_end is None

    fixed = rules.segment_clip(tmp_path / "ws", site, clip, [], ["plate-diff"], 12, following=PlateFollowing(False))
    assert fixed.result.methods["plate-diff"].plate_end is None and not list(fixed.out.glob("*_plate_*.png"))
    with pytest.raises(ValueError, match="update time must be >= 0 seconds, got -1"):
        PlateFollowing(True, -1)

    # The site models get the same choice (the registry's segnet takes follow_plate and plate_update_s).
    seen = []
    monkeypatch.setattr(rules, "checkpoint_for", lambda workspace, model: Path("best.pt"))
    monkeypatch.setattr(
        "humanseg.segmenters.create_segmenter", lambda name, **kw: seen.append(kw) or type("S", (), {})()
    )
    rules.trained_segmenters(tmp_path / "ws", ["cam/run"], PlateFollowing(False, 2.0))
    assert seen == [{"checkpoint": Path("best.pt"), "follow_plate": False, "plate_update_s": 2.0}]
