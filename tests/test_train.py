"""Training: it learns, it resumes exactly, it streams events, it validates on real frames, the CLI drives it."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch
from helpers_dataset import trained_tiny_run, write_tiny_dataset

from humanseg.checkpoint import load_checkpoint, read_checkpoint
from humanseg.models import compose_input
from humanseg.train import TrainConfig, TrainEvent, lr_at, resume_config, run_training, train
from humanseg.trainset import augment_batch, class_weights, imperfect_plates, load_dataset
from humanseg.video import read_image

# One CPU thread: on a shared 2-core machine a second thread mostly waits for a busy core.
TINY = {"model": "segnet-tiny", "size": (48, 64), "batch_size": 4, "minutes": None, "threads": 1}


def _iou(model, data, split):
    idx = data.indices(split)
    plates = data.plates[data.plate_index[idx]]
    x, target, plate = augment_batch(data.images[idx], data.masks[idx], plates, "none", torch.Generator())
    pred = model.predict(compose_input(x, plate, model.config.inputs)) > 0.5
    truth = target.bool()
    return float((pred & truth).sum() / (pred | truth).sum())


def test_tiny_model_overfits_tiny_set():
    dataset, run = trained_tiny_run()
    model, info = load_checkpoint(run / "last.pt")
    data = load_dataset(dataset, size=(48, 64))
    assert _iou(model, data, "train") > 0.9
    assert info.step == 96 and info.dataset_id == data.id
    # The files a user opens after a run.
    assert {p.name for p in run.iterdir()} == {"best.pt", "last.pt", "history.json", "curves.png", "config.json"}
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((run / "history.json").read_text())
    losses = [r["loss"] for r in history if "loss" in r]
    assert len(losses) == 96 and np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    val_rows = [r for r in history if "val_f" in r]
    assert [r["step"] for r in val_rows] == [96] and val_rows[0]["val_f"] == val_rows[0]["composite_f"]
    assert 0.0 <= val_rows[0]["val_f"] <= 1.0
    config = json.loads((run / "config.json").read_text())
    assert config["model_config"]["input_size"] == [48, 64] and config["device"].startswith("cpu")


def test_resume_continues_exactly(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n=10, n_val=2)
    # Default augmentation and the default schedule, so the resumed run must restore batch order,
    # augmentation randomness, optimizer moments and the schedule position to match.
    config = TrainConfig(**TINY, epochs=4, val_every=3, seed=3)  # 2 steps/epoch: 8 steps
    run_training(config, dataset, tmp_path / "whole")

    stop = threading.Event()
    for ev in train(config, dataset, tmp_path / "split", stop=stop):
        if ev.kind == "step" and ev.step == 4:
            stop.set()
        if ev.kind == "done":
            assert ev.message == "stopped on request" and ev.step == 4
    assert read_checkpoint(tmp_path / "split" / "last.pt")["step"] == 4
    done = run_training(config, dataset, tmp_path / "split", resume=True)
    assert done.step == 8

    whole = read_checkpoint(tmp_path / "whole" / "last.pt")
    split = read_checkpoint(tmp_path / "split" / "last.pt")
    for name, tensor in whole["model_state"].items():
        assert torch.equal(tensor, split["model_state"][name]), name
    assert split["data_order"] == {"seed": 3, "epoch": 4, "batch_in_epoch": 0, "steps_per_epoch": 2, "world_size": 1}
    # The history of the resumed run continues the first one.
    assert [r["step"] for r in split["history"] if "loss" in r] == list(range(1, 9))


def test_events_stream(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n=10, n_val=2)
    events = list(train(TrainConfig(**TINY, epochs=2, workers=2), dataset, tmp_path / "run"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert events[0].metrics == {"train_samples": 8, "val_samples": 2, "steps_per_epoch": 2}
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert all(e.total_steps == 4 and e.loss > 0 and e.lr > 0 and e.images_per_s > 0 for e in steps)
    assert [e.epoch for e in steps] == [0.5, 1.0, 1.5, 2.0]
    vals = [e for e in events if e.kind == "val"]
    assert [e.step for e in vals] == [2, 4]
    assert set(vals[0].metrics) >= {"composite_loss", "composite_iou", "composite_f", "val_f"}
    assert vals[0].val_f == vals[0].metrics["val_f"] == vals[0].metrics["composite_f"]
    saved = [e.path for e in events if e.kind == "checkpoint"]
    assert str(tmp_path / "run" / "last.pt") in saved
    assert events[-1].path == str(tmp_path / "run" / "best.pt") and events[-1].message == "epoch limit reached"
    assert all(e.device.startswith("cpu") for e in events)
    assert all(e.describe() and "\n" not in e.describe() for e in events)  # one log line per event


def test_events_describe_themselves():
    counts = {"train_samples": 8, "val_samples": 2, "steps_per_epoch": 2}
    start = TrainEvent("start", device="cpu (1 thread)", metrics=counts, message="resumed at step 4")
    assert start.describe() == (
        "start on cpu (1 thread): 8 training / 2 validation images, 2 steps per epoch (resumed at step 4)"
    )
    step = TrainEvent("step", step=3, epoch=1.5, loss=0.25, lr=1e-3, images_per_s=12.34)
    assert step.describe() == "step 3 (epoch 1.50): loss 0.2500, lr 1.00e-03, 12.3 images/s"
    val = TrainEvent("val", step=4, metrics={"composite_f": 0.5, "real_f": 0.75})
    assert val.describe() == "validation at step 4: composite_f 0.500, real_f 0.750"
    saved = TrainEvent("checkpoint", path="/runs/a/best.pt", message="best (real_f 0.7500)")
    assert saved.describe() == "saved best.pt (best (real_f 0.7500))"
    done = TrainEvent("done", step=8, message="epoch limit reached", path="/runs/a/best.pt")
    assert done.describe() == "done at step 8: epoch limit reached; model: /runs/a/best.pt"
    with pytest.raises(ValueError, match="valid: start, step, val, checkpoint, done"):
        TrainEvent("epoch").describe()


def test_time_budget_stops_the_run(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n=6, n_val=2)
    config = TrainConfig(**{**TINY, "minutes": 0.02}, val_every=10_000)  # 1.2 s, no epoch limit
    done = run_training(config, dataset, tmp_path / "run")
    assert done.message == "time budget used" and done.step >= 1
    assert 1.2 <= done.elapsed_s < 30
    assert (tmp_path / "run" / "best.pt").is_file()


def test_stop_before_first_step_saves_last(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n=6, n_val=2)
    stop = threading.Event()
    stop.set()
    done = run_training(TrainConfig(**TINY, epochs=5), dataset, tmp_path / "run", stop=stop)
    assert done.step == 0 and done.message == "stopped on request"
    assert read_checkpoint(tmp_path / "run" / "last.pt")["step"] == 0


def test_refusals_name_the_fix(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n=6, n_val=2)
    config = TrainConfig(**TINY, epochs=1)
    run_training(config, dataset, tmp_path / "run")
    with pytest.raises(ValueError, match="--resume"):
        list(train(config, dataset, tmp_path / "run"))
    with pytest.raises(ValueError, match="lr: saved 0.001, given 0.01"):
        list(train(config.replace(lr=0.01), dataset, tmp_path / "run", resume=True))
    other = write_tiny_dataset(tmp_path / "other", n=6, n_val=2, seed=5)
    with pytest.raises(ValueError, match="dataset id"):
        list(train(config.replace(epochs=2), other, tmp_path / "run", resume=True))
    with pytest.raises(FileNotFoundError, match="last.pt"):
        list(train(config, dataset, tmp_path / "nothing", resume=True))
    with pytest.raises(ValueError, match="--batch-size 4"):
        list(train(config.replace(batch_size=16), dataset, tmp_path / "big"))
    with pytest.raises(FileNotFoundError, match="no_dataset"):
        list(train(config, tmp_path / "no_dataset", tmp_path / "x"))
    with pytest.raises(ValueError, match="valid: adamw, adam"):
        TrainConfig(optimizer="sgd").validate()
    with pytest.raises(ValueError, match="minutes"):
        TrainConfig(minutes=None, epochs=None).validate()


def test_plate_model_trains_and_stores_the_plate(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n=8, n_val=2, n_plates=2)
    config = TrainConfig(**{**TINY, "model": "unet-fast-plate"}, epochs=1, plate="plate001.png")
    run_training(config, dataset, tmp_path / "run")
    model, info = load_checkpoint(tmp_path / "run" / "best.pt")
    assert model.config.inputs == "frame+plate+diff" and model.config.input_size == (48, 64)
    expected = load_dataset(dataset, size=(24, 32)).plate_array("plate001.png")
    assert np.array_equal(info.plate, expected)
    # The plate as the dataset stores it, not resized to the training size.
    assert np.array_equal(info.plate, read_image(dataset / "plates" / "plate001.png"))
    assert info.working_scale is None  # a dataset without a working scale: the whole frame, as before


def test_checkpoint_carries_the_datasets_working_scale(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n=6, n_val=2)
    manifest_path = dataset / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["working_scale"] = 0.5  # what build_dataset records for a site whose people are ~180 px tall
    manifest_path.write_text(json.dumps(manifest))
    run_training(TrainConfig(**TINY, epochs=1), dataset, tmp_path / "run")
    for name in ("best.pt", "last.pt"):
        assert load_checkpoint(tmp_path / "run" / name)[1].working_scale == 0.5


def test_resume_config_extends_the_budgets():
    _, run = trained_tiny_run()
    saved = read_checkpoint(run / "last.pt")  # 96 steps of 3 per epoch: 32 epochs done, no time budget
    assert resume_config(run) == TrainConfig.from_dict(saved["train_config"])
    assert resume_config(run, epochs=40).epochs == 40  # absolute, as the CLI's --epochs
    more = resume_config(run, more_epochs=5, more_minutes=2.0, minutes=None)
    assert more.epochs == 32 + 5 and more.minutes == pytest.approx(saved["elapsed_s"] / 60 + 2.0)
    assert more.replace(epochs=None, minutes=None) == resume_config(run, epochs=None)


def test_frame_only_model_stores_no_plate():
    _, run = trained_tiny_run()
    assert read_checkpoint(run / "best.pt")["plate"] is None


def test_validation_on_a_real_sequence(tmp_path, pedestrians):
    dataset = write_tiny_dataset(tmp_path / "data", n=6, n_val=2)
    events = list(train(TrainConfig(**TINY, epochs=1), dataset, tmp_path / "run", val_sequences=[pedestrians]))
    val = next(e for e in events if e.kind == "val")
    assert set(val.metrics) >= {"f/pedestrians", "real_f", "composite_iou", "composite_f"}
    assert 0.0 <= val.metrics["real_f"] <= 1.0 and val.val_f == val.metrics["real_f"] == val.metrics["val_f"]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["val_f"] for r in history if "val_f" in r] == [val.metrics["real_f"]]  # what curves.png plots
    assert read_checkpoint(tmp_path / "run" / "best.pt")["best_metric"] == "real_f"


def test_cli_paper_recipe(tmp_path, capsys):
    from humanseg.cli import main

    dataset = write_tiny_dataset(tmp_path / "data", n=6, n_val=2)
    out = tmp_path / "run"
    argv = ["train", str(dataset), "--out", str(out), "--model", "segnet-tiny", "--size", "48x64",
            "--epochs", "1", "--batch-size", "2", "--recipe", "paper", "--seed", "4", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "device: cpu" in captured.err and "epoch limit reached after 2 steps" in captured.out
    saved = read_checkpoint(out / "last.pt")["train_config"]
    assert (saved["optimizer"], saved["lr"], saved["loss"], saved["augment"]) == ("adam", 1e-5, "weighted-ce", "paper")
    assert saved["minutes"] is None and saved["seed"] == 4 and saved["recipe"] == "paper"
    # Resuming takes the saved options; --epochs extends the run.
    assert main(["train", str(dataset), "--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert read_checkpoint(out / "last.pt")["step"] == 4


def test_cli_rejects_bad_size():
    from humanseg.cli.train import parse_size

    assert parse_size("240x320") == (240, 320)
    with pytest.raises(Exception, match="HEIGHTxWIDTH"):
        parse_size("240by320")


def test_class_weights_by_hand():
    masks = torch.tensor([[[0, 0], [0, 0]], [[1, 1], [0, 0]]], dtype=torch.uint8)
    # Background: 6 px over 2 images of 4 px -> 0.75; person: 2 px over 1 image -> 0.5; median 0.625.
    assert class_weights(masks, "median-frequency").tolist() == pytest.approx([0.625 / 0.75, 0.625 / 0.5])
    # Inverse frequency: 8 px / (2 classes x count).
    assert class_weights(masks, "inverse-frequency").tolist() == pytest.approx([8 / 12, 8 / 4])
    with pytest.raises(ValueError, match="both classes"):
        class_weights(torch.zeros(1, 2, 2, dtype=torch.uint8))


def test_lr_schedules():
    one = TrainConfig(lr=1.0, schedule="onecycle")
    assert lr_at(one, 0.0) == pytest.approx(1 / 25)
    assert lr_at(one, 0.25) == pytest.approx(1.0)
    assert lr_at(one, 1.0) == pytest.approx(1 / 25 / 1e4)
    cos = TrainConfig(lr=1.0, schedule="cosine")
    assert lr_at(cos, 0.05) == pytest.approx(1.0) and lr_at(cos, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(cos, 0.525) == pytest.approx(0.5)
    assert lr_at(TrainConfig(lr=0.3, schedule="constant"), 0.7) == 0.3
    assert all(lr_at(one, p / 100) <= 1.0 for p in range(101))
    assert not math.isnan(lr_at(one, 2.0))


def test_augmentation_keeps_frame_mask_and_plate_aligned():
    rng = np.random.default_rng(0)
    plate = torch.from_numpy(rng.integers(60, 120, (2, 3, 48, 64), dtype=np.uint8))
    mask = torch.zeros(2, 48, 64, dtype=torch.uint8)
    mask[:, 10:30, 20:34] = 1
    frame = torch.where(mask.bool()[:, None], torch.tensor(250, dtype=torch.uint8), plate)
    x, y, p = augment_batch(frame, mask, plate, "paper", torch.Generator().manual_seed(1))
    assert x.shape == (2, 3, 48, 64) and y.dtype == torch.int64 and set(y.unique().tolist()) <= {0, 1}
    diff = (x - p).abs().mean(1)
    inside, outside = diff[y.bool()], diff[~y.bool()]
    assert inside.mean() > 0.4 and outside.mean() < 0.02  # the person moved with its mask; plate with frame
    again = augment_batch(frame, mask, plate, "paper", torch.Generator().manual_seed(1))
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])  # a seeded generator reproduces the batch
    xd, yd, pd = augment_batch(frame, mask, plate, "default", torch.Generator().manual_seed(2))
    assert 0.0 <= float(xd.min()) and float(xd.max()) <= 1.0 and pd.shape == xd.shape
    assert not torch.equal(xd, x)
    # The default mode (flips, scale/shift, colour, blur, noise) on a plate of 8-px stripes, where any
    # misalignment between frame and plate shows as a large difference.
    stripes = torch.where((torch.arange(64) // 4) % 2 == 0, 60, 200).to(torch.uint8).expand(2, 3, 48, 64)
    frame = torch.where(mask.bool()[:, None], torch.tensor(250, dtype=torch.uint8), stripes)
    xd, yd, pd = augment_batch(frame, mask, stripes, "default", torch.Generator().manual_seed(2))
    for i in range(2):
        diff, person = (xd[i] - pd[i]).abs().mean(0), yd[i].bool()
        assert diff[person].mean() > 0.2 and diff[~person].mean() < 0.1  # the mask on the person; plate = frame
        unmoved = (xd[i] - stripes[i].float() / 255).abs().mean(0)
        assert unmoved[~person].mean() > 0.15  # ... because the plate moved with the frame


def test_imperfect_plates_hold_standing_people_and_ghosts():
    frames = torch.zeros(2, 3, 8, 8)
    frames[0, :, 1:4, 1:4] = 1.0  # sample 0: a person top left
    frames[1, :, 5:8, 5:8] = 0.5  # sample 1: a person bottom right
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, :, 1:4, 1:4] = 1.0
    masks[1, :, 5:8, 5:8] = 1.0
    plates = torch.full((2, 3, 8, 8), 0.2)
    gen = torch.Generator().manual_seed(0)
    # Stationary: the person is in the plate too, exactly where the frame has them (label unchanged).
    still = imperfect_plates(frames, masks, plates, gen, stationary=1.0, ghost=0.0)
    assert torch.equal(still[:, :, masks[0, 0].bool()][0], frames[0][:, masks[0, 0].bool()])
    assert torch.equal(still * (1 - masks), plates * (1 - masks))
    # Ghost: sample 0's plate gets sample 1's person, where sample 0's frame shows only background.
    ghost = imperfect_plates(frames, masks, plates, gen, stationary=0.0, ghost=1.0)
    assert torch.allclose(ghost[0, :, 5:8, 5:8], torch.tensor(0.5)) and torch.equal(ghost[0, :, :5], plates[0, :, :5])
    assert torch.allclose(ghost[1, :, 1:4, 1:4], torch.tensor(1.0))
    # Neither: plates untouched.
    assert torch.equal(imperfect_plates(frames, masks, plates, gen, stationary=0.0, ghost=0.0), plates)
