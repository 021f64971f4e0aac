"""bench/edge_band.py: each method's F-measure near the frame's border and inside, from a run's saved masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.edge_band import border_band, edge_scores, main

H, W = 20, 30


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _run(tmp_path: Path) -> Path:
    """A CDnet-layout sequence of one labelled frame and a run folder with two methods' saved masks."""
    seq = tmp_path / "cam"
    _png(seq / "input" / "in000001.png", np.zeros((H, W, 3), np.uint8))
    label = np.zeros((H, W), np.uint8)
    label[4:14, 0:4] = 255  # a person at the left edge: 20 px in the band (2 px wide), 20 inside it
    label[8:14, 12:17] = 255  # a person inside: 30 px
    label[15:20, 25:30] = 85  # unscored, even where a method marks it
    _png(seq / "groundtruth" / "gt000001.png", label)
    out = tmp_path / "out"
    site = np.zeros((H, W), np.uint8)
    site[4:14, 2:4] = 255  # misses the 20 band pixels of the edge person, finds its 20 inner ones
    site[8:14, 12:17] = 255
    site[15:20, 25:30] = 255
    plate = np.zeros((H, W), np.uint8)
    plate[4:14, 0:4] = 255  # finds the edge person whole
    plate[0:2, 10:20] = 255  # and 20 false pixels in the band
    _png(out / "cam" / "masks" / "site" / "gt000001.png", site)
    _png(out / "cam" / "masks" / "plate" / "gt000001.png", plate)
    run = {"methods": ["site", "plate", "absent"], "sequences": {"cam": {"path": str(seq)}}}
    (out / "run.json").write_text(json.dumps(run))
    return out


def test_band_is_the_pixels_near_the_border() -> None:
    band = border_band((5, 6), 2)
    assert band.sum() == 5 * 6 - 1 * 2 and not band[2, 2:4].any() and band[0].all() and band[:, -1].all()


def test_scores_split_at_the_band_by_hand(tmp_path: Path) -> None:
    table = edge_scores(_run(tmp_path), band=0.1)  # 2 px of a 20-row frame
    site, plate = table["cam"]["site"], table["cam"]["plate"]
    assert "absent" not in table["cam"]  # a method without saved masks has no row
    # Band: 20 person pixels; the site finds none, plate-diff all with 20 false ones (P 0.5, R 1).
    assert site["edge"]["positives"] == 20 and site["edge"]["recall"] == 0.0
    assert plate["edge"]["f_measure"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    # Inside: 20 + 30 person pixels; the site finds all (the 85 pixels are not counted), plate-diff 20 of 50.
    assert site["inside"]["positives"] == 50 and site["inside"]["f_measure"] == pytest.approx(1.0)
    assert plate["inside"]["recall"] == pytest.approx(0.4) and plate["inside"]["precision"] == pytest.approx(1.0)


def test_main_writes_the_json_and_rejects_a_bad_band(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(tmp_path)
    main([str(out)])
    assert json.loads((out / "edge_band.json").read_text())["cam"]["site"]["inside"]["f_measure"] == 1.0
    assert "| site | 0.000 | 1.000 |" in capsys.readouterr().out
    with pytest.raises(ValueError, match="band must be"):
        edge_scores(out, band=0.5)
    with pytest.raises(SystemExit, match="run.json not found"):
        main([str(tmp_path)])
