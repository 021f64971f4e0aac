"""Several training processes (``torchrun``): which one this is, and the process group they share.

``torchrun --nproc-per-node N -m humanseg train ...`` starts N processes and tells each its place through the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); a plain ``python -m humanseg train`` sets none of them and
is rank 0 of 1. Rank 0 is the main process: only it validates, writes the run folder and prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Distributed:
    """This process's place in a launch: ``rank`` of ``world`` processes, ``local_rank`` on this machine (the
    index of the GPU it uses)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True for the process that validates, writes files and prints (rank 0)."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Distributed:
        """The place ``torchrun`` gave this process; rank 0 of 1 when it was started without torchrun."""
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @contextmanager
    def process_group(self, cuda: bool) -> Iterator[None]:
        """Join the launch's process group for the block (nccl when training on CUDA, else gloo) and leave it
        after. Nothing happens for a single process, or when the caller already joined a group."""
        if self.world == 1 or torch.distributed.is_initialized():
            yield
            return
        if cuda:
            # nccl binds each process to its GPU; without this every rank would start on GPU 0.
            torch.cuda.set_device(self.local_rank % torch.cuda.device_count())
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
        try:
            yield
        finally:
            torch.distributed.destroy_process_group()
