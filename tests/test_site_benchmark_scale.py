"""The site benchmark at the site's own scale, and its users' path (``--site-actors``).

A small synthetic camera (96x72, people 40 px tall) and the same footage in the middle of a 3x larger canvas
(216x288, the plate mirrored around it, the padding labelled 85 = outside the ROI, as
``shared/tools/pad_sequence.py`` makes it): the people have the same size in pixels on both, so both fit the
same person height; the padded frame at working scale 1 is larger than a segnet-tiny input (120x160) by more
than the fit slack, so its network runs on tiles and its composites are input-sized windows; the original's
whole frame fits the input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _synthetic_site import Person, write_clip
from PIL import Image

from dataset_builder.build import build_dataset
from dataset_builder.perspective import PerspectiveModel
from dataset_builder.silhouettes import load_index
from humanseg.models import get_preset
from humanseg.site import fit_clip_scale
from humanseg.site_benchmark import (
    SiteBenchmarkConfig,
    _Console,
    _harvest_site_actors,
    _Record,
    default_size,
    run_site_benchmark,
)
from humanseg.site_report import report_markdown
from humanseg.video import read_image

PRESET = "segnet-tiny"
INPUT = get_preset(PRESET).input_size  # (120, 160)
PEOPLE = [Person(8, 50, 40, speed=3.0), Person(70, 66, 40, colour=(40, 60, 210), speed=-2.5)]
PERSON_PX = 40


def _site(root: Path) -> Path:
    return write_clip(root, PEOPLE, frames=24, size=(72, 96), seed=4)


def _padded(seq: Path, root: Path, factor: int = 3) -> Path:
    """``seq`` in the middle of a ``factor`` x larger canvas: frames and plate mirrored, labels 85 outside."""
    (root / "input").mkdir(parents=True)
    (root / "groundtruth").mkdir()

    def pad(img: np.ndarray, mode: str, **kw) -> np.ndarray:
        h, w = img.shape[:2]
        py, px = (factor - 1) * h // 2, (factor - 1) * w // 2
        widths = ((py, (factor - 1) * h - py), (px, (factor - 1) * w - px)) + ((0, 0),) * (img.ndim - 2)
        return np.pad(img, widths, mode=mode, **kw)

    for f in sorted((seq / "input").iterdir()):
        Image.fromarray(pad(read_image(f), "symmetric")).save(root / "input" / f.name)
    for f in sorted((seq / "groundtruth").iterdir()):
        label = np.asarray(Image.open(f))
        Image.fromarray(pad(label, "constant", constant_values=85)).save(root / "groundtruth" / f.name)
    Image.fromarray(pad(read_image(seq / "empty_bg000001.png"), "symmetric")).save(root / "empty_bg000001.png")
    return root


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("scale_sites")
    orig = _site(tmp / "cam")
    return {"orig": orig, "padded": _padded(orig, tmp / "cam-x3")}


def test_site_scale_same_people_same_scale_tiles_only_the_big_frame(sites):
    orig = fit_clip_scale(sites["orig"], read_image(sites["orig"] / "empty_bg000001.png"), INPUT)
    padded = fit_clip_scale(sites["padded"], read_image(sites["padded"] / "empty_bg000001.png"), INPUT)
    assert orig.site is not None and padded.site is not None
    assert orig.site.person_height == pytest.approx(PERSON_PX, rel=0.05)
    assert padded.site.person_height == pytest.approx(orig.site.person_height, rel=0.05)
    assert orig.working_scale == padded.working_scale == 1.0  # 90 px wanted, never enlarged
    assert not orig.tiled and padded.tiled
    # Composite size: an explicit size wins; else the input when tiled, else the caller's default.
    assert orig.size(None, (72, 96)) == (72, 96)
    assert padded.size(None, (216, 288)) == INPUT
    assert padded.size((100, 100), (216, 288)) == (100, 100)
    # The builder gets the working scale only where its windows agree with what the network sees: an explicit
    # size smaller than the scaled frame of a camera seen whole would cut windows, so none (composites as before).
    assert orig.build_scale((72, 96)) == orig.build_scale(None) == 1.0 and orig.build_scale((24, 32)) is None
    assert padded.build_scale(INPUT) == 1.0 and padded.build_scale((216, 288)) is None
    # The fitted perspective is in frame pixels; an explicit one wins.
    assert padded.perspective(None).image_height == 216
    assert padded.perspective("10:20,60:50") == "10:20,60:50"
    recorded = padded.to_dict()
    assert recorded["tiled"] is True and recorded["input_size"] == list(INPUT)
    assert recorded["person_height"] == padded.site.person_height
    assert "tiles of 120x160" in padded.describe()


def test_too_few_people_keeps_todays_behaviour(tmp_path):
    empty = write_clip(tmp_path / "empty", [], frames=6, size=(72, 96))
    scale = fit_clip_scale(empty, read_image(empty / "empty_bg000001.png"), INPUT)
    assert scale.site is None and scale.working_scale is None and not scale.tiled
    assert scale.size(None, (72, 96)) == (72, 96) and scale.perspective(None) is None and scale.to_dict() is None
    assert scale.build_scale((72, 96)) is None


def test_site_actors_never_read_the_ground_truth(sites, tmp_path):
    """Harvesting (and fitting the site scale) from a copy whose ground truth is garbage gives the very same
    silhouettes (and scale)."""
    garbage = tmp_path / "garbage"
    shutil.copytree(sites["orig"], garbage)
    rng = np.random.default_rng(0)
    for f in (garbage / "groundtruth").iterdir():
        Image.fromarray(rng.choice(np.array([0, 50, 170, 255], np.uint8), (9, 7))).save(f)  # wrong size too
    got = {}
    for key, seq in (("real", sites["orig"]), ("garbage", garbage)):
        work = tmp_path / f"work-{key}"
        work.mkdir()
        shutil.copy(seq / "empty_bg000001.png", work / "plate.png")
        config = SiteBenchmarkConfig([seq], [], tmp_path / "out", 0.1, site_actors=True)
        record = _Record(config, "site", ["site"], started=0.0)
        console = _Console(1, False, lambda text: None)
        folders = _harvest_site_actors(config, seq, work, "cam", False, record, console)
        index = load_index(folders["site:cam"])
        fitted = fit_clip_scale(seq, read_image(work / "plate.png"), INPUT).to_dict()
        got[key] = ([(i.frame, i.box) for i in index], fitted)
        assert record.actors["site:cam"]["silhouettes"] == len(index) > 0
    assert got["garbage"] == got["real"]


@pytest.fixture(scope="module")
def scaled_run(sites, tmp_path_factory) -> dict:
    """One tiny run: the camera and its 3x padded copy, actors harvested from each one's own frames only."""
    out = tmp_path_factory.mktemp("scaled_run") / "out"
    config = SiteBenchmarkConfig(
        [sites["orig"], sites["padded"]], [], out, 0.1, model=PRESET, count=24, baselines=(),
        fps=5.0, workers=1, device="cpu", plate_people=None, site_actors=True, montage_frames=1,
    )  # fmt: skip
    done = run_site_benchmark(config, progress=False, log=lambda text: None)
    return {"out": out, **done}


def test_run_records_the_site_scale_and_tiles_the_padded_camera(scaled_run):
    run = scaled_run["run"]
    assert run["settings"]["site_scale"] is True and run["settings"]["site_actors"] is True
    orig, padded = run["sequences"]["cam"], run["sequences"]["cam-x3"]
    for meta in (orig, padded):
        scale = meta["scale"]
        assert scale["person_height"] == pytest.approx(PERSON_PX, rel=0.05)
        assert scale["working_scale"] == 1.0 and scale["perspective"]["image_height"] == meta["frame_wh"][1]
        assert meta["dataset"]["working_scale"] == 1.0
    assert orig["scale"]["tiled"] is False and orig["dataset"]["tiled"] is False
    assert orig["dataset"]["size"] == [72, 96]
    assert padded["scale"]["tiled"] is True and padded["dataset"]["tiled"] is True
    assert padded["dataset"]["size"] == list(INPUT)  # composites = input-sized windows of the plate
    manifest = json.loads((Path(padded["dataset"]["path"]) / "manifest.json").read_text())
    assert manifest["working_scale"] == 1.0 and manifest["tiled"] is True and manifest["size"] == list(INPUT)
    # The site's own perspective (frame pixels), not the generic view.
    assert manifest["params"]["perspective"]["origin"].startswith("fit")
    report = (scaled_run["out"] / "report.md").read_text()
    assert "- site scale: person 40 px" in report and "(windows of the plate at the working scale)" in report


def test_site_actors_are_each_sequences_own(scaled_run):
    run = scaled_run["run"]
    for name in ("cam", "cam-x3"):
        meta = run["sequences"][name]
        assert meta["actor_sources"] == [f"site:{name}"]
        actors = run["actors"][f"site:{name}"]
        assert actors["method"] == "plate" and actors["silhouettes"] > 0
        assert len(load_index(actors["folder"])) == actors["silhouettes"]
    report = (scaled_run["out"] / "report.md").read_text()
    assert f"site:cam ({run['actors']['site:cam']['silhouettes']} silhouettes)" in report
    assert report == report_markdown(scaled_run["results"], run)


def test_no_site_scale_builds_todays_dataset(sites, tmp_path):
    """``site_scale=False``: the dataset is the one the builder makes without a working scale (same id)."""
    actors = tmp_path / "actors"
    out = tmp_path / "out"
    config = SiteBenchmarkConfig(
        [sites["padded"]], [], out, 0.1, model=PRESET, count=24, baselines=(), fps=5.0, workers=1, device="cpu",
        plate_people=None, site_actors=True, site_scale=False, montage_frames=1,
    )  # fmt: skip
    run = run_site_benchmark(config, progress=False, log=lambda text: None)["run"]
    meta = run["sequences"]["cam-x3"]
    assert meta["scale"] is None and meta["dataset"]["working_scale"] is None and meta["dataset"]["tiled"] is False
    size = default_size((216, 288))
    assert meta["dataset"]["size"] == list(size)
    shutil.copytree(out / "cam-x3" / "site-actors", actors)
    today = build_dataset(
        [out / "cam-x3" / "plate.png"], [actors], tmp_path / "today", 24, size=size, seed=0,
        perspective=PerspectiveModel.default(size[0]), val_fraction=0.1, workers=1,
    )  # fmt: skip
    ran = json.loads((Path(meta["dataset"]["path"]) / "manifest.json").read_text())
    assert ran["id"] == json.loads(today.read_text())["id"]
    assert ran["params"]["perspective"]["origin"] == "default"
    assert "off (--no-site-scale)" in (out / "report.md").read_text()
