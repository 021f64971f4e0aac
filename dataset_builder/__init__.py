"""dataset_builder: training sets for one fixed camera site, by compositing people onto plates of that site.

Library API (the CLI ``python -m dataset_builder`` and the app call these plain functions; long ones take
``progress: bool`` and then show a tqdm bar, which the app follows with ``gr.Progress(track_tqdm=True)``):

- :func:`estimate_plates`, :func:`save_plates` (backgrounds): clean plates from a busy clip of the site;
- :func:`extract_silhouettes`, :func:`reject` (silhouettes): people cut out of actor clips or site footage;
- :class:`Compositor` (composite): one sample at a time, deterministic per (seed, index);
- :func:`build_dataset` (build): the on-disk dataset the trainer reads.

Names are imported on first use, so ``import dataset_builder`` does not load OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "estimate_plates": "dataset_builder.backgrounds",
    "save_plates": "dataset_builder.backgrounds",
    "load_backgrounds": "dataset_builder.backgrounds",
    "plate_error": "dataset_builder.backgrounds",
    "extract_silhouettes": "dataset_builder.silhouettes",
    "load_silhouettes": "dataset_builder.silhouettes",
    "reject": "dataset_builder.silhouettes",
    "accept": "dataset_builder.silhouettes",
    "SilhouetteInfo": "dataset_builder.silhouettes",
    "Compositor": "dataset_builder.composite",
    "CompositeConfig": "dataset_builder.composite",
    "PerspectiveModel": "dataset_builder.perspective",
    "build_dataset": "dataset_builder.build",
    "read_manifest": "dataset_builder.build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dataset_builder' has no attribute {name!r}")
