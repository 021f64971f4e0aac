"""Plate completion of the trained-model segmenter, computed only around the network's mask, gives what the
whole-frame computation gives, on real dev frames (skipped where the footage is absent), with and without the
shadow rule and at a working scale's radii; the shadow rule keeps a person's attached floor shadow out, on a
hand-made frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from humanseg.models import ModelConfig, build_model, resize_image
from humanseg.plate import DEFAULT_RULE, code_table, distance_codes, morphology
from humanseg.segmenters.segnet import COMPLETION_COVER, SHADOW_BAND, SegNetSegmenter, enclosed, shadow_like
from humanseg.video import read_image, read_label

PEDESTRIANS = Path("/work/shared/data/cdnet/pedestrians")


def whole_frame_completion(
    prob: np.ndarray, frame: np.ndarray, plate: np.ndarray, radii_h: int | None = None, shadow_rule: bool = False
) -> np.ndarray:
    """Completion as first written: the plate difference (morphology radii for ``radii_h`` rows, default the
    frame's) and its blobs over the whole frame; ``shadow_rule``: shadow-like pixels the network left out are
    not added farther than :data:`SHADOW_BAND` closing radii from the network's mask, unless they are holes in
    what is kept (the frame's border closing it)."""
    plate = resize_image(plate, frame.shape[:2])
    codes = distance_codes(frame, plate, DEFAULT_RULE)
    diff = code_table(DEFAULT_RULE)[morphology(codes, DEFAULT_RULE, radii_h or frame.shape[0])]
    band = max(1, SHADOW_BAND * DEFAULT_RULE.radii(radii_h or frame.shape[0])[1])
    near = cv2.dilate((prob > 0.5).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1,) * 2))
    n, blobs = cv2.connectedComponents((diff > 0.5).astype(np.uint8), connectivity=8)
    if n <= 1:
        return prob
    area = np.bincount(blobs.ravel(), minlength=n)
    covered = np.bincount(blobs.ravel(), weights=(prob > 0.5).ravel(), minlength=n)
    keep = covered >= COMPLETION_COVER * area
    keep[0] = False
    added = keep[blobs]
    if shadow_rule:
        cut = added & shadow_like(frame, plate) & (near == 0)
        added &= ~cut
        added |= enclosed(cut, np.pad(added | (prob > 0.5), 1, constant_values=True))  # beyond the frame: kept
    return np.maximum(prob, np.where(added, diff, 0.0)).astype(np.float32)


def _segmenter(plate: np.ndarray, shadow_rule: bool = True) -> SegNetSegmenter:
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", width=0.125, inputs="frame+plate+diff", input_size=(48, 64), prior=True))
    # The network alone (complete=False): masks to complete; _completed is called on them.
    return SegNetSegmenter.from_model(model.eval(), plate, complete=False, shadow_rule=shadow_rule)


def _masks(frame: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Network-like masks: the labelled people shrunk (a blurred, low-resolution answer), a shifted copy that
    half misses them, and a few stray pixels."""
    person = (label == 255).astype(np.float32)
    shrunk = cv2.erode(cv2.GaussianBlur(person, (0, 0), 2.0), np.ones((5, 5), np.uint8))
    shifted = np.roll(shrunk, (3, 9), axis=(0, 1))
    stray = np.zeros_like(person)
    ys, xs = rng.integers(0, person.shape[0], 40), rng.integers(0, person.shape[1], 40)
    stray[ys, xs] = 0.9
    return [shrunk, shifted, np.maximum(shrunk, stray), np.zeros_like(person)]


@pytest.mark.skipif(not PEDESTRIANS.is_dir(), reason=f"dev footage {PEDESTRIANS} is absent")
@pytest.mark.parametrize(
    ("size", "scale", "shadow_rule"),
    [
        (None, None, False),
        (None, None, True),
        ((576, 720), None, True),  # cells of 2 pixels
        ((720, 1280), None, False),  # cells of 3 pixels
        ((576, 720), 0.5, True),  # tiled at the working scale: radii of 480 rows, not 576
    ],
)
def test_completion_around_the_mask_equals_the_whole_frame(
    size: tuple[int, int] | None, scale: float | None, shadow_rule: bool
) -> None:
    plate = read_image(next(PEDESTRIANS.glob("empty_bg*")))
    seg = _segmenter(plate, shadow_rule)
    seg.working_scale = scale
    radii_h = None if scale is None else round(240 / scale)
    rng = np.random.default_rng(0)
    images = sorted((PEDESTRIANS / "input").iterdir())
    labels = sorted((PEDESTRIANS / "groundtruth").iterdir())
    compared = changed = 0
    for image, label_path in list(zip(images, labels, strict=True))[::2]:
        frame, label = read_image(image), read_label(label_path)
        if size is not None:
            frame = cv2.resize(frame, size[::-1], interpolation=cv2.INTER_LINEAR)
            label = cv2.resize(label, size[::-1], interpolation=cv2.INTER_NEAREST)
        for prob in [*_masks(frame, label, rng), seg._run([frame])[0]]:
            prob = prob.astype(np.float32)
            new = seg._completed(prob, frame)
            old = whole_frame_completion(prob, frame, plate, radii_h, shadow_rule)
            assert new.dtype == np.float32 and np.array_equal(new, old)
            compared += 1
            changed += int(not np.array_equal(new, prob))
    assert compared >= 100 and changed >= compared // 4  # completion did add blobs in many of them


def _shadow_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(plate, frame, network mask): a grey-green floor; a person-coloured block with a patch of the floor at 55%
    of its light attached below it (one plate-difference blob); the network covers the block only."""
    plate = np.zeros((120, 160, 3), np.uint8)
    plate[:] = (120, 140, 110)
    frame = plate.copy()
    frame[20:70, 60:90] = (200, 150, 120)  # the person
    frame[70:100, 50:110] = (plate[0, 0] * 0.55).astype(np.uint8)  # the floor's shadow, attached below
    prob = np.zeros((120, 160), np.float32)
    prob[20:70, 60:90] = 0.9
    return plate, frame, prob


def test_shadow_rule_keeps_an_attached_floor_shadow_out() -> None:
    plate, frame, prob = _shadow_scene()
    seg, plain = _segmenter(plate, shadow_rule=True), _segmenter(plate, shadow_rule=False)
    assert shadow_like(frame, plate)[70:100, 50:110].all() and not shadow_like(frame, plate)[20:70, 60:90].any()
    shadow = np.s_[75:95, 55:105]  # inside the patch, clear of the closing's reach into the block
    assert (plain._completed(prob, frame)[shadow] > 0.5).all()  # without the rule: the whole blob, shadow too
    completed = seg._completed(prob, frame)
    assert not (completed[shadow] > 0.5).any()
    assert (completed[20:70, 60:90] > 0.5).all()  # the person stays
    assert (completed[70:72, 60:90] > 0.5).all()  # and so do shadow-like pixels along its mask (dark edges)

    # A dark patch of another colour (clothes, not a shadow) still comes in.
    clothes = frame.copy()
    clothes[70:100, 50:110] = (40, 40, 90)
    assert (seg._completed(prob, clothes)[shadow] > 0.5).all()
    # The network's own mask is never cut, even over shadow-like pixels: it covers part of the patch.
    prob[75:85, 60:90] = 0.9
    kept = seg._completed(prob, frame)
    assert (kept >= prob).all() and (kept[75:85, 60:90] > 0.5).all() and not (kept[90:95, 55:105] > 0.5).any()


def test_shadow_like_holes_inside_a_person_are_kept() -> None:
    """A crease of white trousers looks like a shadow on a grey road; enclosed by the person it is kept, while a
    shadow cast out of the outline is still cut."""
    plate = np.zeros((120, 160, 3), np.uint8)
    plate[:] = (120, 120, 120)
    frame = plate.copy()
    frame[10:110, 40:120] = (230, 230, 230)  # the person, brighter than the road: not shadow-like
    frame[40:80, 60:100] = (80, 80, 80)  # a dark grey crease: shadow-like on the grey plate
    frame[110:120, 40:120] = (70, 70, 70)  # the shadow at the feet, reaching the frame's lower edge
    prob = np.zeros((120, 160), np.float32)
    prob[10:40, 40:120] = 0.9  # the network covers only the top of the person (enough of its blob to complete it)
    holes, plain = _segmenter(plate), _segmenter(plate)
    plain.shadow_holes = False
    crease, shadow = np.s_[50:70, 70:90], np.s_[114:120, 50:110]  # clear of the band along the mask
    assert shadow_like(frame, plate)[crease].all() and shadow_like(frame, plate)[shadow].all()
    assert not (plain._completed(prob, frame)[crease] > 0.5).any()  # without the holes: cut like a shadow
    completed = holes._completed(prob, frame)
    assert (completed[crease] > 0.5).all() and (completed[85:105, 50:110] > 0.5).all()
    assert not (completed[shadow] > 0.5).any()


def test_the_frame_border_closes_a_person_it_cuts() -> None:
    """Legs cut by the frame's lower edge (CaVignal's man): a crease between them reaching the edge is a hole in
    the person, kept; a shadow cast beside them down to the same edge touches the floor, and is still cut."""
    plate = np.zeros((120, 160, 3), np.uint8)
    plate[:] = (120, 120, 120)
    frame = plate.copy()
    frame[30:120, 40:120] = (230, 230, 230)  # the person, down to the frame's last row
    frame[80:120, 70:90] = (80, 80, 80)  # a dark crease between the legs, open only to the lower edge
    frame[100:120, 120:150] = (70, 70, 70)  # a shadow beside the legs, reaching the lower edge too
    prob = np.zeros((120, 160), np.float32)
    prob[30:60, 40:120] = 0.9  # the network covers only the top of the person
    crease, shadow = np.s_[90:120, 72:88], np.s_[104:120, 128:150]  # clear of the band along the mask
    assert shadow_like(frame, plate)[crease].all() and shadow_like(frame, plate)[shadow].all()
    completed = _segmenter(plate)._completed(prob, frame)
    assert (completed[crease] > 0.5).all() and (completed[65:120, 45:65] > 0.5).all()
    assert not (completed[shadow] > 0.5).any()
    # The reference computation over the whole frame agrees.
    reference = whole_frame_completion(prob, frame, plate, shadow_rule=True)
    assert np.array_equal(completed > 0.5, reference > 0.5)


def test_enclosed_keeps_only_pieces_surrounded_by_kept_pixels() -> None:
    cut = np.zeros((5, 6), bool)
    cut[1:3, 1:3] = True  # a 2x2 piece, ringed by kept pixels
    cut[4, 4] = True  # a piece at the lower edge: the border beyond the frame is not kept
    cut[1, 5] = True  # a piece whose right neighbour is kept, but its upper one is not
    kept = np.zeros((7, 8), bool)  # one pixel more on every side
    kept[1:5, 1:5] = True
    kept[1:5, 1:5][1:3, 1:3] = False  # the kept ring leaves the piece itself out
    kept[2, 6:8] = True
    kept[3, 6] = True
    kept[5:7, 4:7] = True  # below and beside (4, 4), up to the frame's last row; the border row stays False
    kept[6, :] = False
    expected = np.zeros_like(cut)
    expected[1:3, 1:3] = True
    assert np.array_equal(enclosed(cut, kept), expected)
    assert not enclosed(np.zeros_like(cut), kept).any()
