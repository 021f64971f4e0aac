"""Two CPU processes under torchrun (gloo DistributedDataParallel) train one model; only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from helpers_dataset import write_tiny_dataset

from humanseg.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_torchrun_two_processes(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", n=14, n_val=2)  # 12 train -> 6 per process
    out, check = tmp_path / "run", tmp_path / "check"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # The worker runs `python -m humanseg train` and records each rank's weights hash and written files.
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(ROOT / "tests" / "ddp_worker.py"), str(check), "train", str(dataset), "--out", str(out), "--model", "segnet-tiny", "--size", "48x64",
        "--epochs", "2", "--batch-size", "2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [json.loads((check / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["step"] == ranks[1]["step"] == 6  # 2 epochs x 3 steps of 2 images per process
    assert ranks[0]["sha256"] == ranks[1]["sha256"]  # both processes hold the same weights
    assert ranks[1]["wrote"] == []
    assert ranks[0]["wrote"] == ["best.pt", "config.json", "curves.png", "history.json", "last.pt"]
    assert sorted(p.name for p in out.iterdir()) == ranks[0]["wrote"]  # no stray temporary files either

    state = read_checkpoint(out / "last.pt")
    assert state["step"] == 6 and state["data_order"]["world_size"] == 2
    # Only rank 0 prints: one device line, naming both processes.
    assert proc.stderr.count("device: cpu") == 1 and "x 2 processes" in proc.stderr


def test_place_from_environment(monkeypatch):
    from humanseg.distributed import Distributed

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert Distributed.from_env() == Distributed(0, 1, 0) and Distributed.from_env().main
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert Distributed.from_env() == Distributed(rank=3, world=4, local_rank=1) and not Distributed.from_env().main
    with Distributed().process_group(cuda=False):  # one process: no group to join
        assert not torch.distributed.is_initialized()
