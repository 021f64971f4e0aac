"""humanseg.render: mask image, label overlay, caption bars, the side-by-side grid, ground truth and montage."""

from __future__ import annotations

import numpy as np
import pytest

from humanseg.render import (
    CAPTION_BG,
    MontageRow,
    caption,
    grid,
    label_image,
    mask_image,
    montage,
    montage_picks,
    overlay,
)
from humanseg.video import SequenceItem


def _scene(h: int = 40, w: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _person(h: int = 40, w: int = 60) -> np.ndarray:
    prob = np.zeros((h, w), np.float32)
    prob[8:32, 20:40] = 0.9
    prob[8:32, 40] = 0.5  # exactly at the threshold: background (foreground is prob > threshold)
    return prob


def test_mask_image_white_on_black() -> None:
    img = mask_image(_person())
    assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    assert (img[8:32, 20:40] == 255).all()
    assert img.sum() == 24 * 20 * 3 * 255
    assert (mask_image(_person(), threshold=0.95) == 0).all()
    assert (mask_image(np.ones((4, 4), bool)) == 255).all()


def test_overlay_tints_only_mask_pixels() -> None:
    frame, prob = _scene(), _person()
    out = overlay(frame, prob, color=(255, 40, 40), alpha=0.45)
    fg = prob > 0.5
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (out[~fg] == frame[~fg]).all()  # nothing outside the person changes
    # Interior (more than 2 px from the edge): exact alpha blend with the tint.
    inner = (slice(12, 28), slice(24, 36))
    want = (frame[inner].astype(np.float32) * 0.55 + np.array([255, 40, 40], np.float32) * 0.45 + 0.5).astype(np.uint8)
    assert (out[inner] == want).all()
    # Contour: the 2-px inner border is solid color, and it is closed all round.
    assert (out[8:10, 20:40] == (255, 40, 40)).all() and (out[30:32, 20:40] == (255, 40, 40)).all()
    assert (out[8:32, 20:22] == (255, 40, 40)).all() and (out[8:32, 38:40] == (255, 40, 40)).all()
    assert (out[12, 24] != (255, 40, 40)).any()


def test_overlay_empty_mask_and_errors() -> None:
    frame = _scene()
    assert (overlay(frame, np.zeros((40, 60), np.float32)) == frame).all()
    with pytest.raises(ValueError, match=r"mask shape \(10, 10\) does not match frame shape \(40, 60\)"):
        overlay(frame, np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="alpha"):
        overlay(frame, _person(), alpha=1.5)


def test_caption_draws_text_above_tile() -> None:
    tile = np.full((60, 160, 3), 100, np.uint8)
    out = caption(tile, "mog2  12 ms/frame")
    bar_h = out.shape[0] - 60
    assert out.shape[1] == 160 and 18 <= bar_h <= 40
    assert (out[bar_h:] == 100).all()  # the tile itself is untouched
    bar = out[:bar_h]
    assert (bar > 200).any(axis=2).sum() > 30  # white text strokes
    assert (bar == CAPTION_BG).all(axis=2).mean() > 0.5  # on a dark bar
    other = caption(tile, "knn  3 ms/frame")
    assert (other[:bar_h] != bar).any()
    assert (caption(tile, "")[:bar_h] == CAPTION_BG).all()
    # Text too long for the tile is shrunk to fit: no stroke touches the right edge.
    long = caption(tile, "a very long method name that cannot fit at the default size")
    assert not (long[: long.shape[0] - 60, -2:] > 200).any()


def test_grid_layout_sizes_and_captions() -> None:
    tiles = [np.full((30, 40, 3), v, np.uint8) for v in (50, 100, 150)]
    out = grid(tiles, ["input", "a  5 ms/frame", "b  7 ms/frame"])
    bar_h = out.shape[0] - 30
    assert out.shape == (30 + bar_h, 120, 3) and out.dtype == np.uint8
    for i, v in enumerate((50, 100, 150)):
        cell = out[:, i * 40 : (i + 1) * 40]
        assert (cell[bar_h:] == v).all()
        assert (cell[:bar_h] > 200).any()  # each cell has its caption drawn


def test_grid_wraps_resizes_and_fills_black() -> None:
    tiles = [np.full((30, 40, 3), 200, np.uint8) for _ in range(4)] + [np.full((60, 80, 3), 90, np.uint8)]
    out = grid(tiles)  # 5 tiles, no captions: ceil(sqrt(5)) = 3 columns, 2 rows
    assert out.shape == (60, 120, 3)
    assert (out[30:60, 40:80] == 90).all()  # the larger tile was resized to 40x30
    assert (out[30:60, 80:120] == 0).all()  # the empty cell is black
    out = grid(tiles[:2], ["x", "y"], columns=1)
    assert out.shape[1] == 40 and out.shape[0] > 60


def test_grid_errors() -> None:
    with pytest.raises(ValueError, match="at least one tile"):
        grid([])
    with pytest.raises(ValueError, match="2 captions for 1 tiles"):
        grid([np.zeros((4, 4, 3), np.uint8)], ["a", "b"])


def test_label_image_shows_each_cdnet_value() -> None:
    label = np.array([[0, 50, 85, 170, 255, 255]], np.uint8)
    roi = np.array([[True] * 5 + [False]])
    rgb = label_image(label, roi)
    assert rgb.shape == (1, 6, 3) and rgb.dtype == np.uint8
    # background black, shadow dark grey, unknown/outside-ROI mid grey, person white, person outside the ROI grey.
    assert rgb[0, :, 0].tolist() == [0, 60, 128, 128, 255, 128]
    assert (rgb == rgb[:, :, :1]).all()  # grey levels only
    assert label_image(label)[0, 5, 0] == 255  # no ROI: every pixel is inside


def test_montage_layout_and_picks(tmp_path) -> None:
    from PIL import Image

    frame = _scene(48, 64)
    label = np.zeros((48, 64), np.uint8)
    label[10:30, 20:30] = 255
    mask = label == 255
    rows = [MontageRow(n, frame, label, {"a": (mask, 1.0), "b": (~mask, 0.0)}) for n in (3, 7)]
    image = montage(rows)
    # 64-px frames are shown 160 px wide (the least tile width): frame | ground truth | a | b, two rows + captions.
    assert image.shape[1] == 4 * 160 and 2 * 120 < image.shape[0] < 2 * 160
    with pytest.raises(ValueError, match="at least one row"):
        montage([])

    items = []
    for n in range(6):  # frames 0 and 5 show nobody
        path = tmp_path / f"gt{n:06d}.png"
        Image.fromarray(label if 0 < n < 5 else np.zeros_like(label)).save(path)
        items.append(SequenceItem(number=n, image=path, label=path))
    assert [it.number for it in montage_picks(items, 2)] == [1, 4]  # spread over the frames with a person
    assert [it.number for it in montage_picks(items, 9)] == [1, 2, 3, 4]
    assert [it.number for it in montage_picks(items[:1] + items[5:], 3)] == [0, 5]  # nobody anywhere: all frames
