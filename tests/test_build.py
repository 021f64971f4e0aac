"""Building datasets: layout and manifest, determinism, resume, workers, bad input, CLI, the real site."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from _synthetic_site import Person, background, write_clip
from PIL import Image

from dataset_builder.build import MANIFEST_NAME, STATE_NAME, build_dataset, read_manifest
from dataset_builder.cli import main
from dataset_builder.silhouettes import extract_silhouettes, reject

SIZE = (60, 80)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, Path]:
    """A plate folder, an actor silhouettes folder and a harvested site silhouettes folder (120x160 site)."""
    root = tmp_path_factory.mktemp("site")
    plates = root / "plates"
    plates.mkdir()
    Image.fromarray(background(120, 160, seed=3)).save(plates / "day.png")
    Image.fromarray((background(120, 160, seed=3) * 0.6).astype(np.uint8)).save(plates / "dusk.png")
    actors = write_clip(root / "actors", [Person(20, 50, 40, (230, 40, 40), 7.0), Person(10, 110, 70, (40, 40, 230), 8.0)],
                        frames=8, size=(120, 200), seed=9)
    extract_silhouettes(actors, "masks", root / "sil")
    # The site's own passers-by at three depths: height = 0.5 * feet_row + 5 (a perspective to recover).
    for i, walker in enumerate([Person(10, 50, 30, (200, 200, 60), 12.0), Person(10, 80, 45, (60, 200, 60), 12.0),
                                Person(10, 110, 60, (200, 60, 200), 12.0)]):
        clip = write_clip(root / f"siteclip{i}", [walker], frames=10, seed=3)
        extract_silhouettes(clip, "plate", root / "harvest")
    return {"plates": plates, "sil": root / "sil", "harvest": root / "harvest", "root": root}


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_manifest_and_preview(site, tmp_path, capsys):
    out = tmp_path / "ds"
    manifest_path = build_dataset(site["plates"], [site["sil"]], out, 20, SIZE, seed=1, val_fraction=0.25,
                                  perspective="20:8,59:30", progress=True)
    assert manifest_path == out / MANIFEST_NAME
    m = json.loads(manifest_path.read_text())
    assert m["format"] == "humanseg-dataset/1" and len(m["id"]) == 64
    assert m["size"] == [60, 80] and m["seed"] == 1 and m["count"] == 20
    assert m["splits"] == {"train": 15, "val": 5}
    assert [s["split"] for s in m["samples"]] == ["train"] * 15 + ["val"] * 5
    assert m["params"]["perspective"]["origin"] == "references"
    plate_sums = {e["sha256"] for e in m["sources"]["plates"]}
    assert plate_sums == {hashlib.sha256(p.read_bytes()).hexdigest() for p in site["plates"].iterdir()}
    from dataset_builder.silhouettes import load_silhouettes

    assert m["sources"]["silhouettes"][0]["count"] == len(load_silhouettes(site["sil"])) >= 6
    for s in m["samples"]:
        image = np.asarray(Image.open(out / s["image"]))
        mask = Image.open(out / s["mask"])
        assert image.shape == (60, 80, 3) and mask.mode == "L" and mask.size == (80, 60)
        values = set(np.unique(np.asarray(mask)))
        assert values <= {0, 255}
        assert (255 in values) <= (s["actors"] > 0)  # person pixels only where people were placed
        assert Image.open(out / s["plate"]).size == (80, 60)
    assert {s["plate"] for s in m["samples"]} == {"plates/plate000.png", "plates/plate001.png"}
    assert sum(s["actors"] > 0 for s in m["samples"]) >= 12
    preview = Image.open(out / "preview.png")
    assert preview.size == (4 * 82, 4 * 62)
    assert re.search(r"compositing: 100%.* 20/20 ", capsys.readouterr().err)  # the bar ends at every sample
    assert not (out / STATE_NAME).exists() and not list(out.rglob(".*tmp*"))
    assert read_manifest(out)["id"] == m["id"]


def test_same_seed_same_bytes_other_seed_differs(site, tmp_path):
    a = build_dataset(site["plates"], site["sil"], tmp_path / "a", 6, SIZE, seed=5, perspective="20:8,59:30").parent
    b = build_dataset(site["plates"], site["sil"], tmp_path / "b", 6, SIZE, seed=5, perspective="20:8,59:30").parent
    c = build_dataset(site["plates"], site["sil"], tmp_path / "c", 6, SIZE, seed=6, perspective="20:8,59:30").parent
    assert _digest(a) == _digest(b)
    assert _digest(a)["images/000000.jpg"] != _digest(c)["images/000000.jpg"]


def test_interrupted_build_resumes_to_identical_bytes(site, tmp_path, monkeypatch):
    args = (site["plates"], [site["sil"]])
    kw = {"perspective": "20:8,59:30", "seed": 2}
    unbroken = build_dataset(*args, tmp_path / "unbroken", 12, SIZE, **kw).parent

    class Stop(Exception):
        pass

    import dataset_builder.build as build_module

    write_sample = build_module._write_sample

    def stop_after_five(compositor, out, i):  # the process dies while writing sample 5
        if i >= 5:
            raise Stop
        write_sample(compositor, out, i)

    broken = tmp_path / "broken"
    monkeypatch.setattr(build_module, "_write_sample", stop_after_five)
    with pytest.raises(Stop):
        build_dataset(*args, broken, 12, SIZE, **kw)
    monkeypatch.undo()
    assert not (broken / MANIFEST_NAME).exists() and (broken / STATE_NAME).exists()
    with pytest.raises(FileNotFoundError, match="rerun the same build"):
        read_manifest(broken)
    written = sorted(p.name for p in (broken / "images").iterdir())
    assert len(written) == 5
    # A half-written sample (e.g. a mask lost) is made again, the others are kept as they are.
    (broken / "masks" / "000004.png").unlink()
    mtime = (broken / "images" / "000001.jpg").stat().st_mtime_ns
    build_dataset(*args, broken, 12, SIZE, **kw)
    assert (broken / "images" / "000001.jpg").stat().st_mtime_ns == mtime
    assert _digest(broken) == _digest(unbroken)


def test_two_workers_give_the_same_dataset(site, tmp_path):
    kw = {"perspective": "20:8,59:30", "seed": 4}
    one = build_dataset(site["plates"], site["sil"], tmp_path / "one", 24, SIZE, workers=1, **kw).parent
    two = build_dataset(site["plates"], site["sil"], tmp_path / "two", 24, SIZE, workers=2, **kw).parent
    assert _digest(one) == _digest(two)


def test_finished_build_is_not_redone_and_other_datasets_are_protected(site, tmp_path):
    out = tmp_path / "ds"
    build_dataset(site["plates"], site["sil"], out, 4, SIZE, perspective="20:8,59:30")
    before = _digest(out)
    build_dataset(site["plates"], site["sil"], out, 4, SIZE, perspective="20:8,59:30")
    assert _digest(out) == before
    with pytest.raises(ValueError, match="different dataset.*--overwrite"):
        build_dataset(site["plates"], site["sil"], out, 4, SIZE, seed=9, perspective="20:8,59:30")
    build_dataset(site["plates"], site["sil"], out, 3, SIZE, seed=9, perspective="20:8,59:30", overwrite=True)
    assert len(list((out / "images").iterdir())) == 3 and read_manifest(out)["seed"] == 9
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a dataset"):
        build_dataset(site["plates"], site["sil"], tmp_path / "busy", 2, SIZE, perspective="20:8,59:30")


def test_perspective_auto_fits_harvested_site_people(site, tmp_path):
    m = build_dataset(site["plates"], [site["sil"], site["harvest"]], tmp_path / "ds", 4, (120, 160),
                      perspective="auto")
    p = read_manifest(m)["params"]["perspective"]
    assert p["origin"] == "fit"
    assert p["slope"] == pytest.approx(0.5, abs=0.05)  # the walkers were drawn with height = 0.5 * row + 5
    assert p["slope"] * 110 + p["intercept"] == pytest.approx(60, abs=3)
    # Output at half size: the model is in output pixels.
    m = build_dataset(site["plates"], [site["sil"], site["harvest"]], tmp_path / "half", 2, (60, 80))
    p = read_manifest(m)["params"]["perspective"]
    assert p["origin"] == "fit" and p["slope"] * 55 + p["intercept"] == pytest.approx(30, abs=2)
    # No site silhouettes: 'auto' is an error, no option falls back to the documented default.
    with pytest.raises(ValueError, match="harvest"):
        build_dataset(site["plates"], site["sil"], tmp_path / "x", 2, SIZE, perspective="auto")
    m = build_dataset(site["plates"], site["sil"], tmp_path / "default", 2, SIZE)
    assert read_manifest(m)["params"]["perspective"]["origin"] == "default"


def test_rejected_silhouettes_are_not_used(site, tmp_path):
    import shutil

    sil = tmp_path / "sil"
    shutil.copytree(site["sil"], sil)
    from dataset_builder.silhouettes import load_index

    names = [s.name for s in load_index(sil)]
    reject(sil, names[1:])
    m = build_dataset(site["plates"], sil, tmp_path / "ds", 2, SIZE, perspective="20:8,59:30")
    assert read_manifest(m)["sources"]["silhouettes"][0]["count"] == 1
    reject(sil, names[:1])
    with pytest.raises(ValueError, match="no accepted person silhouette"):
        build_dataset(site["plates"], sil, tmp_path / "none", 2, SIZE, perspective="20:8,59:30")
    assert not (tmp_path / "none").exists()


def test_bad_inputs(site, tmp_path):
    (tmp_path / "noplates").mkdir()
    with pytest.raises(FileNotFoundError, match="no background images"):
        build_dataset(tmp_path / "noplates", site["sil"], tmp_path / "o", 2, SIZE)
    with pytest.raises(FileNotFoundError, match="silhouettes.json"):
        build_dataset(site["plates"], tmp_path / "noplates", tmp_path / "o", 2, SIZE)
    odd = tmp_path / "odd"
    odd.mkdir()
    Image.fromarray(background(120, 160)).save(odd / "a.png")
    Image.fromarray(background(100, 160)).save(odd / "b.png")
    with pytest.raises(ValueError, match="b.png.*same size"):
        build_dataset(odd, site["sil"], tmp_path / "o", 2, SIZE)
    with pytest.raises(ValueError, match="HxW.*240by320"):
        build_dataset(site["plates"], site["sil"], tmp_path / "o", 2, "240by320")
    with pytest.raises(ValueError, match="at least 16x16"):
        build_dataset(site["plates"], site["sil"], tmp_path / "o", 2, "8x320")
    with pytest.raises(ValueError, match="count"):
        build_dataset(site["plates"], site["sil"], tmp_path / "o", 0, SIZE)
    with pytest.raises(ValueError, match="ROW:HEIGHT"):
        build_dataset(site["plates"], site["sil"], tmp_path / "o", 2, SIZE, perspective="tall")
    assert not (tmp_path / "o").exists()  # nothing half-made by any of these


def test_cli_end_to_end(site, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip", [Person(10, 100, 50, (250, 250, 0), 9.0)], frames=12)
    assert main(["plates", str(clip), "--out", str(tmp_path / "plates"), "--reference",
                 str(clip / "empty_bg000001.png")]) == 0
    out = capsys.readouterr().out
    assert "plate000.png" in out and "mean abs diff" in out
    assert main(["silhouettes", str(clip), "--method", "plate", "--out", str(tmp_path / "sil"),
                 "--sheet", str(tmp_path / "sheet.png")]) == 0
    assert "silhouettes written" in capsys.readouterr().out and (tmp_path / "sheet.png").is_file()
    assert main(["build", "--plates", str(tmp_path / "plates"), "--silhouettes", str(tmp_path / "sil"),
                 str(site["sil"]), "--out", str(tmp_path / "ds"), "--count", "5", "--size", "60x80",
                 "--perspective", "20:8,59:30", "--max-actors", "2"]) == 0
    assert "5 samples (4 train, 1 val) of 60x80" in capsys.readouterr().out
    assert read_manifest(tmp_path / "ds")["params"]["max_actors"] == 2
    # User mistakes: exit code 2 and one line naming the problem.
    assert main(["build", "--plates", str(tmp_path / "nothing"), "--out", str(tmp_path / "x"), "--count", "2"]) == 2
    assert "nothing" in capsys.readouterr().err
    assert main(["silhouettes", str(clip), "--method", "wizard", "--out", str(tmp_path / "s2")]) == 2
    assert "valid: masks, plate" in capsys.readouterr().err
    assert main(["plates", str(clip), "--out", str(tmp_path / "p2"), "--people", "wizard"]) == 2
    assert "wizard" in capsys.readouterr().err and not (tmp_path / "p2").exists()
    name = json.loads((tmp_path / "sil" / "silhouettes.json").read_text())["items"][0]["name"]
    assert main(["reject", str(tmp_path / "sil"), name]) == 0
    assert "1 silhouette(s) rejected" in capsys.readouterr().out


# ---- the real site ------------------------------------------------------------------------------------------------------


def test_pedestrians_site_from_davis_actors(pedestrians, parkour, dance_twirl, tmp_path):
    for clip in (parkour, dance_twirl):
        extract_silhouettes(clip, "masks", tmp_path / clip.name, step=15)
    m = build_dataset(pedestrians / "empty_bg000001.jpg", [tmp_path / "parkour", tmp_path / "dance-twirl"],
                      tmp_path / "ds", 8, (240, 360), seed=0, perspective="30:50,150:90")
    data = read_manifest(m)
    assert data["size"] == [240, 360]
    people = [s for s in data["samples"] if s["actors"] > 0]
    assert people
    for s in people:
        mask = np.asarray(Image.open(tmp_path / "ds" / s["mask"]))
        rows = np.nonzero((mask == 255).any(axis=1))[0]
        assert len(rows) > 0 and rows[-1] >= 30  # feet never above row 30 at this site
    assert (tmp_path / "ds" / "preview.png").stat().st_size > 10_000


def test_working_scale_windows_of_the_scaled_plate(site, tmp_path):
    from humanseg.trainset import load_dataset
    from humanseg.video import read_image

    # 120x160 plates at scale 1 are larger than 1.25 x the 60x80 samples: windows; the perspective is in plate px.
    out = tmp_path / "tiled"
    build_dataset(site["plates"], [site["sil"]], out, 12, SIZE, seed=2, perspective="40:16,119:60",
                  working_scale=1.0)
    m = read_manifest(out)
    assert (m["working_scale"], m["tiled"], m["working_size"]) == (1.0, True, [120, 160])
    assert m["site_plates"] == ["plates/plate000.png", "plates/plate001.png"]
    assert m["params"]["perspective"]["image_height"] == 120
    assert m["params"]["perspective"]["intercept"] == pytest.approx(16 - 40 * 44 / 79)  # line through both refs
    for s in m["samples"]:
        found = re.fullmatch(r"plates/windows/plate(\d{3})-y(\d{5})-x(\d{5})\.png", s["plate"])
        assert found, s["plate"]
        p, wy, wx = (int(v) for v in found.groups())
        assert wy in (0, 7, 14, 21, 28, 35, 42, 49, 56, 60) and wx in (*range(0, 81, 10),)
        whole = read_image(out / m["site_plates"][p])
        assert whole.shape == (120, 160, 3)
        assert np.array_equal(read_image(out / s["plate"]), whole[wy:wy + 60, wx:wx + 80])
        assert Image.open(out / s["image"]).size == (80, 60)
    data = load_dataset(out)
    assert data.plates.shape[1:] == (3, 60, 80)
    assert [data.plate_names[k] for k in data.plate_index.tolist()] == [s["plate"] for s in m["samples"]]
    assert data.plate_array().shape == (120, 160, 3)  # the model keeps the whole plate at frame size

    # A scale at which the plate fits the samples: the build without a scale, and the scale recorded.
    plain, fitted = tmp_path / "plain", tmp_path / "fitted"
    build_dataset(site["plates"], [site["sil"]], plain, 6, SIZE, seed=2, perspective="20:8,59:30")
    build_dataset(site["plates"], [site["sil"]], fitted, 6, SIZE, seed=2, perspective="20:8,59:30",
                  working_scale=0.5)
    mp, mf = read_manifest(plain), read_manifest(fitted)
    assert (mp["working_scale"], mp["tiled"]) == (None, False) and "working_scale" not in mp["params"]
    assert (mf["working_scale"], mf["tiled"], mf["working_size"]) == (0.5, False, [60, 80])
    assert [s["plate"] for s in mf["samples"]] == [s["plate"] for s in mp["samples"]]
    assert _digest(plain / "images") == _digest(fitted / "images")
    with pytest.raises(ValueError, match="working_scale"):
        build_dataset(site["plates"], [site["sil"]], tmp_path / "bad", 4, SIZE, working_scale=0.0)
