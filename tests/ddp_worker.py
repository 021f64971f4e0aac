"""A torchrun worker for test_ddp: runs `python -m humanseg train ARGS...` and, when this rank's training loop
ends, writes CHECK_DIR/rank<r>.json with a hash of its weights and the names of the files it wrote into the run
folder, so the test can check that all processes hold the same model and that only rank 0 wrote.

Usage: torchrun ... tests/ddp_worker.py CHECK_DIR train DATASET --out RUN ...
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from humanseg.cli import main
from humanseg.train import TrainEvent, TrainingRun


def record(run: TrainingRun, check_dir: Path) -> None:
    if run.dist.world > 1:
        # DDP syncs BN statistics from rank 0 before each forward; do the same so equal models hash equal.
        for buf in run.model.buffers():
            torch.distributed.broadcast(buf, src=0)
    digest = hashlib.sha256()
    for name, tensor in sorted(run.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    check_dir.mkdir(parents=True, exist_ok=True)
    rank = run.dist.rank
    row = {"rank": rank, "world_size": run.dist.world, "step": run.step, "sha256": digest.hexdigest(),
           "wrote": sorted(run.folder.written)}  # fmt: skip
    (check_dir / f"rank{rank}.json").write_text(json.dumps(row))


def recording(check_dir: Path):
    loop = TrainingRun.events

    def events(self: TrainingRun) -> Iterator[TrainEvent]:
        yield from loop(self)
        record(self, check_dir)  # still inside the process group: train() leaves it after the loop

    return events


if __name__ == "__main__":
    TrainingRun.events = recording(Path(sys.argv[1]))
    raise SystemExit(main(sys.argv[2:]))
