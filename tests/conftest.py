"""Shared test fixtures.

Real third-party footage lives in ../shared/data beside the project (never inside it); tests that need it
skip cleanly where it is absent, as on a user's machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HUMANSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))

DEV_SEQUENCES = {
    "pedestrians": SHARED_DATA / "cdnet" / "pedestrians",
    "HallAndMonitor": SHARED_DATA / "sbi" / "HallAndMonitor",
    "CaVignal": SHARED_DATA / "sbi" / "CaVignal",
}
ACTOR_CLIPS = {
    "parkour": SHARED_DATA / "actors" / "parkour",
    "dance-twirl": SHARED_DATA / "actors" / "dance-twirl",
}


def _need(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"shared data not present: {path}")
    return path


@pytest.fixture
def pedestrians() -> Path:
    return _need(DEV_SEQUENCES["pedestrians"])


@pytest.fixture
def hall() -> Path:
    return _need(DEV_SEQUENCES["HallAndMonitor"])


@pytest.fixture
def cavignal() -> Path:
    return _need(DEV_SEQUENCES["CaVignal"])


@pytest.fixture
def parkour() -> Path:
    return _need(ACTOR_CLIPS["parkour"])


@pytest.fixture
def dance_twirl() -> Path:
    return _need(ACTOR_CLIPS["dance-twirl"])


@pytest.fixture(params=list(DEV_SEQUENCES))
def dev_sequence(request) -> Path:
    return _need(DEV_SEQUENCES[request.param])
