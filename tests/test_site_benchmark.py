"""The site benchmark: one tiny end-to-end run of the command, plus its parts on hand-made inputs.

The end-to-end run benchmarks two synthetic fixed-camera sequences: ``siteA`` (CDnet style: frames 1-30,
temporalROI, ``empty_bg000001.jpg``; the person walks, then stands still from frame 15) and ``siteB`` (SBI style:
frames 0-29, no temporalROI, no empty-scene image, so its plate is estimated and its first frame skipped), with
actor sources: a DAVIS-layout clip and both sequences (leave-one-out).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_builder.silhouettes import load_index
from humanseg.cli.site_benchmark import parse_skip_first
from humanseg.maintained_plate import DEFAULT_UPDATE_S
from humanseg.segmenters import create_segmenter
from humanseg.site_benchmark import (
    SiteBenchmarkConfig,
    baseline_names,
    baseline_unavailable,
    default_size,
    plan_actor_sources,
    run_site_benchmark,
)
from humanseg.site_report import mean_over_sequences, report_markdown
from humanseg.sizes import parse_size
from humanseg.video import load_sequence

ROOT = Path(__file__).resolve().parents[1]
MODEL = "site:segnet-tiny"
METHODS = [MODEL, "mog2", "plate-diff"]


# ------------------------------------------------------------------------------------------------ synthetic data


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack(
        [80 + 60 * np.sin(xx / 5.0 + seed), 100 + 50 * np.cos(yy / 4.0), 120 + 40 * np.sin((xx + yy) / 7.0)], 2
    )
    return np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def _person(h: int, w: int, cx: float, top: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    body = (np.abs(xx - cx) <= height / 6) & (yy >= top + height * 0.25) & (yy < top + height)
    head = (xx - cx) ** 2 + (yy - (top + height * 0.12)) ** 2 <= (height * 0.12) ** 2
    return body | head


def _cdnet(root: Path, numbers: range, *, seed: int, still_from: int | None, sbi: bool) -> Path:
    """64x48 frames, a person-like blob walking left to right (standing still from ``still_from`` on)."""
    (root / "input").mkdir(parents=True)
    (root / "groundtruth").mkdir()
    h, w = 48, 64
    bg = _texture(h, w, seed)
    rng = np.random.default_rng(seed + 1)
    first, last = numbers[0], numbers[-1]
    for n in numbers:
        k = n if still_from is None else min(n, still_from)
        mask = _person(h, w, 8 + (w - 16) * (k - first) / (last - first), 12, 30)
        img = bg.astype(np.float64) + rng.normal(0, 2, bg.shape)
        img[mask] = (200, 60, 50)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "input" / f"in{n:06d}.jpg", quality=95)
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "groundtruth" / f"gt{n:06d}.png")
    if not sbi:
        Image.fromarray(bg).save(root / "empty_bg000001.jpg", quality=95)
        (root / "temporalROI.txt").write_text(f"{first} {last}\n")
    return root


def _davis(root: Path, n: int = 6) -> Path:
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    h, w = 64, 96
    for i in range(n):
        img = _texture(h, w, 10 + i)
        mask = _person(h, w, 30 + 6 * i, 10, 44)
        img[mask] = (40, 90, 200)
        Image.fromarray(img).save(root / "JPEGImages" / f"{i:05d}.jpg", quality=95)
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "Annotations" / f"{i:05d}.png")
    return root


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["HUMANSEG_MODELS"] = str(tmp / "models")  # an empty cache: nothing may be downloaded
    return env


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict:
    """Run the command once (subprocess) with tiny settings; every end-to-end test reads its outputs."""
    tmp = tmp_path_factory.mktemp("site_benchmark")
    site_a = _cdnet(tmp / "data" / "siteA", range(1, 31), seed=0, still_from=15, sbi=False)
    site_b = _cdnet(tmp / "data" / "siteB", range(0, 30), seed=3, still_from=None, sbi=True)
    actor = _davis(tmp / "data" / "actor")
    out = tmp / "out"
    cmd = [
        sys.executable, "-m", "humanseg", "site-benchmark", str(site_a), str(site_b),
        "--actors", str(actor), str(site_a), str(site_b), "--minutes", "0.1", "--count", "24",
        "--model", "segnet-tiny", "--baselines", "mog2", "plate-diff", "--fps", "5", "--workers", "1",
        "--device", "cpu", "--plate-people", "plate-diff", "--drift", "--out", str(out),
        "--composite", "attached_shadow_fraction=0.5", "shadow_strength=0.2,0.4",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp), cwd=tmp, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {
        "proc": proc,
        "out": out,
        "site_a": site_a,
        "site_b": site_b,
        "results": json.loads((out / "results.json").read_text()),
        "run": json.loads((out / "run.json").read_text()),
    }


# ------------------------------------------------------------------------------------------------ end to end


def test_results_have_every_method_with_scores(bench):
    results = bench["results"]
    assert list(results) == ["siteA", "siteB"]
    for seq, rows in results.items():
        assert list(rows) == METHODS, seq
        for method, r in rows.items():
            assert r["status"] == "ok", (seq, method)
            for key in ("f_measure", "iou", "precision", "recall"):
                assert 0.0 <= r[key] <= 1.0, (seq, method, key)
            assert r["flicker"] is None or 0.0 <= r["flicker"] <= 1.0
            assert r["ms_per_frame"] > 0
            assert r["tp"] + r["fp"] + r["fn"] + r["tn"] == r["frames"] * 64 * 48  # no ROI: every pixel scored
    # The site plate reaches plate-diff: against the true (or estimated) empty scene the red blob is obvious.
    assert results["siteA"]["plate-diff"]["f_measure"] > 0.8
    assert results["siteB"]["plate-diff"]["f_measure"] > 0.8
    assert results["siteA"][MODEL]["checkpoint"].endswith("best.pt")


def test_skip_first_auto_and_plate_source(bench):
    results, run = bench["results"], bench["run"]
    # siteA: CDnet numbering from 1 -> nothing skipped; siteB: SBI-style frame 0 -> skipped by the auto rule.
    assert run["sequences"]["siteA"]["skip_first"] is False
    assert run["sequences"]["siteB"]["skip_first"] is True
    assert {r["frames"] for r in results["siteA"].values()} == {30}
    assert {r["frames"] for r in results["siteB"].values()} == {29}
    assert {r["first_frame"] for r in results["siteB"].values()} == {1}
    assert run["sequences"]["siteA"]["plate"]["source"] == "given"
    assert run["sequences"]["siteB"]["plate"]["source"] == "estimated"
    assert run["sequences"]["siteB"]["plate"]["detail"].endswith("people marked by plate-diff left out")
    plate_b = np.asarray(Image.open(bench["out"] / "siteB" / "plate.png"))
    assert plate_b.shape == (48, 64, 3)
    # The estimated plate is the empty scene: no trace of the red person.
    red = (plate_b[..., 0] > 170) & (plate_b[..., 1] < 100) & (plate_b[..., 2] < 100)
    assert red.sum() < 10


def test_leave_one_out_sources(bench):
    run = bench["run"]
    a, b = run["sequences"]["siteA"], run["sequences"]["siteB"]
    assert a["actor_sources"] == ["actor", "siteB"]
    assert b["actor_sources"] == ["actor", "siteA"]
    assert a["actor_sources_left_out"] == [str(bench["site_a"])]
    assert b["actor_sources_left_out"] == [str(bench["site_b"])]
    # Silhouettes were cut once per source, into OUT/actors/<name>/, each folder from its own source only.
    for name in ("actor", "siteA", "siteB"):
        items = load_index(bench["out"] / "actors" / name)
        assert items and {Path(i.source).name for i in items} == {name}
        assert {i.method for i in items} == {"masks"}
    manifest = json.loads((bench["out"] / "siteA" / "dataset" / "manifest.json").read_text())
    used = {Path(s["path"]).name for s in manifest["sources"]["silhouettes"]}
    assert used == {"actor", "siteB"}
    assert "siteA: actor sources actor, siteB" in bench["proc"].stderr


def test_still_person_frames(bench):
    results, run = bench["results"], bench["run"]
    # siteA stands still from frame 15; 2 s at 5 fps = 10 frames earlier -> frames 25..30 are "still".
    assert run["sequences"]["siteA"]["still_frames"] == [25, 26, 27, 28, 29, 30]
    assert run["sequences"]["siteB"]["still_frames"] == []
    for r in results["siteA"].values():
        assert r["still_frames"] == 6
        assert 0.0 <= r["still_f_measure"] <= 1.0
    for r in results["siteB"].values():
        assert r["still_frames"] == 0 and r["still_f_measure"] is None
    # mog2 absorbs a person who stands still into its background; the plate does not.
    assert results["siteA"]["plate-diff"]["still_f_measure"] > results["siteA"]["mog2"]["still_f_measure"]


def test_report_chart_montage_and_run_files(bench):
    out, run = bench["out"], bench["run"]
    report = (out / "report.md").read_text()
    assert "| method | F-measure | IoU | precision | recall | still F | flicker | ms/frame |" in report
    for seq in ("siteA", "siteB"):
        assert f"## {seq}" in report
        assert f"![montage of {seq}]({seq}/montage.png)" in report
        for method in METHODS:
            assert f"| {method} |" in report or f"| **{method}** |" in report
    assert "## Mean over 2 sequences" in report
    assert "Winner: **plate-diff**" in report
    assert "0.1 min per sequence" in report
    assert "| site model output | network |" in report  # segnet-tiny takes no plate: nothing to complete
    assert "| estimated plates | temporal median of the input frames, people marked by plate-diff left out |" in report

    with Image.open(out / "f_measure.png") as chart:
        assert chart.format == "PNG" and chart.width >= 400 and chart.height >= 300
    for seq in ("siteA", "siteB"):
        with Image.open(out / seq / "montage.png") as m:
            assert m.format == "PNG"
            # 64-px frames are shown 160 px wide: frame | ground truth | 3 methods; 4 rows of 120 px + captions.
            assert m.width == 5 * 160
            assert 4 * 120 < m.height < 4 * 160
        masks = sorted((out / seq / "masks" / "mog2").glob("gt*.png"))
        assert len(masks) == (30 if seq == "siteA" else 29)
        assert (out / seq / "train" / "best.pt").is_file()

    assert run["complete"] is True
    assert run["settings"]["minutes"] == 0.1 and run["settings"]["model"] == "segnet-tiny"
    assert run["settings"]["seed"] == 0 and run["methods"] == METHODS
    timing = run["timings"]["sequences"]["siteA"]
    assert set(timing) == {"plate_s", "scale_s", "build_s", "train_s", "eval_s"}
    assert set(timing["eval_s"]) == set(METHODS)
    # The site scale is on by default: fitted from each sequence's own frames (30-px people, never enlarged).
    assert run["settings"]["site_scale"] is True and run["settings"]["site_actors"] is False
    for seq in ("siteA", "siteB"):
        scale = run["sequences"][seq]["scale"]
        assert scale["working_scale"] == 1.0 and scale["tiled"] is False
        assert run["sequences"][seq]["dataset"]["working_scale"] == 1.0
        assert f"- site scale: person {scale['person_height']:.0f} px" in report
    # How many steps fit in 6 s depends on the machine's load; the budget is what must stop training.
    assert run["sequences"]["siteA"]["train"]["stopped"] == "time budget used"
    # The versions of what actually ran, as installed (OpenCV reports its own version, not the wheel's).
    import cv2

    import humanseg

    versions = run["versions"]
    for package in ("torch", "numpy", "mediapipe"):
        assert versions[package] == importlib.metadata.version(package), package
    assert versions["opencv"] == cv2.__version__ and versions["humanseg"] == humanseg.__version__
    assert versions["python"] == platform.python_version() and versions["device"] == "cpu"
    # One progress bar over all stages: 3 extractions + 2 x (build, train, 3 methods) = 13; it ends at 13/13.
    stderr = bench["proc"].stderr
    draws = re.findall(r"site benchmark:\s+\d+%.*?(\d+)/13", stderr)
    assert draws and draws[-1] == "13"
    # stderr is a pipe here, not a terminal: a bar redraws at most every 30 s, plus its first and last draw and
    # once under each note printed above it, instead of at every update. So the stage bar draws about once per
    # note, and each evaluation bar (30 frame updates, no note while it runs) draws once.
    lines = [line.split("\r")[-1] for line in stderr.split("\n")]
    notes = [line for line in lines if re.match(r"(actors \w+|site[AB]): ", line)]
    assert len(notes) >= 9 and len(draws) <= len(notes) + 3 + run["timings"]["total_s"] // 30, (notes, draws)
    for seq in ("siteA", "siteB"):
        for method, seconds in run["timings"]["sequences"][seq]["eval_s"].items():
            frame_draws = re.findall(rf"{seq} {method}:\s+\d+%", stderr)
            assert 1 <= len(frame_draws) <= 2 + seconds // 30, (seq, method, frame_draws)
    assert "report:" in bench["proc"].stdout


def test_report_lists_skipped_baseline(bench):
    results = json.loads(json.dumps(bench["results"]))
    run = json.loads(json.dumps(bench["run"]))
    reason = "model file missing and could not be fetched (offline)"
    for rows in results.values():
        rows["mediapipe"] = {"status": "skipped", "reason": reason, "f_measure": None}
    run["skipped"] = {"mediapipe": reason}
    text = report_markdown(results, run)
    assert f"| mediapipe | skipped: {reason} |" in text
    assert f"## Skipped baselines\n\n- mediapipe: {reason}" in text


def test_drift_probe_scores_every_variant_and_method(bench):
    """--drift: per sequence, F of the ramp, step and moved-object variants for the site model and plate-diff with
    the maintained and the fixed plate and MOG2, and how long the moved object stays marked; the variant folders
    are removed afterwards."""
    for name in ("siteA", "siteB"):
        drift = bench["run"]["sequences"][name]["drift"]
        assert list(drift) == ["ramp", "step", "moved"]
        for variant, rows in drift.items():
            assert list(rows) == ["site:segnet-tiny", "site:segnet-tiny fixed plate", "plate-diff",
                                  "plate-diff fixed plate", "mog2"]  # fmt: skip
            assert all(0.0 <= r["f_measure"] <= 1.0 for r in rows.values())
            assert all(("moved_marked_until_s" in r) == (variant == "moved") for r in rows.values())
        assert not (bench["out"] / name / "drift" / "ramp").exists()
    report = (bench["out"] / "report.md").read_text()
    assert report.count("Drift probe") == 2 and "| site:segnet-tiny fixed plate |  | " in report
    assert (
        "| plate (site model, plate-diff) | follows the site: light compensation, update time 3.5 s at 5 fps |"
        in report
    )


def test_missing_model_baseline_is_skipped_not_fatal(tmp_path, monkeypatch, capsys):
    """In process, with a fetcher that fails as it would offline: mediapipe is recorded as skipped, and the
    plate (no empty-scene image here) is estimated without it, once asked for."""
    monkeypatch.setenv("HUMANSEG_MODELS", str(tmp_path / "models"))  # empty cache
    site = _cdnet(tmp_path / "cam", range(1, 11), seed=1, still_from=None, sbi=True)
    actor = _davis(tmp_path / "actor")
    calls = []

    def offline(name, log=print):
        calls.append(name)
        raise RuntimeError("url: no route to host; wheel: no network")

    # --fixed-plate and --plate-update-s reach the site model and plate-diff (the segmenters built are recorded).
    from humanseg import site_benchmark

    built = []

    def recording(name, **options):
        seg = create_segmenter(name, **options)
        built.append((name, {k: options.get(k) for k in ("follow_plate", "plate_update_s", "fps")}, seg))
        return seg

    monkeypatch.setattr(site_benchmark, "create_segmenter", recording)
    config = SiteBenchmarkConfig(
        sequences=[site], actors=[actor], out=tmp_path / "out", minutes=0.1, model="segnet-tiny", count=10,
        baselines=("plate-diff", "mediapipe"), workers=1, device="cpu", fixed_plate=True, plate_update_s=1.5,
    )  # fmt: skip
    out = run_site_benchmark(config, progress=False, log=lambda _: None, fetch=offline)
    scored = {name: (options, seg) for name, options, seg in built if name in ("segnet", "plate-diff")}
    assert set(scored) == {"segnet", "plate-diff"}
    fixed = {"follow_plate": False, "plate_update_s": 1.5, "fps": config.fps}
    assert all(options == fixed for options, _ in scored.values())
    assert scored["plate-diff"][1].maintained is None and not scored["segnet"][1].follow_plate
    assert out["run"]["settings"]["fixed_plate"] is True and out["run"]["settings"]["plate_update_s"] == 1.5
    assert capsys.readouterr().err == ""  # progress=False: no bar at all, the trainer's dataset loading included
    assert calls == ["mediapipe"]
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["cam"]
    assert rows == out["results"]["cam"]
    assert list(rows) == ["site:segnet-tiny", "plate-diff", "mediapipe"]
    assert rows["mediapipe"]["status"] == "skipped" and "no network" in rows["mediapipe"]["reason"]
    assert rows["mediapipe"]["f_measure"] is None
    assert rows["plate-diff"]["status"] == "ok" and rows["site:segnet-tiny"]["status"] == "ok"
    assert "no network" in out["run"]["skipped"]["mediapipe"]
    plate = out["run"]["sequences"]["cam"]["plate"]
    assert plate["source"] == "estimated" and plate["detail"].endswith("(mediapipe unavailable: motion masking only)")
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| mediapipe | skipped: model file missing" in report and "## Skipped baselines" in report
    assert "| plate (site model, plate-diff) | as captured (--fixed-plate) |" in report
    assert not (tmp_path / "out" / "cam" / "masks" / "mediapipe").exists()
    with Image.open(tmp_path / "out" / "cam" / "montage.png") as m:
        assert m.width == 4 * 160  # frame | ground truth | site model | plate-diff: no column for mediapipe


# ------------------------------------------------------------------------------------------------ refusals


def test_self_as_actor_is_refused(tmp_path, capsys):
    from humanseg.cli import main

    site = _cdnet(tmp_path / "cam1", range(1, 11), seed=0, still_from=None, sbi=False)
    out = tmp_path / "out"
    code = main(["site-benchmark", str(site), "--actors", str(site), "--minutes", "1", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"actor source {site} is the sequence" in err
    assert not out.exists()  # refused before any work

    # No --actors at all: refused with both ways out; the sequence as its own actor source is fine with
    # --site-actors (it is planned with no other source; its harvested silhouettes are its actors).
    code = main(["site-benchmark", str(site), "--minutes", "1", "--out", str(out)])
    assert code == 2 and "or --site-actors" in capsys.readouterr().err and not out.exists()
    assert plan_actor_sources([site], [site], site_actors=True) == {site: []}


def test_cli_site_flags_reach_the_config(tmp_path, monkeypatch, capsys):
    from humanseg import site_benchmark
    from humanseg.cli import main

    seen = []

    def fake_run(config, progress):  # the flags are what is tested, not a run
        seen.append(config)
        return {"results": {}}

    monkeypatch.setattr(site_benchmark, "run_site_benchmark", fake_run)
    site = tmp_path / "cam"
    assert main(["site-benchmark", str(site), "--site-actors", "--minutes", "1", "--out", str(tmp_path / "o")]) == 0
    assert main(["site-benchmark", str(site), "--actors", str(tmp_path), "--no-site-scale", "--minutes", "1",
                 "--out", str(tmp_path / "o")]) == 0  # fmt: skip
    assert [(c.actors, c.site_actors, c.site_scale) for c in seen] == [([], True, True), ([tmp_path], False, False)]
    assert [(c.fixed_plate, c.plate_update_s) for c in seen] == [(False, DEFAULT_UPDATE_S)] * 2  # the defaults
    assert main(["site-benchmark", str(site), "--site-actors", "--fixed-plate", "--plate-update-s", "1.5",
                 "--minutes", "1", "--out", str(tmp_path / "o")]) == 0  # fmt: skip
    assert (seen[-1].fixed_plate, seen[-1].plate_update_s) == (True, 1.5)
    bad = SiteBenchmarkConfig(sequences=[site], actors=[], site_actors=True, out=tmp_path, minutes=1, plate_update_s=-1)
    with pytest.raises(ValueError, match=r"--plate-update-s must be >= 0 seconds, got -1"):
        bad.validate()
    bad = SiteBenchmarkConfig(sequences=[site], actors=[], site_actors=True, out=tmp_path, minutes=1,
                              composite={"shadow_strenght": (0.1, 0.2)})  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown composite setting\(s\) shadow_strenght; valid: .*shadow_strength"):
        bad.validate()
    assert main(["site-benchmark", str(site), "--site-actors", "--minutes", "1", "--out", str(tmp_path / "o"),
                 "--composite", "border_cut_fraction=0", "flip=false"]) == 0  # fmt: skip
    assert seen[-1].composite == {"border_cut_fraction": 0.0, "flip": False}
    assert main(["site-benchmark", str(site), "--site-actors", "--minutes", "1", "--out", str(tmp_path / "o"),
                 "--composite", "border_cut_fraction=2"]) == 2  # fmt: skip
    assert "border_cut_fraction must be a probability in [0, 1], got 2.0" in capsys.readouterr().err


def test_composite_settings_reach_the_dataset_run_json_and_report(bench):
    """``--composite`` (one training lever changed on its own): the builder made the datasets with it, run.json
    records it and the report's settings name it."""
    assert bench["run"]["settings"]["composite"] == {"attached_shadow_fraction": 0.5, "shadow_strength": [0.2, 0.4]}
    for site in ("siteA", "siteB"):
        written = json.loads((bench["out"] / site / "dataset" / "manifest.json").read_text())["params"]["composite"]
        assert (written["attached_shadow_fraction"], written["shadow_strength"]) == (0.5, [0.2, 0.4])
        assert written["border_cut_fraction"] == 0.2  # the others keep the builder's defaults
    report = (bench["out"] / "report.md").read_text()
    assert "seed 0, `--composite attached_shadow_fraction=0.5 shadow_strength=0.2,0.4` |" in report


def test_plan_actor_sources(tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    for p in (a, b, c):
        p.mkdir()
    # The same folder spelled differently is still the sequence itself.
    alias = tmp_path / "b" / ".." / "a"
    plan = plan_actor_sources([a, b], [alias, b, c])
    assert plan[a] == [b, c]
    assert plan[b] == [alias, c]
    with pytest.raises(ValueError, match="is the sequence"):
        plan_actor_sources([a, b], [a])  # b may use a, but a is left with nothing
    with pytest.raises(FileNotFoundError, match="missing"):
        plan_actor_sources([a], [tmp_path / "missing"])
    with pytest.raises(ValueError, match="more than once"):
        SiteBenchmarkConfig(sequences=[a, alias], actors=[c], out=tmp_path / "o", minutes=1).validate()
    # 8 composites keep 7 for training (1 val), fewer than one batch of 8: refused before any work, naming the fix.
    with pytest.raises(ValueError, match="use --count 9 or more"):
        SiteBenchmarkConfig(sequences=[a], actors=[c], out=tmp_path / "o", minutes=1, count=8).validate()
    with pytest.raises(ValueError, match="unknown --plate-people 'yolo'; valid: mog2, knn"):
        SiteBenchmarkConfig(sequences=[a], actors=[c], out=tmp_path / "o", minutes=1, plate_people="yolo").validate()
    # The trained backend is the site model, never a baseline: the capability flag says so, not its name.
    with pytest.raises(
        ValueError, match=r"unknown baseline\(s\) segnet; valid: mog2, knn, gsoc, plate-diff, mediapipe"
    ):
        SiteBenchmarkConfig(sequences=[a], actors=[c], out=tmp_path / "o", minutes=1, baselines=("segnet",)).validate()
    assert "segnet" not in baseline_names() and baseline_names()[:2] == ["mog2", "knn"]


def test_baseline_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HUMANSEG_MODELS", str(tmp_path / "models"))
    calls = []

    def offline(name, log=print):
        calls.append(name)
        raise RuntimeError("url: no network; wheel: no network")

    reason = baseline_unavailable("mediapipe", fetch=offline, log=lambda _: None)
    assert calls == ["mediapipe"]
    assert "no network" in reason and "python -m humanseg models fetch mediapipe" in reason

    def fake_fetch(name, log=print):
        path = tmp_path / "models" / "mediapipe_selfie_segmenter.tflite"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"1234TFL3")

    assert baseline_unavailable("mediapipe", fetch=fake_fetch, log=lambda _: None) is None
    assert baseline_unavailable("mog2", fetch=offline, log=lambda _: None) is None  # nothing to download
    assert calls == ["mediapipe"]


# ------------------------------------------------------------------------------------------------ parts


def test_still_f_pools_the_saved_masks_of_the_still_frames(bench):
    """The still-person F comes from the evaluator's per-frame counts; counting the masks the run saved gives the
    same number (what the benchmark did before, by reading them back)."""
    from humanseg import metrics
    from humanseg.video import read_label

    site = bench["site_a"]
    still = set(bench["run"]["sequences"]["siteA"]["still_frames"])
    seq = load_sequence(site)
    for method, row in bench["results"]["siteA"].items():
        total = metrics.Confusion()
        for item in seq.scored_items():
            if item.number in still:
                pred = read_label(bench["out"] / "siteA" / "masks" / method / f"{item.label.stem}.png") > 127
                total = total + metrics.confusion(pred, read_label(item.label), seq.roi)
        assert row["still_f_measure"] == metrics.scores(total)["f_measure"], method


def test_mean_over_sequences_skips_what_did_not_run():
    results = {
        "a": {"m": {"status": "ok", "f_measure": 0.2, "still_f_measure": None, "still_frames": 0},
              "x": {"status": "skipped", "reason": "r", "f_measure": None}},
        "b": {"m": {"status": "ok", "f_measure": 0.4, "still_f_measure": 0.5, "still_frames": 3},
              "x": {"status": "skipped", "reason": "r", "f_measure": None}},
    }  # fmt: skip
    means = mean_over_sequences(results)
    assert means["m"]["f_measure"] == pytest.approx(0.3)
    assert means["m"]["still_f_measure"] == pytest.approx(0.5) and means["m"]["still_frames"] == 3
    assert means["m"]["sequences"] == 2
    assert means["x"]["status"] == "skipped" and means["x"]["f_measure"] is None


def test_small_parsers():
    assert parse_size("240x320") == (240, 320)
    with pytest.raises(ValueError, match="HxW"):
        parse_size("240")
    assert parse_skip_first("auto") is None and parse_skip_first("yes") is True and parse_skip_first("no") is False
    with pytest.raises(ValueError, match="auto, yes, no"):
        parse_skip_first("maybe")
    assert default_size((240, 360)) == (240, 360)
    assert default_size((1080, 1920)) == (480, 854)


def test_yolo_seg_is_skipped_with_its_reason_when_no_model_file(tmp_path, monkeypatch):
    from humanseg.site_benchmark import baseline_unavailable

    monkeypatch.setenv("HUMANSEG_YOLO_SEG", str(tmp_path / "missing.onnx"))
    reason = baseline_unavailable("yolo-seg", log=lambda _msg: None)
    assert reason is not None and "missing.onnx" in reason and "yolo export" in reason
    (tmp_path / "missing.onnx").write_bytes(b"onnx")  # present: nothing to skip (it is read when the backend runs)
    assert baseline_unavailable("yolo-seg", log=lambda _msg: None) is None


def test_drift_of_run_rescores_a_finished_run_as_drift_did(bench, tmp_path):
    """bench/drift_of_run.py on a copy of the run without its drift gives the numbers --drift gave (the same
    checkpoint and settings), for the sequence asked only, and the report shows the drift table again."""
    out = tmp_path / "run"
    shutil.copytree(bench["out"], out)
    run = json.loads((out / "run.json").read_text())
    for seq in run["sequences"].values():
        del seq["drift"]
    (out / "run.json").write_text(json.dumps(run))
    script = ROOT / "bench" / "drift_of_run.py"
    proc = subprocess.run([sys.executable, str(script), str(out), "--sequences", "siteA"], capture_output=True,
                          text=True, env=_env(tmp_path), timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((out / "run.json").read_text())["sequences"]
    want = bench["run"]["sequences"]["siteA"]["drift"]
    assert list(again["siteA"]["drift"]) == list(want)
    for variant, rows in want.items():
        for method, row in rows.items():
            assert again["siteA"]["drift"][variant][method] == pytest.approx(row, abs=1e-9), (variant, method)
    assert "drift" not in again["siteB"] and again["siteA"]["drift_added_by"].startswith("bench/drift_of_run.py")
    assert (out / "report.md").read_text().count("Drift probe") == 1
    bad = subprocess.run([sys.executable, str(script), str(out), "--sequences", "nowhere"], capture_output=True,
                         text=True, env=_env(tmp_path), timeout=60)  # fmt: skip
    assert bad.returncode != 0 and "['nowhere'] not in this run" in bad.stderr
