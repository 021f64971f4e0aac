"""ONNX export (dynamic size, parity with torch) and the rembg u2net_custom graph, run through rembg itself."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers_dataset import add_person, make_plate, trained_tiny_run

from humanseg.checkpoint import save_checkpoint
from humanseg.export import (
    REMBG_SIZE,
    RembgGraph,
    export_onnx,
    export_rembg,
    onnx_max_difference,
    resample_matrix,
)
from humanseg.models import ModelConfig, build_model
from humanseg.segmenters.segnet import SegNetSegmenter
from humanseg.video import read_image


@pytest.fixture(params=["segnet", "unet", "unet-prior"])
def plate_checkpoint(tmp_path, request):
    torch.manual_seed(0)
    arch, prior = request.param.split("-")[0], request.param.endswith("prior")
    config = ModelConfig(arch, width=0.0625, inputs="frame+plate+diff", input_size=(48, 64), prior=prior)
    model = build_model(config)
    if prior:  # the last layer starts at zero: give it weights so the network's part is exported too
        torch.nn.init.normal_(model.head[-1].weight, std=0.05)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 9, 48, 64))  # non-trivial BN statistics
    plate = make_plate((48, 64), np.random.default_rng(1))
    return save_checkpoint(tmp_path / "plate.pt", model.eval(), plate=plate), plate


def test_onnx_matches_torch_at_any_size(tmp_path):
    _, run = trained_tiny_run()
    path = export_onnx(run / "best.pt", tmp_path / "model.onnx")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["frame"] and [o.name for o in graph.output] == ["person"]
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    for size in [(48, 64), (37, 53), (121, 161)]:
        assert onnx_max_difference(run / "best.pt", path, size) < 1e-4


def test_onnx_plate_model_takes_the_plate_as_input(tmp_path, plate_checkpoint):
    ckpt, _ = plate_checkpoint
    path = export_onnx(ckpt, tmp_path / "plate.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frame", "plate"]
    assert onnx_max_difference(ckpt, path, (48, 64)) < 1e-4
    assert onnx_max_difference(ckpt, path, (70, 90)) < 1e-4
    out = session.run(None, {"frame": np.random.rand(2, 3, 40, 50).astype(np.float32),
                             "plate": np.random.rand(2, 3, 40, 50).astype(np.float32)})[0]  # fmt: skip
    assert out.shape == (2, 1, 40, 50)


def _frame_with_person(dataset, name: str) -> np.ndarray:
    # A frame 4x the training size. Its brightest value is 255, as in real footage: rembg divides by the
    # image's maximum, which the graph can only undo when that maximum is 255 (see humanseg.export).
    image = cv2.resize(read_image(dataset / "images" / f"{name}.png"), (256, 192), interpolation=cv2.INTER_LINEAR)
    image[-1, -1] = 255
    return image


def test_rembg_runs_the_model_as_u2net_custom(tmp_path, monkeypatch):
    import rembg

    dataset, run = trained_tiny_run()
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))  # rembg loads custom models only from its model folder
    path = export_rembg(run / "best.pt", tmp_path / "humanseg.onnx")
    session = rembg.new_session("u2net_custom", model_path=str(path))
    reference = SegNetSegmenter(run / "best.pt")
    for name in ("000001", "000003"):
        frame = _frame_with_person(dataset, name)
        mask = np.asarray(rembg.remove(frame, session=session, only_mask=True)).astype(np.float32) / 255
        assert mask.shape == frame.shape[:2]
        prob = reference.segment(frame)
        a, b = mask > 0.5, prob > 0.5
        assert b.sum() > 500  # a person is there
        assert (a & b).sum() / (a | b).sum() > 0.95
        assert np.abs(mask - prob).mean() < 0.02
    # An empty scene stays empty: the corner anchors stop rembg's min-max stretch from amplifying noise.
    empty = _frame_with_person(dataset, "000000")  # sample 0 shows the bare plate (empty_every=5)
    mask = np.asarray(rembg.remove(empty, session=session, only_mask=True)).astype(np.float32) / 255
    assert reference.segment(empty).max() < 0.5
    assert (mask > 0.5).sum() <= 4 and mask.mean() < 0.01


def test_rembg_plate_model_bakes_the_plate_in(tmp_path, plate_checkpoint):
    ckpt, plate = plate_checkpoint
    rng = np.random.default_rng(3)
    frame, _ = add_person(cv2.resize(plate, (REMBG_SIZE, REMBG_SIZE)), rng)
    x = ((frame / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)[None].astype(np.float32)

    outputs = []
    for name, given in (("own", None), ("grey", np.full((48, 64, 3), 128, np.uint8))):
        path = export_rembg(ckpt, tmp_path / f"{name}.onnx", plate=given)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        from humanseg.checkpoint import load_checkpoint

        model, _ = load_checkpoint(ckpt)
        with torch.inference_mode():
            ref = RembgGraph(model, plate if given is None else given)(torch.from_numpy(x)).numpy()
        assert got.shape == (1, 1, REMBG_SIZE, REMBG_SIZE)
        assert np.abs(got - ref).max() < 1e-4
        assert got[0, 0, 0, 0] == 1.0 and got[0, 0, 0, 1] == 0.0  # the min/max anchors
        outputs.append(got)
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-3  # the baked plate is used


def test_rembg_export_refuses_without_a_plate(tmp_path):
    model = build_model(ModelConfig("segnet", width=0.0625, inputs="frame+plate", input_size=(32, 32)))
    ckpt = save_checkpoint(tmp_path / "noplate.pt", model)
    with pytest.raises(ValueError, match="--plate IMAGE"):
        export_rembg(ckpt, tmp_path / "x.onnx")
    frame_ckpt = save_checkpoint(tmp_path / "frame.pt", build_model(ModelConfig("segnet", width=0.0625)))
    with pytest.raises(ValueError, match="drop the plate"):
        export_rembg(frame_ckpt, tmp_path / "y.onnx", plate=np.zeros((8, 8, 3), np.uint8))


def test_resample_matrices_match_opencv():
    signal = np.random.default_rng(0).random(320).astype(np.float32)
    for n_out, interp in ((48, cv2.INTER_AREA), (100, cv2.INTER_AREA), (640, cv2.INTER_LINEAR)):
        ours = resample_matrix(320, n_out) @ signal
        theirs = cv2.resize(signal[None], (n_out, 1), interpolation=interp)[0]
        assert np.abs(ours - theirs).max() < 1e-4, n_out


def test_cli_export(tmp_path, capsys):
    from humanseg.cli import main

    _, run = trained_tiny_run()
    assert (
        main(["export", str(run / "best.pt"), "--onnx", str(tmp_path / "a.onnx"), "--rembg", str(tmp_path / "b.onnx")])
        == 0
    )
    out = capsys.readouterr().out
    assert "max |onnxruntime - torch|" in out and "u2net_custom" in out
    assert (tmp_path / "a.onnx").is_file() and (tmp_path / "b.onnx").is_file()
    assert main(["export", str(run / "best.pt")]) == 2  # nothing to export: a one-line error
