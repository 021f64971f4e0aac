"""Bad inputs through every command, as a new user would give them (issue 16).

The table test crosses input kinds (a maker function each) with the commands that take them (an argv template
each): a refused input exits 2 with one line naming the bad value and the fix and leaves no file behind; an odd
but valid one (grayscale, RGBA, 16-bit frames) is accepted. A new command is covered by adding rows. All rows
run through the real command-line entry points in ONE subprocess (start-up costs ~2 s per process), then one
test per finding of the issue: CLI through its own subprocess, the app through ``gradio_client``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _synthetic_site import Person, write_clip
from helpers_dataset import write_tiny_dataset
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
H, W = 48, 64

pytest.register_assert_rewrite("app_fixtures")
from app_fixtures import zero_frame_mp4  # noqa: E402

pytest_plugins = ["app_fixtures"]
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


# --------------------------------------------------------------------------------------------------------------
# Input makers: each writes one kind of input under ``d`` and returns its path.


def _frames(d: Path, arrays: list[np.ndarray]) -> Path:
    d.mkdir(parents=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(d / f"in{i + 1:06d}.png")  # uint16 gray arrays save as 16-bit PNGs
    return d


def _scene(i: int, h: int = H, w: int = W) -> np.ndarray:
    a = np.full((h, w, 3), 90, np.uint8)
    a[10:40, 5 + 5 * i : 20 + 5 * i] = 220  # a bright "person" moving right
    return a


def not_a_video(d: Path) -> Path:
    d.mkdir()
    (d / "notes.mp4").write_text("meeting notes, not a video\n")
    return d / "notes.mp4"


def truncated_video(d: Path) -> Path:
    from humanseg.video import H264Writer

    d.mkdir()
    path = d / "cut.mp4"
    with H264Writer(path, 10) as writer:
        for i in range(12):
            writer.write(_scene(i))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def zero_frames(d: Path) -> Path:
    d.mkdir()
    return zero_frame_mp4(d / "zero.mp4")


def grayscale(d: Path) -> Path:
    return _frames(d / "gray", [_scene(i)[:, :, 0] for i in range(4)])


def rgba(d: Path) -> Path:
    return _frames(d / "rgba", [np.dstack([_scene(i), np.full((H, W), 128, np.uint8)]) for i in range(4)])


def sixteen_bit(d: Path) -> Path:
    return _frames(d / "deep", [_scene(i)[:, :, 0].astype(np.uint16) * 257 for i in range(4)])


def mixed_sizes(d: Path) -> Path:
    return _frames(d / "mixed", [_scene(0), _scene(1), _scene(2, H * 2, W * 2), _scene(3)])


def wrong_size_masks(d: Path) -> Path:
    """A CDnet sequence whose ground truth is half the frames' size."""
    seq = d / "seq"
    _frames(seq / "input", [_scene(i) for i in range(4)])
    (seq / "groundtruth").mkdir()
    for i in range(4):
        Image.fromarray(np.zeros((H // 2, W // 2), np.uint8)).save(seq / "groundtruth" / f"gt{i + 1:06d}.png")
    return seq


def wrong_size_dataset_mask(d: Path) -> Path:
    root = write_tiny_dataset(d / "ds", n=8, n_val=2)
    mask = root / "masks" / "000003.png"
    Image.fromarray(np.zeros((H // 2, W // 2), np.uint8)).save(mask)
    return root


def broken_manifest(d: Path) -> Path:
    root = write_tiny_dataset(d / "ds", n=8, n_val=2)
    (root / "manifest.json").write_text('{"format": "humanseg-dataset/1", "samples": [')
    return root


def empty_backgrounds(d: Path) -> Path:
    (d / "plates").mkdir(parents=True)
    return d / "plates"


def no_person(d: Path) -> Path:
    return _frames(d / "still", [np.full((H, W, 3), 90, np.uint8)] * 6)


def random_checkpoint(d: Path) -> Path:
    d.mkdir()
    (d / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    return d / "random.pt"


def truncated_checkpoint(d: Path) -> Path:
    from humanseg.checkpoint import save_checkpoint
    from humanseg.models import build_model

    d.mkdir()
    path = save_checkpoint(d / "cut.pt", build_model("segnet-tiny"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def silhouettes_none_accepted(d: Path) -> Path:
    """A silhouettes folder whose every silhouette was rejected in review (an empty actor set)."""
    from dataset_builder.silhouettes import extract_silhouettes, reject

    clip = write_clip(d / "clip", [Person(10, 40, 36, (40, 200, 60), 3.0)], frames=3, size=(H, W), seed=2)
    extract_silhouettes(clip, "masks", d / "sil")
    reject(d / "sil", [p.name for p in (d / "sil").glob("*.png")])
    return d / "sil"


def run_with_random_last(d: Path) -> Path:
    """A run folder whose last.pt is random bytes (a disk error, a copy cut short)."""
    random_checkpoint(d).rename(d / "last.pt")
    return d


MAKERS: dict[str, Callable[[Path], Path]] = {
    f.__name__: f
    for f in (
        not_a_video, truncated_video, zero_frames, grayscale, rgba, sixteen_bit, mixed_sizes, wrong_size_masks,
        wrong_size_dataset_mask, broken_manifest, empty_backgrounds, no_person, random_checkpoint,
        truncated_checkpoint, silhouettes_none_accepted, run_with_random_last,
    )
}  # fmt: skip

# --------------------------------------------------------------------------------------------------------------
# Commands: argv templates. {in}: the input, {out}: a fresh output path, {ds}/{plate}/{sil}/{seq}: good inputs.

SEGMENT = ["humanseg", "segment", "{in}", "-s", "mog2", "--out", "{out}", "--no-side-by-side"]
EVALUATE = ["humanseg", "evaluate", "{in}", "-s", "mog2", "--json", "{out}.json"]
ANONYMISE = ["humanseg", "anonymise", "{in}", "-s", "mog2", "--style", "blur", "--out", "{out}.mp4"]
PLATES = ["dataset_builder", "plates", "{in}", "--out", "{out}", "--count", "1"]
SILHOUETTES = ["dataset_builder", "silhouettes", "{in}", "--method", "plate", "--out", "{out}"]
BUILD_PLATES = [
    "dataset_builder",
    "build",
    "--plates",
    "{in}",
    "--silhouettes",
    "{sil}",
    "--out",
    "{out}",
    "--count",
    "2",
]
BUILD_SIL = [
    "dataset_builder",
    "build",
    "--plates",
    "{plate}",
    "--silhouettes",
    "{in}",
    "--out",
    "{out}",
    "--count",
    "2",
]
TRAIN = ["humanseg", "train", "{in}", "--out", "{out}", "--epochs", "1", "--model", "segnet-tiny"]
TRAIN_VAL = [*TRAIN[:2], "{ds}", *TRAIN[3:], "--val", "{in}"]
TRAIN_RESUME = ["humanseg", "train", "{ds}", "--out", "{in}", "--resume"]
EXPORT = ["humanseg", "export", "{in}", "--onnx", "{out}.onnx"]
SEGNET = ["humanseg", "segment", "{seq}", "-s", "segnet", "--checkpoint", "{in}", "--out", "{out}"]
EVALUATE_SEGNET = ["humanseg", "evaluate", "{seq}", "-s", "segnet", "--checkpoint", "{in}"]

VIDEO_COMMANDS = {"segment": SEGMENT, "anonymise": ANONYMISE, "plates": PLATES, "silhouettes": SILHOUETTES}
#: (input kind, command, argv, expected): expected "ok" (exit 0), or a regex the one-line error must match
#: (besides naming the input).
ROWS: list[tuple[str, str, list[str], str]] = [
    *[(kind, cmd, argv, msg) for kind, msg in [
        ("not_a_video", "not a readable video"), ("truncated_video", "truncated"), ("zero_frames", "zero frames"),
        ("mixed_sizes", "differs from the first frame's.*one size"),
    ] for cmd, argv in VIDEO_COMMANDS.items()],
    *[(kind, cmd, argv, "ok") for kind in ("grayscale", "rgba", "sixteen_bit") for cmd, argv in
      {"segment": SEGMENT, "anonymise": ANONYMISE}.items()],
    ("no_person", "silhouettes", SILHOUETTES, "no .*silhouette|nobody|no person"),
    ("wrong_size_masks", "evaluate", EVALUATE, r"mask size 32x24 differs from frame"),
    ("wrong_size_masks", "train --val", TRAIN_VAL, r"mask size 32x24 differs from frame"),
    ("wrong_size_dataset_mask", "train", TRAIN, r"mask is 32x24 but its image .* is 64x48.*rebuild"),
    ("broken_manifest", "train", TRAIN, r"manifest.json is not valid JSON.*rebuild"),
    ("empty_backgrounds", "build", BUILD_PLATES, "no background images.*plates"),
    ("silhouettes_none_accepted", "build", BUILD_SIL, "silhouette"),
    ("run_with_random_last", "train --resume", TRAIN_RESUME, "last.pt is not a readable humanseg checkpoint"),
    *[(kind, cmd, argv, "not a readable humanseg checkpoint.*give a best.pt or last.pt") for kind in ("random_checkpoint", "truncated_checkpoint")
      for cmd, argv in {"export": EXPORT, "segment -s segnet": SEGNET, "evaluate -s segnet": EVALUATE_SEGNET}.items()],
]  # fmt: skip

_DRIVER = """
import contextlib, io, json, sys, traceback
import dataset_builder.cli, humanseg.cli
results = []
for argv in json.loads(sys.stdin.read()):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main = humanseg.cli.main if argv[0] == "humanseg" else dataset_builder.cli.main
            code = main(argv[1:])
    except SystemExit as e:
        code = e.code
    except BaseException:
        code, err = "traceback", io.StringIO(traceback.format_exc())
    results.append({"code": code, "stderr": err.getvalue()})
print(json.dumps(results))
"""


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_rows(rows: list[list[str]], cwd: Path) -> list[dict]:
    """Run each argv through the real CLI entry points in one subprocess; exit code and stderr per row."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER], input=json.dumps(rows), capture_output=True, text=True, cwd=cwd, env=env,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """Good inputs the rows combine with a bad one: a dataset, a plate, a silhouettes folder, a short sequence."""
    from dataset_builder.silhouettes import extract_silhouettes

    root = tmp_path_factory.mktemp("good")
    ds = write_tiny_dataset(root / "ds", n=8, n_val=2)
    seq = write_clip(root / "seq", [Person(10, 30, 30, (220, 40, 40), 4.0)], frames=4, size=(H, W), seed=1)
    actors = write_clip(root / "actors", [Person(10, 40, 36, (40, 200, 60), 3.0)], frames=4, size=(H, W), seed=2)
    extract_silhouettes(actors, "masks", root / "sil")
    return {"ds": ds, "seq": seq, "sil": root / "sil", "plate": ds / "plates"}


def test_bad_inputs_table(good, tmp_path):
    argvs, made = [], []
    for n, (kind, _cmd, template, _expect) in enumerate(ROWS):
        path = MAKERS[kind](tmp_path / f"in{n}")
        made.append(path)
        values = {"in": str(path), "out": str(tmp_path / f"out{n}"), **{k: str(v) for k, v in good.items()}}
        argvs.append([part.format(**values) for part in template])
    before = _files(tmp_path)
    results = run_rows(argvs, tmp_path)
    after = _files(tmp_path)
    problems = []
    for n, ((kind, cmd, _t, expect), path, res) in enumerate(zip(ROWS, made, results, strict=True)):
        left = sorted(f for f in after - before if f == f"out{n}" or f.startswith((f"out{n}/", f"out{n}.")))
        where = f"{kind} -> {cmd}"
        if expect == "ok":
            if res["code"] != 0:
                problems.append(f"{where}: refused a valid input: {res['stderr'][-400:]}")
            continue
        lines = [line for line in res["stderr"].splitlines() if line.startswith("error: ")]
        message = lines[-1] if lines else res["stderr"][-600:]
        if res["code"] != 2:
            problems.append(f"{where}: exit {res['code']} (want 2): {message}")
        elif path.name not in message:
            problems.append(f"{where}: the message does not name {path.name}: {message}")
        elif not __import__("re").search(expect, message):
            problems.append(f"{where}: the message does not say {expect!r}: {message}")
        if left:
            problems.append(f"{where}: left files behind: {left[:5]}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------------------------
# One test per finding of issue 16 (the CLI through its own subprocess).


def cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    module = "dataset_builder" if argv[0] == "dataset_builder" else "humanseg"
    args = argv[1:] if argv[0] in ("dataset_builder", "humanseg") else argv
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.mark.parametrize("minutes", ["inf", "1e308", "nan", "-1"])
def test_1_absurd_time_budgets_are_refused_up_front(good, tmp_path, minutes):
    from humanseg.train import TrainConfig

    with pytest.raises(
        ValueError,
        match=r"minutes must be a number > 0 and at most 525600 .*no time limit, give a number of epochs and no minutes",
    ):
        TrainConfig(minutes=float(minutes)).validate()


def test_1_cli_budgets_infinite_or_too_short_write_nothing(good, tmp_path):
    out = tmp_path / "run"
    res = cli("humanseg", "train", str(good["ds"]), "--out", str(out), "--minutes=inf", "--epochs", "1", cwd=tmp_path)
    assert res.returncode == 2 and "minutes must be a number > 0 and at most 525600 (one year), got inf" in res.stderr
    assert "Traceback" not in res.stderr and not out.exists()
    res = cli("humanseg", "train", str(good["ds"]), "--out", str(out), "--minutes", "1e-9", "--model", "segnet-tiny",
              "--batch-size", "4",
              cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "time budget of 1e-09 minutes ran out before the first training step" in res.stderr
    assert "give --minutes 1 or more" in res.stderr
    assert not out.exists()  # no untrained best.pt, no config.json, no folder


def test_2_validation_sequences_are_checked_before_step_1(good, tmp_path):
    from humanseg.train import TrainConfig, train

    seq = wrong_size_masks(tmp_path / "v")
    seen = []
    with pytest.raises(ValueError, match=r"gt000001.png: mask size 32x24 differs from frame"):
        for ev in train(TrainConfig(model="segnet-tiny", epochs=1, minutes=None), good["ds"], tmp_path / "r", [seq]):
            seen.append(ev.kind)
    assert seen == [] and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["humanseg", "segment", "{seq}", "-s", "mog2", "--out", "{file}"],
        ["humanseg", "segment", "{seq}", "-s", "mog2", "--out", "{file}/sub"],
        ["humanseg", "train", "{ds}", "--out", "{file}/run", "--epochs", "1"],
        ["humanseg", "export", "{ckpt}", "--onnx", "{file}/m.onnx"],
        ["humanseg", "anonymise", "{seq}", "-s", "mog2", "--style", "blur", "--out", "{file}/a.mp4"],
        ["humanseg", "evaluate", "{seq}", "-s", "mog2", "--json", "{file}/r.json"],
        ["humanseg", "evaluate", "{seq}", "-s", "mog2", "--chart", "{file}/c.png"],
        ["humanseg", "evaluate", "{seq}", "-s", "mog2", "--save-masks", "{file}"],
        ["humanseg", "site-benchmark", "{seq}", "--actors", "{seq}", "--minutes", "1", "--out", "{file}"],
        ["dataset_builder", "plates", "{seq}", "--out", "{file}"],
        ["dataset_builder", "silhouettes", "{seq}", "--method", "masks", "--out", "{file}/s"],
        ["dataset_builder", "build", "--plates", "{plate}", "--silhouettes", "{sil}", "--out", "{file}", "--count", "2"],
    ],
    ids=lambda argv: " ".join(argv[:2] + [a for a in argv if a.startswith("--") and a != "--out"][:1]),
)  # fmt: skip
def test_3_an_output_path_that_is_or_lies_under_a_file_fails_before_any_work(good, tmp_path, argv):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me\n")
    ckpt = tmp_path / "tiny.pt"
    from humanseg.checkpoint import save_checkpoint
    from humanseg.models import build_model

    save_checkpoint(ckpt, build_model("segnet-tiny"))
    values = {"file": str(blocker), "ckpt": str(ckpt), **{k: str(v) for k, v in good.items()}}
    before = _files(tmp_path)
    res = cli(*[a.format(**values) for a in argv], cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert f"{blocker}" in res.stderr and (
        "give a path in a folder" in res.stderr or "give a folder path" in res.stderr
    )
    assert _files(tmp_path) == before and blocker.read_text() == "keep me\n"


def test_4_a_killed_runs_temp_checkpoint_is_removed_by_the_next_run(good, tmp_path):
    from humanseg.train import TrainConfig, run_training

    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".last.{int(dead.stdout)}-0123abcd.tmp.pt"
    stale.write_bytes(b"x" * 1000)
    live = out / f".last.{os.getpid()}-0123abcd.tmp.pt"  # a writer still running: never touched
    live.write_bytes(b"y")
    run_training(TrainConfig(model="segnet-tiny", epochs=1, minutes=None, batch_size=4), good["ds"], out)
    assert not stale.exists() and live.exists()
    assert (out / "best.pt").is_file()


def test_4_segment_on_a_folder_whose_images_change_size_writes_no_video(tmp_path):
    folder = mixed_sizes(tmp_path / "f")
    res = cli("humanseg", "segment", str(folder), "-s", "mog2", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert res.returncode == 2 and "in000003.png: frame size 128x96 differs" in res.stderr
    assert "make every image of the folder one size" in res.stderr
    assert not (tmp_path / "o").exists()


def test_5_frames_above_the_pixel_limit_are_refused_naming_the_limit_and_how_to_raise_it(tmp_path, monkeypatch):
    from humanseg.checks import MAX_PIXELS_ENV
    from humanseg.video import VideoError, open_frames

    folder = _frames(tmp_path / "big", [_scene(0), _scene(1)])
    monkeypatch.setenv(MAX_PIXELS_ENV, str(H * W - 1))
    with pytest.raises(VideoError, match=rf"frames of {W}x{H} .* larger than the limit .*{MAX_PIXELS_ENV}={H * W}"):
        open_frames(folder)
    monkeypatch.setenv(MAX_PIXELS_ENV, str(H * W))
    with open_frames(folder) as reader:
        assert len(list(reader)) == 2
    res = cli("dataset_builder", "build", "--plates", str(folder), "--out", str(tmp_path / "ds"), "--count", "2",
              "--size", "4320x7680", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2 and "--size 4320x7680: frames of 7680x4320 (33.2 megapixels)" in res.stderr
    assert MAX_PIXELS_ENV in res.stderr and not (tmp_path / "ds").exists()


def test_5_dataset_masks_of_the_wrong_size_are_refused_naming_the_file(tmp_path):
    from humanseg.trainset import load_dataset

    root = wrong_size_dataset_mask(tmp_path)
    with pytest.raises(ValueError, match=r"masks/000003.png: mask is 32x24 but its image images/000003.png"):
        load_dataset(root, size=(H, W))


def test_6_export_with_a_plate_that_is_not_an_image(tmp_path):
    from humanseg.checkpoint import save_checkpoint
    from humanseg.models import build_model

    ckpt = save_checkpoint(tmp_path / "m.pt", build_model("segnet-fast-plate"))
    notes = not_a_video(tmp_path / "n")
    res = cli("humanseg", "export", str(ckpt), "--rembg", str(tmp_path / "r.onnx"), "--plate", str(notes),
              cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"--plate: {notes}: not an image file" in res.stderr and "give an image file (PNG or JPEG)" in res.stderr
    assert not (tmp_path / "r.onnx").exists()


def test_6_a_broken_manifest_is_named(tmp_path):
    from dataset_builder.build import read_manifest

    root = broken_manifest(tmp_path)
    with pytest.raises(ValueError, match=r"ds/manifest.json is not valid JSON .*rebuild the dataset"):
        read_manifest(root)


# --------------------------------------------------------------------------------------------------------------
# The app (findings 1 and 4), through gradio_client.

SITE = "hardening"


@pytest.fixture(scope="module")
def hard_site(client, app_server, inputs) -> Path:
    client.predict(SITE, api_name="/create_site")
    client.predict(SITE, [handle_file(inputs.plate)], api_name="/add_backgrounds")
    return app_server.workspace / SITE


def handle_file(path):
    from gradio_client import handle_file as hf

    return hf(str(path))


def test_app_actor_clip_with_unreadable_masks_leaves_no_actor_folder(client, hard_site, inputs, tmp_path):
    from gradio_client.exceptions import AppError

    bad = tmp_path / "masks.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("groundtruth/gt000001.png", b"not a png")
        zf.writestr("groundtruth/gt000002.png", b"not a png")
    with pytest.raises(
        AppError, match=r"mask gt000001.png cannot be read as an image; zip the masks as PNG files"
    ) as err:
        client.predict(
            SITE, handle_file(inputs.actor_clip), handle_file(bad), "masks", 1, api_name="/extract_silhouettes"
        )
    assert "masks-" not in str(err.value) and str(hard_site) not in str(err.value)  # no internal temp path
    actors = hard_site / "actors"
    assert not actors.exists() or [p.name for p in actors.iterdir()] == []


def test_app_plate_linking_outside_the_workspace_is_skipped_with_a_warning(client, hard_site, inputs, tmp_path):
    outside = tmp_path / "elsewhere.png"
    shutil.copy(inputs.plate, outside)
    link = hard_site / "plates" / "evil.png"
    link.symlink_to(outside)
    try:
        result = client.predict(SITE, api_name="/site_overview")
        gallery, info = result[2], result[11]
        assert len(gallery) == 1  # the real plate only
        assert "Skipped plates/evil.png: a link to a file outside the workspace" in info
    finally:
        link.unlink()


def test_app_train_tab_refuses_an_absurd_budget_and_leaves_no_run(client, hard_site):
    from gradio_client.exceptions import AppError

    write_tiny_dataset(hard_site / "datasets" / "tiny", n=8, n_val=2)
    runs = hard_site / "runs"
    before = sorted(runs.iterdir()) if runs.exists() else []
    with pytest.raises(AppError, match=r"minutes must be a number > 0 and at most 525600 \(one year\), got 1e\+308"):
        client.predict(SITE, "tiny", "segnet-tiny", 1e308, 0, 4, None, [], api_name="/train")
    assert (sorted(runs.iterdir()) if runs.exists() else []) == before
