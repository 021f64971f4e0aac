"""bench/outline_band.py: each method's F-measure with the truth's outline left unscored, and the share of its errors
on that outline, from a run's saved masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.outline_band import main, outline_band, outline_scores

H, W = 10, 12


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _run(tmp_path: Path) -> Path:
    """One labelled frame with a 6x4 person, and two methods' masks: one drawing the person 1 px too thin, one
    drawing it exactly plus a false blob 3 px away from it."""
    seq = tmp_path / "cam"
    _png(seq / "input" / "in000001.png", np.zeros((H, W, 3), np.uint8))
    label = np.zeros((H, W), np.uint8)
    label[2:8, 3:7] = 255  # 24 person pixels: 16 on its 1-px outline, 8 inside it
    _png(seq / "groundtruth" / "gt000001.png", label)
    out = tmp_path / "out"
    thin = np.zeros((H, W), np.uint8)
    thin[3:7, 4:6] = 255  # the 8 inner pixels: every error on the outline
    blob = label.copy()
    blob[8:10, 9:12] = 255  # 6 false pixels, none within 1 px of the person
    _png(out / "cam" / "masks" / "thin" / "gt000001.png", thin)
    _png(out / "cam" / "masks" / "blob" / "gt000001.png", blob)
    (out / "run.json").write_text(json.dumps({"methods": ["thin", "blob"], "sequences": {"cam": {"path": str(seq)}}}))
    return out


def test_band_lies_either_side_of_the_edge_but_not_along_the_frame_border() -> None:
    person = np.zeros((H, W), bool)
    person[2:8, 3:7] = True
    band = outline_band(person, 1)
    assert band.sum() == 8 * 6 - 4 * 2  # the 1-px ring outside (24) and inside (16) the 6x4 person
    assert band[1, 2] and band[2, 3] and not band[3, 4] and not band[0, 3]
    cut = np.zeros((H, W), bool)
    cut[7:10, 4:7] = True  # a person cut by the lower edge: its row on the border is outline only at its sides
    band = outline_band(cut, 1)
    assert not band[9, 5] and not band[8, 5] and band[9, 4] and band[7, 5]
    assert outline_band(person, 2).sum() == 10 * 8  # 2 px: rows 0-9, columns 1-8; nothing of a 4-px-wide person is away


def test_scores_with_the_outline_unscored_by_hand(tmp_path: Path) -> None:
    table = outline_scores(_run(tmp_path), radius=1)["cam"]
    thin, blob = table["thin"], table["blob"]
    # Thin: 8 of 24 found, nothing false: F 16 / 32; away from the outline all 8 inner pixels found.
    assert thin["whole"]["f_measure"] == pytest.approx(0.5) and thin["whole"]["errors"] == 16
    assert thin["outline"]["errors"] == 16 and thin["away"]["positives"] == 8 and thin["away"]["f_measure"] == 1.0
    # Blob: 24 found, 6 false: F 48 / 54; away: 8 found, the 6 false pixels stay scored: F 16 / 22.
    assert blob["whole"]["f_measure"] == pytest.approx(48 / 54)
    assert blob["away"]["f_measure"] == pytest.approx(16 / 22) and blob["outline"]["errors"] == 0


def test_main_writes_the_json_and_the_table_and_rejects_a_bad_radius(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(tmp_path)
    main([str(out)])
    assert json.loads((out / "outline_band.json").read_text())["cam"]["thin"]["away"]["f_measure"] == 1.0
    printed = capsys.readouterr().out
    assert "| thin | 0.5000 | 1.0000 | 100% |" in printed and "| blob | 0.8889 | 0.7273 | 0% |" in printed
    with pytest.raises(ValueError, match="radius must be"):
        outline_scores(out, radius=0)
