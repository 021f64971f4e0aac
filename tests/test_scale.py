"""The working scale: tile placement over the plate's changes, and the trained-model segmenter tiled at that scale
gives on a large frame what it gives on the small frame the large one pads (the point of issue 10)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from humanseg.checkpoint import load_checkpoint, save_checkpoint
from humanseg.models import ModelConfig, build_model, compose_input, images_to_tensor
from humanseg.scale import (
    fitted_tiles,
    pad_to_tile,
    radii_height,
    tile_origins,
    tile_weights,
    tiled,
    working_scale,
    working_size,
)
from humanseg.segmenters.segnet import SegNetSegmenter

TILE = (48, 64)


def _covered(origins: list[tuple[int, int]], shape: tuple[int, int], tile: tuple[int, int] = TILE) -> np.ndarray:
    cover = np.zeros(shape, bool)
    for y, x in origins:
        assert 0 <= y <= max(0, shape[0] - tile[0]) and 0 <= x <= max(0, shape[1] - tile[1])  # inside the frame
        cover[y : y + tile[0], x : x + tile[1]] = True
    return cover


def test_scale_helpers() -> None:
    assert working_scale(30.0) == 1.0 and working_scale(180.0) == 0.5  # never enlarged; big people shrunk
    assert working_size((576, 720), 0.5) == (288, 360)
    assert not tiled((576, 720), None, (240, 320)) and not tiled((288, 360), 1.0, (240, 320))
    assert tiled((576, 720), 1.0, (240, 320))
    assert radii_height((576, 720), None, (240, 320)) == 576 and radii_height((576, 720), 0.5, (240, 320)) == 576
    assert radii_height((576, 720), 0.75, (240, 320)) == 320  # tiled: the radii of 240 network rows
    with pytest.raises(ValueError, match="positive"):
        working_scale(0.0)


def test_one_blob_gets_one_tile_centred_on_it() -> None:
    changed = np.zeros((200, 300), bool)
    changed[90:120, 140:160] = True
    origins = tile_origins(changed, TILE)
    assert len(origins) == 1
    (y, x), = origins
    assert _covered(origins, changed.shape)[changed].all()
    assert abs((y + TILE[0] / 2) - 105) <= 1 and abs((x + TILE[1] / 2) - 150) <= 1
    # At the frame's corner the tile is pushed inside the frame.
    corner = np.zeros((200, 300), bool)
    corner[:5, -5:] = True
    assert tile_origins(corner, TILE) == [(0, 300 - TILE[1])]


def test_wide_blob_gets_evenly_spread_tiles() -> None:
    changed = np.zeros((200, 400), bool)
    changed[80:100, 10:390] = True  # 380 px wide: 6 tiles of 64
    origins = tile_origins(changed, TILE)
    xs = sorted(x for _, x in origins)
    assert len(origins) == 6 and len({y for y, _ in origins}) == 1
    assert xs[0] == 10 and xs[-1] == 390 - TILE[1]
    steps = np.diff(xs)
    assert steps.max() - steps.min() <= 1 and steps.max() <= TILE[1]  # evenly spread, no gap
    assert _covered(origins, changed.shape)[changed].all()


def test_overlapping_boxes_merge_and_many_blobs_get_the_whole_grid() -> None:
    changed = np.zeros((200, 300), bool)
    changed[50:52, 50:150] = True  # an L and a bar whose boxes overlap without touching
    changed[50:150, 50:52] = True
    changed[100:102, 100:160] = True
    origins = tile_origins(changed, TILE)
    assert _covered(origins, changed.shape)[changed].all() and len(origins) == len(set(origins))
    noise = np.zeros((200, 300), bool)
    noise[::12, ::12] = True  # scattered pixels: covering each would take more tiles than the whole frame
    grid = tile_origins(noise, TILE)
    assert len(grid) == 5 * 5 and _covered(grid, noise.shape).all()


def test_empty_and_small_frames() -> None:
    assert tile_origins(np.zeros((200, 300), bool), TILE) == []
    small = np.zeros((30, 200), bool)  # shorter than a tile: the caller pads it, the row is 0
    small[10:20, 100:110] = True
    assert tile_origins(small, TILE) == [(0, 73)]
    image = np.arange(30 * 200 * 3, dtype=np.uint32).reshape(30, 200, 3).astype(np.uint8)
    padded, (top, left) = pad_to_tile(image, TILE)
    assert padded.shape == (48, 200, 3) and (top, left) == (9, 0)
    assert np.array_equal(padded[top : top + 30], image)
    assert pad_to_tile(image, (10, 10))[0] is image


def test_fitted_tiles_fit_each_change_inside_the_frame() -> None:
    tile = (240, 320)
    changed = np.zeros((576, 720), bool)
    changed[100:130, 200:220] = True  # 30 x 20: one 64 x 64 tile (the minimum), centred
    changed[300:370, 400:450] = True  # 70 x 50: rounded up to 96 x 64
    changed[0:10, 715:720] = True  # at the corner: pushed inside the frame
    got = fitted_tiles(changed, tile)
    assert got == [(0, 656, 64, 64), (83, 178, 64, 64), (287, 393, 96, 64)]
    # The U-Net's multiple (64): the 70 x 50 blob gets 128 x 64.
    assert (271, 393, 128, 64) in fitted_tiles(changed, tile, multiple=64)
    # A box longer than the tile on one axis: input-sized tiles spread along it, fitted across it.
    tall = np.zeros((576, 720), bool)
    tall[50:400, 300:330] = True
    assert fitted_tiles(tall, tile) == [(50, 283, 240, 64), (160, 283, 240, 64)]
    # A huge blob: input-sized tiles, as tile_origins places them.
    huge = np.zeros((576, 720), bool)
    huge[50:550, 100:700] = True
    assert fitted_tiles(huge, tile) == [(y, x, *tile) for y, x in tile_origins(huge, tile)] and len(tile_origins(huge, tile)) == 6
    for mask in (changed, tall, huge):
        tiles = fitted_tiles(mask, tile)
        # Multiples of 32, or the input's own side (240 is not one: the network takes it as it always did).
        assert all(h in (240, *range(64, 240, 32)) and w in range(64, 321, 32) for _, _, h, w in tiles)
        cover = np.zeros(mask.shape, bool)
        for y, x, h, w in tiles:
            assert 0 <= y <= 576 - h and 0 <= x <= 720 - w
            cover[y : y + h, x : x + w] = True
        assert cover[mask].all()


def test_fitted_tiles_small_tiles_and_scattered_changes() -> None:
    changed = np.zeros((200, 300), bool)
    changed[90:120, 140:160] = True
    assert fitted_tiles(changed, TILE) == [(81, 118, 48, 64)]  # an input smaller than the minimum caps the tile
    noise = np.zeros((200, 300), bool)
    noise[::12, ::12] = True  # more pixels in fitted tiles than in the whole grid: the whole grid
    assert fitted_tiles(noise, TILE) == [(y, x, *TILE) for y, x in tile_origins(noise, TILE)]
    assert fitted_tiles(np.zeros((200, 300), bool), TILE) == []
    with pytest.raises(ValueError, match="multiple"):
        fitted_tiles(changed, TILE, multiple=0)


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(plate, frame) of a small 48x64 camera with a person, and the same footage on a 3x larger canvas (the
    plate mirrored around it, as tools/pad_sequence.py makes it)."""
    plate = cv2.GaussianBlur(rng.integers(60, 200, (48, 64, 3), dtype=np.uint8), (0, 0), 2.0)
    frame = plate.copy()
    frame[12:40, 26:36] = (200, 60, 50)  # a person 28 px tall
    frame[20:30, 22:26] = (190, 70, 60)  # an arm
    big_plate = cv2.copyMakeBorder(plate, 48, 48, 64, 64, cv2.BORDER_REFLECT_101)
    big_frame = big_plate.copy()
    big_frame[48:96, 64:128] = frame
    return plate, frame, big_plate, big_frame


def _prior_model() -> torch.nn.Module:
    # An untrained prior model is the plate rule (its logit layer starts at zero): a local function of the
    # pixels, so its answer on a pixel does not depend on how much frame lies around it.
    torch.manual_seed(0)
    return build_model(ModelConfig("unet", width=0.125, inputs="frame+plate+diff", input_size=TILE, prior=True)).eval()


def test_tiled_segmenter_sees_the_padded_camera_as_the_small_one() -> None:
    plate, frame, big_plate, big_frame = _scene(np.random.default_rng(0))
    model = _prior_model()
    small = SegNetSegmenter.from_model(model, plate, complete=False).segment(frame)  # frame = input: no resize
    seg = SegNetSegmenter.from_model(model, big_plate, complete=False, working_scale=1.0)
    assert tiled(big_frame.shape[:2], seg.scale, seg.input_size)
    big = seg.segment(big_frame)[48:96, 64:128]
    # The person and its surroundings: the same probabilities (float rounding only). Where no tile ran (far from
    # any change) the tiled answer is 0 where the rule's clamped prior says 0.02: both background.
    person = small > 0.5
    assert person.sum() > 250 and np.array_equal(big > 0.5, person)
    ran = big > 0
    assert ran.mean() > 0.8 and np.abs(big - small)[ran].max() < 1e-5
    assert (small[~ran] < 0.05).all()
    # Untiled, the same model sees the large frame shrunk 3x: a person of 9 px, far from the small camera's answer.
    whole = SegNetSegmenter.from_model(model, big_plate, complete=False).segment(big_frame)[48:96, 64:128]
    assert np.abs(whole - small).max() > 0.3


FIT_INPUT = (96, 128)  # an input larger than the 64-px fitted tiles, so fitting them changes something


def test_fitted_tiles_see_the_padded_camera_as_the_small_one() -> None:
    plate, frame, big_plate, big_frame = _scene(np.random.default_rng(0))
    torch.manual_seed(0)
    model = build_model(ModelConfig("unet", width=0.125, inputs="frame+plate+diff", input_size=FIT_INPUT, prior=True))
    model.eval()
    # The exact answer: the local prior rule (radii of the training height) on the small camera at its own size.
    small = model.predict(compose_input(images_to_tensor(frame), images_to_tensor(plate), model.config.inputs))[0]
    small = small.numpy()
    seg = SegNetSegmenter.from_model(model, big_plate, complete=False, working_scale=1.0, tile_fit=True)
    assert tiled(big_frame.shape[:2], seg.scale, seg.input_size)
    calls: list[tuple[int, ...]] = []
    net = seg._net
    seg._net = lambda frames, plates: calls.append(np.shape(frames)) or net(frames, plates)  # type: ignore[method-assign]
    big = seg.segment(big_frame)[48:96, 64:128]
    assert calls == [(1, 64, 64, 3)]  # one fitted tile (the U-Net's multiple of 64), not a 96 x 128 one
    person = small > 0.5
    assert person.sum() > 250 and np.array_equal(big > 0.5, person)
    ran = big > 0
    assert ran.mean() > 0.6 and np.abs(big - small)[ran].max() < 1e-5 and (small[~ran] < 0.05).all()
    # Input-sized tiles give the same numbers where both ran.
    full = SegNetSegmenter.from_model(model, big_plate, complete=False, working_scale=1.0).segment(big_frame)
    both = ran & (full[48:96, 64:128] > 0)
    assert both.mean() > 0.6 and np.abs(full[48:96, 64:128] - big)[both].max() < 1e-5


def test_frame_without_change_runs_no_network() -> None:
    plate, _, big_plate, big_frame = _scene(np.random.default_rng(1))
    seg = SegNetSegmenter.from_model(_prior_model(), big_plate, working_scale=1.0)
    calls: list[int] = []
    net = seg._net
    seg._net = lambda frames, plates: calls.append(len(frames)) or net(frames, plates)  # type: ignore[method-assign]
    empty = seg.segment(big_plate)
    assert calls == [] and empty.shape == big_plate.shape[:2] and not empty.any()
    assert seg.segment(big_frame).max() > 0.5 and 1 <= sum(calls) <= 4  # the person: a few tiles, not the frame


def test_whole_frame_without_a_person_sized_change_runs_no_network() -> None:
    """The untiled path gates like the tiled one: a frame whose plate shows no change as tall as GATE_HEIGHT runs
    no network (mask 0); in a batch only the frames with one go to the network."""
    from humanseg.segmenters.segnet import GATE_HEIGHT

    plate, frame, _, _ = _scene(np.random.default_rng(3))
    seg = SegNetSegmenter.from_model(_prior_model(), plate)
    assert not tiled(frame.shape[:2], seg.scale, seg.input_size)
    short = plate.copy()
    short[30 : 30 + GATE_HEIGHT - 1, 8:20] = (200, 60, 50)  # a change one pixel shorter than the gate
    tall = plate.copy()
    tall[30 - 1 : 30 + GATE_HEIGHT - 1, 8:20] = (200, 60, 50)  # the same, one pixel taller: the gate's height
    calls: list[int] = []
    net = seg._net
    seg._net = lambda frames, plates: calls.append(len(frames)) or net(frames, plates)  # type: ignore[method-assign]
    masks = seg.segment_batch([plate, short, frame, tall])
    assert calls == [2]  # the person and the tall change, in one call
    assert not masks[0].any() and not masks[1].any()
    assert masks[2][12:40, 26:36].mean() > 0.5 and masks[3][29:41, 8:20].mean() > 0.5  # the prior: the plate rule


def test_checkpoint_carries_the_working_scale_to_both_runtimes(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    plate, _, big_plate, big_frame = _scene(np.random.default_rng(2))
    ckpt = save_checkpoint(tmp_path / "site.pt", _prior_model(), plate=big_plate, working_scale=1.0)
    assert load_checkpoint(ckpt)[1].working_scale == 1.0
    kw = {"device": "cpu", "follow_plate": False}
    torch_seg = SegNetSegmenter(ckpt, runtime="torch", **kw)
    onnx_seg = SegNetSegmenter(ckpt, runtime="onnxruntime", **kw)
    assert torch_seg.scale == 1.0 and onnx_seg._onnx is not None
    a, b = torch_seg.segment(big_frame), onnx_seg.segment(big_frame)
    assert np.abs(a - b).max() < 1e-4  # ONNX Runtime gives torch's answer (the graph's fixed tile shape fits)
    untiled = SegNetSegmenter(ckpt, runtime="torch", tiles=False, **kw)
    assert untiled.scale is None and not np.allclose(untiled.segment(big_frame), a, atol=0.1)
    with pytest.raises(ValueError, match="working_scale"):
        SegNetSegmenter(ckpt, working_scale=-1.0, **kw)


@pytest.mark.parametrize("arch", ["unet", "segnet"])
def test_fitted_tiles_run_alike_in_both_runtimes(tmp_path, arch: str) -> None:
    """Fitted tiles (64 px here) are not the input size: the ONNX graph takes any size and gives torch's answer."""
    pytest.importorskip("onnxruntime")
    plate, _, big_plate, big_frame = _scene(np.random.default_rng(4))
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch, width=0.0625, inputs="frame+plate+diff", input_size=FIT_INPUT))
    for p in model.parameters():  # away from init, so the network's own answer counts
        p.data.add_(0.05 * torch.randn_like(p))
    ckpt = save_checkpoint(tmp_path / "site.pt", model, plate=big_plate, working_scale=1.0)
    kw = {"device": "cpu", "follow_plate": False, "tile_fit": True}
    torch_seg = SegNetSegmenter(ckpt, runtime="torch", **kw)
    onnx_seg = SegNetSegmenter(ckpt, runtime="onnxruntime", **kw)
    assert onnx_seg._onnx.any_size
    a, b = torch_seg.segment(big_frame), onnx_seg.segment(big_frame)
    assert (a > 0).any() and np.abs(a - b).max() < 1e-4


def test_tile_weights_by_hand() -> None:
    # A 4 x 6 tile at the canvas's top-left corner of a 4 x 10 canvas: its top, bottom and left edges are the
    # canvas's (weight 1), its right edge lies inside (column 9 is beyond it): (distance + 1) / (ramp + 1).
    w = tile_weights((0, 0), (4, 6), (4, 10), ramp=2)
    assert np.allclose(w, np.tile([1, 1, 1, 1, 2 / 3, 1 / 3], (4, 1)))
    # Inside on all four sides: the product of the row and the column profile; the corners count least.
    w = tile_weights((2, 2), (3, 4), (9, 9), ramp=1)
    assert np.allclose(w[:, 0], [0.25, 0.5, 0.25]) and np.allclose(w[1], [0.5, 1, 1, 0.5]) and w.min() == 0.25
    with pytest.raises(ValueError, match="ramp"):
        tile_weights((0, 0), (4, 6), (4, 10), ramp=-1)


def test_overlapping_tiles_drop_what_one_tile_marks_at_its_inner_edge() -> None:
    # A network that marks the three columns at each side of every tile it sees (a cut-off object at a tile's
    # edge taken for a person), nothing else. Two tiles cover the 100-px-wide change, at columns 0 and 36: the
    # marks at the frame's own left and right edges stay (no tile sees more there); those at columns 36-38 and
    # 61-63 lie well inside the other tile, which says 0 there: blended they go, the maximum kept them.
    plate = np.full((48, 100, 3), 90, np.uint8)
    frame = plate.copy()
    frame[10:40] = 220  # a change across the whole width: tiles over all of it

    def edges(frames: list[np.ndarray], plates: object) -> list[np.ndarray]:
        out = []
        for f in frames:
            prob = np.zeros(f.shape[:2], np.float32)
            prob[:, :3] = prob[:, -3:] = 1.0
            out.append(prob)
        return out

    marked = {}
    for blend in (True, False):
        seg = SegNetSegmenter.from_model(_prior_model(), plate, complete=False, working_scale=1.0, tile_blend=blend)
        assert tiled(frame.shape[:2], seg.scale, seg.input_size)
        seg._net = edges  # type: ignore[method-assign]
        marked[blend] = np.flatnonzero(seg.segment(frame).min(axis=0) > 0.5).tolist()
    assert marked[True] == [0, 1, 2, 97, 98, 99]
    assert marked[False] == [0, 1, 2, 36, 37, 38, 61, 62, 63, 97, 98, 99]


def test_tiles_over_a_change_share_the_overlap_asked_for() -> None:
    changed = np.zeros((48, 128), bool)
    changed[10:30, :] = True  # as wide as two tiles exactly
    assert tile_origins(changed, TILE) == [(0, 0), (0, 64)]  # abutting: no pixel seen by both
    # 16 px shared: ceil((128 - 16) / (64 - 16)) = 3 tiles, evenly spread, 32 px shared by each pair.
    assert tile_origins(changed, TILE, overlap=16) == [(0, 0), (0, 32), (0, 64)]
    with pytest.raises(ValueError, match="overlap"):
        tile_origins(changed, TILE, overlap=48)
    # The segmenter says so when it is built, not at its first tiled frame.
    with pytest.raises(ValueError, match="tile_overlap must be 0 to 47 px"):
        SegNetSegmenter.from_model(_prior_model(), np.zeros((48, 64, 3), np.uint8), working_scale=1.0, tile_overlap=48)


def test_scale_averaging_is_the_mean_of_the_two_working_scales() -> None:
    """``scale_tta=(1.25,)`` on a tiled site: the mean of the answers at the working scale and at 1.25 times it."""
    _, _, big_plate, big_frame = _scene(np.random.default_rng(0))
    model = _prior_model()
    at = {s: SegNetSegmenter.from_model(model, big_plate, complete=False, working_scale=s) for s in (1.0, 1.25)}
    both = SegNetSegmenter.from_model(model, big_plate, complete=False, working_scale=1.0, scale_tta=(1.25,))
    averaged = both.segment(big_frame)
    expected = 0.5 * (at[1.0].segment(big_frame) + at[1.25].segment(big_frame))
    assert averaged.shape == big_frame.shape[:2] and np.abs(averaged - expected).max() < 1e-5
    assert (averaged[48:96, 64:128] > 0.5).sum() > 250  # the person is still there
    with pytest.raises(ValueError, match=r"scale_tta must be factors > 0.*\(0\.8,\)"):
        SegNetSegmenter.from_model(model, big_plate, scale_tta=(0.0,))
