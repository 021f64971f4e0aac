"""`models fetch mediapipe` for real, the model cache, and the MediaPipe selfie segmenter on real people."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from humanseg import model_files
from humanseg.cli import main
from humanseg.segmenters import create_segmenter


@pytest.fixture(scope="session")
def mediapipe_cache(tmp_path_factory) -> Path:
    """A cache folder holding the mediapipe model, fetched for real (URL, else the PyPI wheel)."""
    cache = tmp_path_factory.mktemp("models")
    try:
        model_files.fetch_model("mediapipe", cache, timeout=3.0)
    except RuntimeError as err:  # neither the model URL nor PyPI reachable
        pytest.skip(f"cannot fetch the mediapipe model here: {err}")
    return cache


@pytest.fixture
def segmenter(mediapipe_cache, monkeypatch):
    monkeypatch.setenv(model_files.ENV_VAR, str(mediapipe_cache))
    seg = create_segmenter("mediapipe")
    yield seg
    seg.close()


def test_fetch_writes_a_tflite_model_and_its_source(mediapipe_cache):
    path = mediapipe_cache / "mediapipe_selfie_segmenter.tflite"
    data = path.read_bytes()
    assert data[4:8] == b"TFL3" and len(data) > 100_000
    meta = json.loads((mediapipe_cache / (path.name + ".json")).read_text())
    assert meta["source"] in ("url", "wheel") and meta["licence"] == "Apache-2.0"
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["bytes"] == len(data)
    assert [p.name for p in mediapipe_cache.iterdir() if p.name.endswith(".tmp")] == []  # atomic write
    [row] = model_files.list_cached(mediapipe_cache)
    assert row["present"] and row["bytes"] == len(data) and row["source"] == meta["source"]


def test_fetch_falls_back_to_the_wheel_and_says_so(mediapipe_cache, tmp_path, monkeypatch, capfd):
    model = (mediapipe_cache / "mediapipe_selfie_segmenter.tflite").read_bytes()

    def offline(spec, output_file, timeout):
        raise OSError("Name or service not known")

    monkeypatch.setattr(model_files, "_from_url", offline)
    monkeypatch.setattr(model_files, "_from_wheel", lambda spec, output_file, timeout: output_file.write_bytes(model))
    lines: list[str] = []
    result = model_files.fetch_model("mediapipe", tmp_path, log=lines.append)
    assert result.source == "wheel" and result.path.read_bytes() == model
    assert any("url failed: Name or service not known" in line for line in lines)
    assert any(re.search(r"saved \d+ bytes from wheel", line) for line in lines)
    meta = json.loads((tmp_path / (result.path.name + ".json")).read_text())
    assert meta["source"] == "wheel" and meta["sha256"] == hashlib.sha256(model).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == [result.path.name, result.path.name + ".json"]
    assert capfd.readouterr().err == ""  # only the fetch's own lines: pooch's download log stays quiet
    # A second fetch keeps the cached file and downloads nothing.
    monkeypatch.setattr(model_files, "_from_wheel", offline)
    assert model_files.fetch_model("mediapipe", tmp_path, log=lines.append).source == "cache"


def test_fetch_replaces_a_broken_file_and_reports_all_failures(tmp_path, monkeypatch):
    target = model_files.cached_path("mediapipe", tmp_path)
    target.write_bytes(b"<html>proxy error</html>")
    monkeypatch.setattr(
        model_files, "_from_url", lambda spec, output_file, timeout: output_file.write_bytes(b"<html>not a model</html>")
    )

    def no_pip(spec, output_file, timeout):
        raise RuntimeError("pip: no network")

    monkeypatch.setattr(model_files, "_from_wheel", no_pip)
    with pytest.raises(RuntimeError, match="url: the file obtained is not a TFLite model.*wheel: pip: no network"):
        model_files.fetch_model("mediapipe", tmp_path, log=lambda line: None)
    assert target.read_bytes() == b"<html>proxy error</html>"  # nothing half-written over it
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary or set-aside file left


def test_forced_fetch_replaces_a_valid_file(tmp_path, monkeypatch):
    target = model_files.cached_path("mediapipe", tmp_path)
    target.write_bytes(b"1234TFL3 old model")
    new = b"1234TFL3 new model"
    monkeypatch.setattr(model_files, "_from_url", lambda spec, output_file, timeout: output_file.write_bytes(new))
    assert model_files.fetch_model("mediapipe", tmp_path, log=lambda line: None).source == "cache"
    assert target.read_bytes() == b"1234TFL3 old model"
    result = model_files.fetch_model("mediapipe", tmp_path, force=True, log=lambda line: None)
    assert result.source == "url" and target.read_bytes() == new
    assert target.stat().st_mode & 0o777 == 0o644  # readable like any downloaded file


def test_missing_model_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv(model_files.ENV_VAR, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"run `python -m humanseg models fetch mediapipe`"):
        create_segmenter("mediapipe")
    with pytest.raises(FileNotFoundError, match="model file not found.*nope.tflite"):
        create_segmenter("mediapipe", model_path=tmp_path / "nope.tflite")
    with pytest.raises(ValueError, match="unknown model 'sam'; known models: mediapipe"):
        model_files.fetch_model("sam", tmp_path)


def test_cache_folder_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(model_files.ENV_VAR, raising=False)
    assert model_files.cache_dir() == Path("~/.cache/humanseg/models").expanduser()
    monkeypatch.setenv(model_files.ENV_VAR, str(tmp_path))
    assert model_files.cache_dir() == tmp_path
    assert model_files.cache_dir(tmp_path / "x") == tmp_path / "x"


def test_models_cli_list_and_fetch(mediapipe_cache, tmp_path, capsys):
    assert main(["models", "list", "--cache", str(mediapipe_cache)]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"mediapipe\s+cached\s+\S+mediapipe_selfie_segmenter.tflite \(\d+ bytes, source: (url|wheel)\)", out
    )
    assert main(["models", "list", "--cache", str(tmp_path)]) == 0
    assert f"missing  (python -m humanseg models fetch mediapipe --cache {tmp_path})" in capsys.readouterr().out
    assert main(["models", "fetch", "mediapipe", "--cache", str(mediapipe_cache)]) == 0
    assert "already cached" in capsys.readouterr().out


def _iou(pred: np.ndarray, truth: np.ndarray) -> float:
    return float((pred & truth).sum() / (pred | truth).sum())


def test_segments_the_dancer(segmenter, dance_twirl):
    ious = []
    for number in (0, 40, 80):
        frame = np.asarray(Image.open(dance_twirl / "JPEGImages" / f"{number:05d}.jpg").convert("RGB"))
        truth = np.asarray(Image.open(dance_twirl / "Annotations" / f"{number:05d}.png").convert("L")) > 127
        prob = segmenter.segment(frame)
        assert prob.shape == truth.shape == (480, 854) and prob.dtype == np.float32
        assert prob.min() >= 0.0 and prob.max() <= 1.0
        ious.append(_iou(prob > 0.5, truth))
    # Measured 0.72, 0.52, 0.68 (the model's mask is coarse, 256x256, and misses the flying hair/arms).
    assert min(ious) > 0.45 and np.mean(ious) > 0.6, ious


def test_f_measure_on_cavignal(segmenter, cavignal):
    """One person outdoors: the generic model is strong here (0.951 measured; plate-diff gets ~0.40)."""
    tp = fp = fn = 0
    for gt_path in sorted((cavignal / "groundtruth").iterdir()):
        number = int(re.findall(r"\d+", gt_path.stem)[-1])
        if number == 0:
            continue  # SBI frame 0 masks are unreliable
        [image] = (cavignal / "input").glob(f"*_{number:06d}.png")
        label = np.asarray(Image.open(gt_path).convert("L"))
        pred = segmenter.segment(np.asarray(Image.open(image).convert("RGB"))) > 0.5
        valid, pos = np.isin(label, (0, 50, 255)), label == 255
        tp += int((pred & pos & valid).sum())
        fp += int((pred & ~pos & valid).sum())
        fn += int((~pred & pos & valid).sum())
    f = 2 * tp / (2 * tp + fp + fn)
    assert f > 0.9, f


def test_closed_segmenter_refuses_frames(segmenter):
    segmenter.close()
    with pytest.raises(RuntimeError, match="closed"):
        segmenter.segment(np.zeros((16, 16, 3), np.uint8))
