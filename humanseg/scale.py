"""The working scale: how large a site's frames are made before the network sees them.

A network sees people well in the band of sizes its composites showed it; a camera's people can be any size in
pixels (a 720x576 concourse camera shows people 25-90 px tall, a 240-line corridor camera 50-110 px). Each site
gets one number, the *working scale* (network pixels per frame pixel), chosen from the site's typical person
height so that people reach the network near :data:`TARGET_PERSON_PX` whatever the camera's resolution, and never
enlarged beyond the frame's own pixels (:data:`MAX_SCALE`).

Two ways to run, decided by :func:`tiled`:

- the frame at the working scale fits the network's input (up to :data:`FIT_SLACK` per side): the whole frame is
  resized to the input, as every model did before there was a working scale (composites: the whole plate);
- it is larger: the network runs on input-sized *tiles* of the scaled frame over the places where the plate shows
  a change (nothing else can be a person for a plate model; a mostly static scene costs a few tiles), and the
  composites it was trained on are input-sized windows of the scaled plate.

Morphology radii of the plate rule follow the scale the network sees (:func:`radii_height`), so that a camera
with 3x the pixels and the same people gets the same radii.
"""

from __future__ import annotations

import math

from humanseg.plate import REFERENCE_HEIGHT

#: Person height (pixels) the network should see: the median person of the development cameras as their models
#: saw them (pedestrians 94 px, HallAndMonitor 76 px at 240 lines).
TARGET_PERSON_PX = 90.0
#: Never enlarge a frame beyond its own pixels for the network: upsampling adds no detail, only cost.
MAX_SCALE = 1.0
#: A scaled frame up to this much larger than the input (per side) is resized to it whole rather than tiled.
FIT_SLACK = 1.25


def working_scale(person_height: float, target: float = TARGET_PERSON_PX) -> float:
    """Network pixels per frame pixel for a site whose typical person is ``person_height`` px tall."""
    if not (math.isfinite(person_height) and person_height > 0):
        raise ValueError(f"person_height must be a positive number of pixels, got {person_height!r}")
    if not target > 0:
        raise ValueError(f"target person height must be > 0 px, got {target!r}")
    return min(MAX_SCALE, target / person_height)


def working_size(frame_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(height, width) of a ``frame_hw`` frame at ``scale`` (at least 1 x 1)."""
    if not scale > 0:
        raise ValueError(f"working scale must be > 0, got {scale!r}")
    return max(1, round(frame_hw[0] * scale)), max(1, round(frame_hw[1] * scale))


def tiled(frame_hw: tuple[int, int], scale: float | None, input_size: tuple[int, int]) -> bool:
    """Whether the network runs on tiles (the scaled frame is larger than the input by more than
    :data:`FIT_SLACK` on a side); ``scale=None`` (a model without a working scale): never."""
    if scale is None:
        return False
    h, w = working_size(frame_hw, scale)
    return h > FIT_SLACK * input_size[0] or w > FIT_SLACK * input_size[1]


def radii_height(frame_hw: tuple[int, int], scale: float | None, input_size: tuple[int, int]) -> int:
    """The frame height the plate rule's radii are taken at, for morphology at frame resolution: the frame's own
    height when the whole frame is resized to the input (the rule as it always was), else the height whose
    radii match what the network sees at the working scale (:data:`REFERENCE_HEIGHT` lines of network input)."""
    if not tiled(frame_hw, scale, input_size):
        return int(frame_hw[0])
    assert scale is not None
    return max(1, round(REFERENCE_HEIGHT / scale))
