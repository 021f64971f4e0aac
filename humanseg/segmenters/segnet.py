"""A network trained with ``python -m humanseg train`` (SegNet, U-Net, with or without the site plate).

Frames are resized to the model's input size (its training size), run through the network in batches, and the
person probability is resized back to the frame size. Plate-conditioned models use the checkpoint's plate, or
the one the caller gives (e.g. the empty scene of another camera), resized like the frames.

Plate completion (plate models, on by default): every blob of the plate-difference mask (the rule of
:mod:`humanseg.plate` that ``plate-diff`` uses, same plate, at frame resolution) that the network's mask covers for
at least a quarter is added to it. The network decides *which* changes are people; the plate difference gives their
full extent at full resolution: thin limbs and edges the network's 240x320 input blurs, and what people carry
(CDnet and SBI masks include it). Shadows cast away from people, light changes and plate errors stay out. Measured
on the dev sequences with the 15-minute models of docs/history/dev_results_2026-12-01 (network alone ->
completed): F 0.984 -> 0.994 (pedestrians), 0.853 -> 0.911 (HallAndMonitor), 0.803 -> 0.972 (CaVignal).

The plate follows the site (plate models, on by default, ``follow_plate``; :mod:`humanseg.maintained_plate`): each
frame's light is fitted onto the plate for completion, the network sees the frame and that plate mapped back to
the captured plate's light (``captured_light``, on by default: the light its composites were made in; on the dev
sequences' drift probe it lifted HallAndMonitor's light ramp from 0.847 to 0.914 with the same model and left the
unchanged frames within 1e-4, bench/ablate_site_model.py), and the plate is updated slowly
from the pixels the segmenter calls background, never under its mask or the mask's margin, so a person standing
still is kept while light and moved objects are absorbed. Then the segmenter is stateful (``reset()`` between
videos); frames of one batch share the plate as it was before the batch. ``follow_plate=False`` gives the masks of
a fixed plate, as before.

Shadow-aware completion (``shadow_rule``, on by default): of the pixels completion adds (where the network's own
probability is 0.5 or less), the shadow-like ones stay out: darker than the plate by a luminance ratio within
:data:`SHADOW_DARKENING`, with nearly the plate's chromaticity (:data:`SHADOW_CHROMA`). A floor shadow attached to
a person joins that person's plate-difference blob; the network's own mask, and a band along its edge
(:data:`SHADOW_BAND`, where dark clothes and limbs look shadow-like too), are never cut; nor are shadow-like pieces
that the kept mask encloses (``shadow_holes``): creases and folds of pale clothes over a grey floor look like a
shadow, but a cast shadow reaches out of the person's outline (:func:`enclosed`). Measured with the site
models of out/dev15-drift (off -> on): F 0.9945 -> 0.9945 (pedestrians), 0.9721 -> 0.969 (CaVignal); on
HallAndMonitor, whose labels leave the floor shadows out, completing shrunk true masks: 0.920 -> 0.958 (precision
0.906 -> 0.985). Without the band the rule cost 0.003-0.008 on the first two. Keeping the enclosed pieces, on the
15-minute models of out/dev-reg (registered composites, seed 0): CaVignal 0.9657 -> 0.9696 (rule off: 0.9711),
HallAndMonitor 0.9358 -> 0.9359, pedestrians 0.9942 both.

The site's working scale (:mod:`humanseg.scale`; the checkpoint's, from its dataset): when the frame at that scale
is larger than the network's input, the network runs on input-sized tiles of the scaled frame where the plate shows
a change (:func:`humanseg.scale.tile_origins`), the tile probabilities are pasted back (blended where tiles
overlap, each weighted down near its edges inside the frame: :func:`humanseg.scale.tile_weights`; 0 where none
ran) and resized to the frame; a frame without change runs no network. People then reach the
network at the size its composites showed them, whatever the camera's resolution. Otherwise (or without a working
scale, or ``tiles=False``) the whole frame is resized to the input as before, and runs the network only when the
plate shows a change of a person's height there (:data:`GATE_HEIGHT`). Completion's morphology radii follow
the working scale (:func:`humanseg.scale.radii_height`). ``tile_fit`` (opt-in, to be measured): each change gets one
tile of its own size rounded up to the network's multiple (:func:`humanseg.scale.fitted_tiles`) instead of an
input-sized one, tiles of one size batched together; ONNX Runtime then runs a graph that takes any size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from humanseg.maintained_plate import DEFAULT_UPDATE_S, MaintainedPlate
from humanseg.plate import DEFAULT_RULE, code_table, distance_codes, morphology
from humanseg.scale import fitted_tiles, pad_to_tile, radii_height, tile_origins, tile_weights, tiled, working_size
from humanseg.segmenters.base import Segmenter, load_rgb, validate_frame

# A plate-difference blob joins the mask when the network covers at least this share of it: a light change or
# a plate error that merges with a person into one large blob stays out (on the dev sequences any share from
# "one pixel" to 0.3 gave the same F within 0.003).
COMPLETION_COVER = 0.25
# Frames per network call by device type: on a CPU a batch beyond a few frames gains nothing and holds memory;
# a GPU needs large batches to be kept busy (bench/gpu_check.py).
BATCH_SIZES = {"cpu": 8, "cuda": 64}
#: How the network runs: ``torch``, or ``onnxruntime`` (CPU only; the faster one there, see
#: :mod:`humanseg.segmenters.onnx_network`). A checkpoint on the CPU uses ONNX Runtime when it is installed.
RUNTIMES = ("torch", "onnxruntime")
#: Luminance ratio (frame / plate) of a cast shadow: it keeps 35-92% of the plate's light. Above 0.92 the change is
#: within light flicker and the ramp's noise; below 0.35 the pixel is more likely a dark object (hair, clothes) than
#: a shadow on a lit floor (the bounds of the usual HSV shadow detectors, e.g. Cucchiara et al. 2003, 0.4-0.9).
SHADOW_DARKENING = (0.35, 0.92)
#: Largest difference of normalised rgb (r / (r + g + b), ...) between a shadow and its plate: a shadow dims the
#: floor's light but keeps most of its colour. Measured on pedestrians: background pixels differ by 0.001 (median,
#: 0.009 at the 95th percentile), its labelled hard shadows by 0.078 (median; skylight makes them bluer), so 0.04
#: would miss half of those. With the band below, 0.08 gave F 0.9945 / 0.969 on pedestrians / CaVignal (same as
#: 0.04) and 0.958 vs 0.954 on HallAndMonitor's shadows (completion of shrunk true masks).
SHADOW_CHROMA = 0.08
#: Pixels (at the working scale) around the plate's changes that tiles also cover: the context the network needs
#: around a person's edge (a few of its receptive field's pixels) and slack for limbs just under the threshold.
TILE_MARGIN = 16
#: Completion adds shadow-like pixels within this many closing radii of the network's mask all the same: there
#: they are the person's own dark edges and limbs (dark clothes on a grey floor are shadow-like; on pedestrians a
#: third of the person's pixels are) that the network's low-resolution mask blurs away; a floor shadow reaches
#: farther from the body.
SHADOW_BAND = 2
#: A frame resized whole to the network's input runs the network only when a change there is at least this many
#: pixels tall: the composites place no one shorter than 14 px (dataset_builder's ``CompositeConfig.min_height``),
#: so a shorter change is sensor noise, a plate error or a light flicker, not a person the model learnt to find.
#: HallAndMonitor's empty first frames against its estimated plate show changes up to 9 px tall.
GATE_HEIGHT = 12


def site_label(model: str) -> str:
    """The one name a trained site model has in every table, caption and file name: ``site:<model>``, where
    ``<model>`` is the run (``site/run`` in the app, the run folder on the command line) or, in the site
    benchmark, the preset it trained."""
    return f"site:{model}"


class SegNetSegmenter(Segmenter):
    """Person probability from a trained checkpoint (``name = "segnet"``).

    ``checkpoint``: a ``.pt`` file written by training; ``plate``: RGB ``uint8`` array or image path, overriding
    the checkpoint's plate (plate-conditioned models only); ``flip_tta``: also run the horizontally mirrored
    frame and average (twice the compute, slightly smoother masks); ``complete``: plate completion (see the
    module docstring; plate models only); ``device``: ``"cpu"``/``"cuda"``, default CUDA when available;
    ``batch_size``: frames per network call in ``segment_batch`` and on the video path (default by device:
    :data:`BATCH_SIZES`); ``runtime``: one of :data:`RUNTIMES` (default: ``onnxruntime`` on the CPU when it is
    installed, else ``torch``; its masks equal torch's within 1e-4). ``follow_plate``: light compensation and a
    slowly updated plate (module docstring), ``plates``: further captured plates (other light) to choose from,
    ``plate_update_s``/``fps``: the update's time constant in seconds and the frame rate it is counted at.
    ``working_scale``: network px per frame px (default: the checkpoint's; see the module docstring), ``tiles``:
    run on tiles at that scale when the frame is larger than the input (``False``: always the whole frame, as
    models without a working scale do). ``tile_fit``: on the tiled path, each change gets one tile of its own
    size (:func:`humanseg.scale.fitted_tiles`, multiples of the network's downsampling) instead of an input-sized
    one: less compute per person; off by default until measured against input-sized tiles on the same models
    (bench/ablate_site_model.py). ``tile_blend``: overlapping tiles are blended, each weighted down near its
    edges inside the frame (:func:`humanseg.scale.tile_weights`); ``False``: their maximum, as before.
    ``tile_overlap``: input-sized tiles spread over a change share at least this many px (working scale).
    ``shadow_rule``: shadow-like pixels stay out of completion; ``shadow_holes``: except those enclosed by what
    is kept (holes in a person, not a shadow cast out of its outline).
    ``captured_light`` (with ``follow_plate``): the network sees the frame and its plate mapped back to the
    captured plate's light (:meth:`MaintainedPlate.in_captured_light`), the light its composites were made in.
    ``scale_tta``: further factors of the scale the network sees each frame at (e.g. ``(0.8,)``: people 20%
    smaller), run on tiles over the changes and averaged in; off: on the six dev sequences (1.25) it gave
    HallAndMonitor +0.001 / +0.004 (x3), the others -0.001 to 0, at about twice the time
    (bench/ablate_site_model.py, README's levers table).
    """

    name = "segnet"
    takes_plate = True
    takes_checkpoint = True
    trained = True
    batches = True

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        plate: np.ndarray | str | Path | None = None,
        *,
        flip_tta: bool = False,
        complete: bool = True,
        device: str | None = None,
        batch_size: int | None = None,
        runtime: str | None = None,
        follow_plate: bool = True,
        plates: list[np.ndarray | str | Path] | None = None,
        plate_update_s: float = DEFAULT_UPDATE_S,
        fps: float = 25.0,
        working_scale: float | None = None,
        tiles: bool = True,
        shadow_rule: bool = True,
        shadow_holes: bool = True,
        tile_fit: bool = False,
        captured_light: bool = True,
        tile_blend: bool = True,
        tile_overlap: int = 0,
        scale_tta: tuple[float, ...] = (),
    ) -> None:
        import torch

        from humanseg.checkpoint import load_checkpoint
        from humanseg.device import choose_device

        if checkpoint is None:
            raise ValueError(
                "the segnet segmenter needs a checkpoint (a .pt file from `python -m humanseg train`); "
                "pass checkpoint=PATH"
            )
        model, info = load_checkpoint(checkpoint, device=choose_device(device))
        # channels_last: the layout cuDNN tensor cores and oneDNN prefer (on a busy 2-core CPU the gain was
        # within noise, see bench/bench_models.py; on GPUs it is the fast path).
        model.to(memory_format=torch.channels_last)
        self._setup(model, plate if plate is not None else info.plate, flip_tta, batch_size, complete)
        self._follow(follow_plate, plates, plate_update_s, fps, captured_light)
        self._scaling(
            working_scale if working_scale is not None else info.working_scale,
            tiles,
            shadow_rule,
            shadow_holes,
            tile_fit,
            tile_blend,
            tile_overlap,
            scale_tta,
        )
        # Fitted tiles come in several sizes: then the graph takes any height and width.
        self._onnx = _onnx_network(model, runtime, any_size=self.tile_fit)
        self.checkpoint = Path(checkpoint)
        self.label = site_label(self.checkpoint.parent.name or self.checkpoint.stem)
        self.info = info

    @classmethod
    def from_model(
        cls,
        model: Any,
        plate: np.ndarray | str | Path | None = None,
        *,
        flip_tta: bool = False,
        batch_size: int | None = None,
        complete: bool = True,
        follow_plate: bool = False,
        plate_update_s: float = DEFAULT_UPDATE_S,
        fps: float = 25.0,
        working_scale: float | None = None,
        shadow_rule: bool = True,
        shadow_holes: bool = True,
        tile_fit: bool = False,
        tile_blend: bool = True,
        tile_overlap: int = 0,
        scale_tta: tuple[float, ...] = (),
    ) -> SegNetSegmenter:
        """Wrap an in-memory network (e.g. during training, for validation on real sequences).

        The model is used as it is (device, memory format); it is put in eval mode while segmenting and its
        previous mode is restored afterwards. ``follow_plate`` is off here by default: training validates on
        the captured plate. ``working_scale``: the training dataset's, so that validation runs as the saved
        checkpoint will (None: the whole frame).
        """
        self = cls.__new__(cls)
        self._setup(model, plate, flip_tta, batch_size, complete)
        self._follow(follow_plate, None, plate_update_s, fps)
        self._scaling(working_scale, True, shadow_rule, shadow_holes, tile_fit, tile_blend, tile_overlap, scale_tta)
        self._onnx = None  # a live model (e.g. in training) changes under us: torch, never a stale export
        self.checkpoint = None
        self.info = None
        return self

    def _setup(self, model: Any, plate: Any, flip_tta: bool, batch_size: int | None, complete: bool) -> None:
        import torch

        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.config = model.config
        self.flip_tta = bool(flip_tta)
        first_conv = next(p for p in model.parameters() if p.ndim == 4)
        self._device = first_conv.device
        self.batch_size = int(batch_size) if batch_size is not None else BATCH_SIZES.get(self._device.type, 8)
        self._channels_last = first_conv.is_contiguous(memory_format=torch.channels_last) and not (
            first_conv.is_contiguous()
        )
        self._plate_cache: dict[tuple[int, int], Any] = {}
        if not self.config.needs_plate:
            if plate is not None:
                raise ValueError(
                    f"this model takes only frames (inputs={self.config.inputs!r}), so it cannot use a plate; "
                    "leave plate unset"
                )
            self.plate = None
        else:
            if plate is None:
                raise ValueError(
                    f"this model needs the site's empty-scene plate (inputs={self.config.inputs!r}) and the "
                    "checkpoint holds none; pass plate=IMAGE"
                )
            self.plate = load_rgb(plate, "plate")
        self.complete = bool(complete) and self.plate is not None
        self._plate_diff: dict[tuple[int, int], np.ndarray] = {}  # frame (h, w) -> plate at that size, for completion
        self._onnx_plates: dict[tuple[int, bool], np.ndarray] = {}  # (batch, mirrored) -> the graph's plate input

    def _follow(
        self, follow_plate: bool, plates: list[Any] | None, update_s: float, fps: float, captured_light: bool = True
    ) -> None:
        """Set up the maintained plate (plate models with ``follow_plate``); built at the first frame's size."""
        self.captured_light = bool(captured_light)
        self.follow_plate = bool(follow_plate) and self.plate is not None
        self._plates = [self.plate, *(load_rgb(p, "plate") for p in plates or [])] if self.follow_plate else []
        self.plate_update_s, self.fps = float(update_s), float(fps)
        if self.follow_plate and (update_s < 0 or fps <= 0):
            raise ValueError(f"plate_update_s must be >= 0 and fps > 0, got {update_s}, {fps}")
        self.stateful = self.follow_plate
        self.maintained: MaintainedPlate | None = None

    def _scaling(
        self,
        working_scale: float | None,
        tiles: bool,
        shadow_rule: bool,
        shadow_holes: bool,
        tile_fit: bool,
        tile_blend: bool,
        tile_overlap: int,
        scale_tta: tuple[float, ...],
    ) -> None:
        if working_scale is not None and not working_scale > 0:
            raise ValueError(f"working_scale must be > 0 (network px per frame px) or None, got {working_scale!r}")
        side = min(self.input_size)
        if not 0 <= tile_overlap < side:
            raise ValueError(
                f"tile_overlap must be 0 to {side - 1} px (less than the network input's shorter side), got "
                f"{tile_overlap!r}"
            )
        if not all(f > 0 for f in scale_tta):
            raise ValueError(f"scale_tta must be factors > 0 (e.g. (0.8,)), got {scale_tta!r}")
        self.scale_tta = tuple(float(f) for f in scale_tta)
        self.working_scale = None if working_scale is None else float(working_scale)
        self.tiles = bool(tiles)
        self.tile_fit = bool(tile_fit)
        self.tile_blend = bool(tile_blend)
        self.tile_overlap = int(tile_overlap)
        self.shadow_rule = bool(shadow_rule)
        self.shadow_holes = bool(shadow_holes)
        # (frame (h, w), scaled (h, w)) -> the captured plate padded at that scale
        self._tile_plates: dict[tuple[tuple[int, int], tuple[int, int]], np.ndarray] = {}

    @property
    def scale(self) -> float | None:
        """The working scale the frames are tiled at, or ``None`` (``tiles=False`` or no working scale)."""
        return self.working_scale if self.tiles else None

    def reset(self) -> None:
        """Back to the captured plate (a maintained plate forgets the video so far)."""
        self.maintained = None

    def set_fps(self, fps: float) -> None:
        """Count the plate update's time constant (seconds) at ``fps``, the frame rate of the clip segmented next."""
        if fps <= 0:
            raise ValueError(f"fps must be > 0 (the clip's frame rate), got {fps}")
        self.fps = float(fps)
        if self.maintained is not None:
            self.maintained.fps = fps

    def background(self) -> np.ndarray | None:
        """The plate in use: the maintained one after a frame, else the captured one (``None`` for frame-only
        models)."""
        return self.maintained.plate if self.maintained is not None else self.plate

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the network runs at."""
        return self.config.input_size

    def _segment(self, frame: np.ndarray) -> np.ndarray:
        return self._run([frame])[0]

    def segment_batch(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Segment frames ``batch_size`` at a time (they may differ in size)."""
        frames = [validate_frame(f) for f in frames]
        out: list[np.ndarray] = []
        for i in range(0, len(frames), self.batch_size):
            out.extend(self._run(frames[i : i + self.batch_size]))
        return out

    def _run(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        plates = self._compensated(frames) if self.follow_plate else None
        # The network sees frame and plate in the captured plate's light (its composites' light); completion
        # compares the frame with the plate compensated to the frame's light.
        net_frames, net_plates = frames, plates
        if plates is not None and self.captured_light and self.maintained is not None:
            pairs = [self.maintained.in_captured_light(f, [f, q]) for f, q in zip(frames, plates, strict=True)]
            net_frames, net_plates = [f for f, _ in pairs], [q for _, q in pairs]
        is_tiled = [tiled(f.shape[:2], self.scale, self.input_size) for f in frames]
        out: list[np.ndarray] = [np.empty(0)] * len(frames)
        for want in (False, True):
            idx = [i for i, t in enumerate(is_tiled) if t == want]
            if not idx:
                continue
            part = [net_frames[i] for i in idx]
            own = None if net_plates is None else [net_plates[i] for i in idx]
            if want:
                probs = self._tiled(part, own)
            else:
                probs = self._whole(part, own)
            for i, p in zip(idx, probs, strict=True):
                out[i] = p
        # The scale each frame ran at: the working scale where tiled, else its height resized to the input's.
        bases = [self.scale if t else self.input_size[0] / f.shape[0] for f, t in zip(frames, is_tiled, strict=True)]
        for n, factor in enumerate(self.scale_tta, start=1):  # running mean over the scales
            for base in set(bases):  # one batched call per scale (a video's frames share one)
                idx = [i for i, b in enumerate(bases) if b == base]
                own = None if net_plates is None else [net_plates[i] for i in idx]
                for i, extra in zip(idx, self._tiled([net_frames[i] for i in idx], own, base * factor), strict=True):
                    out[i] = (n * out[i] + extra) / (n + 1)
        if self.complete:
            own = plates if plates is not None else [None] * len(frames)
            out = [self._completed(p, f, q) for p, f, q in zip(out, frames, own, strict=True)]
        if self.maintained is not None:
            for p, f in zip(out, frames, strict=True):
                self.maintained.update(f, p > 0.5)
        return out

    def _whole(self, frames: list[np.ndarray], plates: list[np.ndarray] | None) -> list[np.ndarray]:
        """Person probability of each frame resized whole to the network's input (and its plate; ``None``: the
        captured one). A frame whose plate shows no change of a person's height (:data:`GATE_HEIGHT`) runs no
        network, as the tiled path runs no tile where nothing changed: there is no one to find, and an empty scene
        costs the plate test, not the network."""
        from humanseg.models import resize_image

        size = self.input_size
        small = [resize_image(f, size) for f in frames]
        own = None if plates is None else [resize_image(p, size) for p in plates]
        if self.plate is None:  # frame-only models: nothing says where people can be
            run = list(range(len(frames)))
        else:
            compare = own if own is not None else [self._frame_plate(size)] * len(frames)
            run = [
                i for i, (f, q) in enumerate(zip(small, compare, strict=True)) if _tallest_change(f, q) >= GATE_HEIGHT
            ]
        out = [np.zeros(f.shape[:2], np.float32) for f in frames]
        if run:
            probs = self._net([small[i] for i in run], None if own is None else [own[i] for i in run])
            for i, prob in zip(run, probs, strict=True):
                out[i] = _resize_prob(prob, frames[i].shape[:2])
        return out

    def _net(self, frames: list[np.ndarray], plates: list[np.ndarray] | None) -> np.ndarray:
        """The network's person probability ``[B, h, w]`` for input-sized RGB ``uint8`` frames (and their plates;
        ``None``: the captured plate at the input size)."""
        import torch

        stacked = np.stack(frames)
        net_plates = None if plates is None else np.stack(plates)
        if self._onnx is not None:
            # NCHW made contiguous while still uint8 (a quarter of the bytes of a float copy), in numpy: torch's
            # threads on a busy CPU waited at their barriers for 20 ms per small tile; the same float32 numbers.
            x = np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)).astype(np.float32)
            return self._run_onnx(np.divide(x, np.float32(255.0), out=x), net_plates)
        return self._run_torch(torch.from_numpy(stacked), net_plates)

    def _tiled(
        self, frames: list[np.ndarray], plates: list[np.ndarray] | None, scale: float | None = None
    ) -> list[np.ndarray]:
        """Person probability of each frame from tiles of it at the working scale (or ``scale``), run over where
        its plate shows a change (input-sized, or fitted to the changes with ``tile_fit``), ``batch_size`` tiles of
        one size per network call (see the module docstring)."""
        from humanseg.models import resize_image

        scale = self.scale if scale is None else scale
        tile = self.input_size
        # The U-Net pads its input to a multiple of 2**depth, SegNet's five poolings halve it: fitted tiles are
        # multiples of that, so no tile pixel is padding.
        multiple = int(getattr(self.model, "multiple", 32))
        canvases: list[tuple[np.ndarray, tuple[int, int], tuple[int, int]]] = []
        crops: list[tuple[int, int, int, int, int]] = []  # (frame, row, column, height, width) of each tile
        tile_frames: list[np.ndarray] = []
        tile_plates: list[np.ndarray] = []
        for k, frame in enumerate(frames):
            size = working_size(frame.shape[:2], scale)
            small, pad = pad_to_tile(resize_image(frame, size), tile)
            if self.plate is None:
                plate = None
            elif plates is None:
                plate = self._working_plate(frame.shape[:2], size)
            else:  # this frame's compensated plate
                plate = pad_to_tile(resize_image(plates[k], size), tile)[0]
            # Without a plate (frame-only models) nothing says where people can be: the whole scaled frame.
            changed = np.ones(small.shape[:2], bool) if plate is None else _plate_changes(small, plate)
            if self.tile_fit:
                boxes = fitted_tiles(changed, tile, multiple=multiple)
            else:
                boxes = [(y, x, *tile) for y, x in tile_origins(changed, tile, self.tile_overlap)]
            for y, x, th, tw in boxes:
                crops.append((k, y, x, th, tw))
                tile_frames.append(small[y : y + th, x : x + tw])
                if plate is not None:
                    tile_plates.append(plate[y : y + th, x : x + tw])
            # Probability times weight, and the weights: tiles are blended (or, without tile_blend, the maximum).
            canvases.append((np.zeros((2, *small.shape[:2]), np.float32), pad, size))
        sizes: dict[tuple[int, int], list[int]] = {}  # tile (height, width) -> its crops, in order
        for i, crop in enumerate(crops):
            sizes.setdefault(crop[3:], []).append(i)
        for same in sizes.values():
            for j in range(0, len(same), self.batch_size):
                part = same[j : j + self.batch_size]
                probs = self._net(
                    [tile_frames[i] for i in part], [tile_plates[i] for i in part] if tile_plates else None
                )
                for prob, i in zip(probs, part, strict=True):
                    k, y, x, th, tw = crops[i]
                    acc, weights = canvases[k][0][:, y : y + th, x : x + tw]
                    if self.tile_blend:
                        weight = tile_weights((y, x), (th, tw), canvases[k][0].shape[1:])
                        acc += weight * prob
                        weights += weight
                    else:
                        np.maximum(acc, prob, out=acc)
        out = []
        for (canvas, (top, left), (h, w)), frame in zip(canvases, frames, strict=True):
            acc, weights = canvas[:, top : top + h, left : left + w]
            prob = np.divide(acc, weights, out=np.zeros_like(acc), where=weights > 0) if self.tile_blend else acc
            out.append(_resize_prob(prob, frame.shape[:2]))
        return out

    def _working_plate(self, shape: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        """The captured plate as the frames of ``shape`` are tiled: at the frame's size, then the working scale,
        padded like them (built once per frame size and scale)."""
        from humanseg.models import resize_image

        if (shape, size) not in self._tile_plates:
            plate = resize_image(self._frame_plate(shape), size)
            self._tile_plates[shape, size] = pad_to_tile(plate, self.input_size)[0]
        return self._tile_plates[shape, size]

    def _frame_plate(self, shape: tuple[int, int]) -> np.ndarray:
        """The captured plate at a frame's size (built once per size)."""
        from humanseg.models import resize_image

        if shape not in self._plate_diff:
            self._plate_diff[shape] = resize_image(self.plate, shape)
        return self._plate_diff[shape]

    def _compensated(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Each frame's plate: the maintained plate (at the frames' size) with the frame's light fitted on."""
        from humanseg.models import resize_image

        shape = frames[0].shape
        if self.maintained is None or self.maintained.candidates[0].shape != shape:
            plates = [resize_image(p, shape[:2]) for p in self._plates]
            self.maintained = MaintainedPlate(plates, fps=self.fps, update_s=self.plate_update_s)
        if any(f.shape != shape for f in frames):
            raise ValueError("frames of one batch differ in size; a maintained plate follows one video at a time "
                             "(call reset() between videos, or follow_plate=False)")  # fmt: skip
        return [self.maintained.compensated(f) for f in frames]

    def _run_onnx(self, x: np.ndarray, plates: np.ndarray | None = None) -> np.ndarray:
        own = None if plates is None else np.ascontiguousarray(plates.transpose(0, 3, 1, 2), np.float32) / 255.0
        plate = own if own is not None else self._onnx_plate(len(x), mirrored=False)
        prob = self._onnx.predict(x, plate)
        if self.flip_tta:  # the plate mirrored with the frame
            flipped = np.ascontiguousarray(x[..., ::-1])
            mirrored = (
                np.ascontiguousarray(own[..., ::-1]) if own is not None else self._onnx_plate(len(x), mirrored=True)
            )
            prob = 0.5 * (prob + self._onnx.predict(flipped, mirrored)[..., ::-1])
        return prob

    def _onnx_plate(self, batch: int, *, mirrored: bool) -> np.ndarray | None:
        """The plate as the graph takes it, ``[batch, 3, H, W]`` float32, built once per batch size."""
        if self.plate is None:
            return None
        key = (batch, mirrored)
        if key not in self._onnx_plates:
            plate = self._plate_tensor(*self.input_size).cpu().numpy()
            plate = plate[..., ::-1] if mirrored else plate
            self._onnx_plates[key] = np.ascontiguousarray(np.broadcast_to(plate, (batch, *plate.shape[1:])))
        return self._onnx_plates[key]

    def _run_torch(self, batch: Any, plates: np.ndarray | None = None) -> np.ndarray:
        import torch

        from humanseg.models import compose_input

        h, w = self.input_size
        # uint8 to the device, float there: a quarter of the bytes over PCIe (the same numbers on a CPU).
        x = batch.to(self._device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        if plates is None:
            plate = self._plate_tensor(h, w)
        else:
            plate = torch.from_numpy(plates).to(self._device).permute(0, 3, 1, 2).float().div_(255.0)
        x = compose_input(x, plate, self.config.inputs)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        was_training = self.model.training
        self.model.eval()
        # bf16 on CUDA (tensor cores, same range as float32); a CPU runs float32, bf16 there is slower and lossier.
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self._device.type == "cuda")
        try:
            with autocast:
                prob = self.model.predict(x)
                if self.flip_tta:
                    prob = 0.5 * (prob + self.model.predict(x.flip(-1)).flip(-1))
        finally:
            self.model.train(was_training)
        return prob.float().cpu().numpy()

    def _completed(self, prob: np.ndarray, frame: np.ndarray, plate: np.ndarray | None = None) -> np.ndarray:
        """``prob`` with the plate-difference blobs that touch its mask added (see the module docstring).

        Only where it can matter: a blob of the (opened and closed) plate difference lies inside one region of the
        raw difference grown by the closing radius, so the morphology and the blob bookkeeping run only around
        the regions the network's mask touches, in crops wide enough that their values are those of the whole
        frame. Regions are found on a grid of ``step`` x ``step`` cells (any changed pixel marks its cell), a
        quarter of the pixels or fewer above 480 rows. The result equals the whole-frame computation
        (tests/test_completion.py). ``plate``: this frame's plate at its size (default: the captured one).
        """
        import cv2

        shape = frame.shape[:2]
        plate = self._frame_plate(shape) if plate is None else plate
        person = prob > 0.5
        if not person.any():
            return prob  # a blob joins only when the network covers part of it
        codes = distance_codes(frame, plate, DEFAULT_RULE)
        table = _TABLE
        # The radii of what the network sees: the frame's height, or the working scale's when it is tiled.
        radii_h = radii_height(shape, self.scale, self.input_size)
        r_open, r_close = DEFAULT_RULE.radii(radii_h)
        # Where the raw difference passes 0.5, grown by the closing radius: every final blob is inside one region.
        # One dilation both grows it and takes the maximum over each step x step cell (its anchor at the radius).
        step = max(1, shape[0] // 240)
        size = 2 * r_close + step
        changed = cv2.dilate(
            (codes >= _HALF_CODE).view(np.uint8), np.ones((size, size), np.uint8), anchor=(r_close,) * 2
        )
        n, cells, boxes, _ = cv2.connectedComponentsWithStats(changed[::step, ::step], connectivity=8)
        held = cv2.dilate(person.view(np.uint8), np.ones((step, step), np.uint8), anchor=(0, 0))[::step, ::step]
        touched = np.flatnonzero(np.bincount(cells[held.view(bool)], minlength=n)[1:]) + 1
        if touched.size == 0:
            return prob
        out = prob.copy()
        reach = 2 * (r_open + r_close)  # how far the opening and closing look: the crop's margin
        h, w = shape
        for region in touched:
            x, y = boxes[region, 0] * step, boxes[region, 1] * step
            bw, bh = min(boxes[region, 2] * step, w - x), min(boxes[region, 3] * step, h - y)
            y0, x0 = max(y - reach, 0), max(x - reach, 0)
            crop = morphology(codes[y0 : min(y + bh + reach, h), x0 : min(x + bw + reach, w)], DEFAULT_RULE, radii_h)
            inner = (slice(y, y + bh), slice(x, x + bw))
            diff = table[crop[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw]]
            cy, cx = boxes[region, 1], boxes[region, 0]
            own = cells[cy : cy + boxes[region, 3], cx : cx + boxes[region, 2]] == region
            if step > 1:
                own = own.repeat(step, axis=0).repeat(step, axis=1)[:bh, :bw]
            blob_mask = (diff > 0.5) & own
            k, blobs = cv2.connectedComponents(blob_mask.view(np.uint8), connectivity=8)
            if k <= 1:
                continue
            area = np.bincount(blobs.ravel(), minlength=k)
            covered = np.bincount(blobs.ravel(), weights=person[inner].ravel(), minlength=k)
            keep = covered >= COMPLETION_COVER * area
            keep[0] = False  # label 0 is "no blob"
            added = keep[blobs]
            if self.shadow_rule:  # the network's own mask and the band along its edge are never cut
                y1, x1 = min(y + bh + reach, h), min(x + bw + reach, w)
                band = max(1, SHADOW_BAND * r_close)  # <= reach: the crop's margin holds every mask pixel it sees
                near = cv2.dilate(person[y0:y1, x0:x1].view(np.uint8), _disc(band))[
                    y - y0 : y - y0 + bh, x - x0 : x - x0 + bw
                ]
                cut = added & shadow_like(frame[inner], plate[inner]) & ~near.view(bool)
                added &= ~cut
                if self.shadow_holes and cut.any():  # a cast shadow reaches out of the outline; a hole does not
                    rim = np.zeros((bh + 2, bw + 2), bool)  # the kept mask one pixel around the box
                    # Beyond the frame counts as kept: the border closes the outline of a person it cuts (a crease
                    # in legs cut by the lower edge is a hole), while a cast shadow still touches floor beside it.
                    rim[0], rim[-1], rim[:, 0], rim[:, -1] = y == 0, y + bh == h, x == 0, x + bw == w
                    rim[1:-1, 1:-1] = added
                    ry0, rx0 = y - 1, x - 1  # the box grown by one pixel, clipped to the frame
                    sy, sx = slice(max(ry0, 0), min(y + bh + 1, h)), slice(max(rx0, 0), min(x + bw + 1, w))
                    rim[sy.start - ry0 : sy.stop - ry0, sx.start - rx0 : sx.stop - rx0] |= person[sy, sx]
                    added |= enclosed(cut, rim)
            np.maximum(out[inner], np.where(added, diff, 0.0), out=out[inner])
        return out

    def _plate_tensor(self, h: int, w: int) -> Any:
        if self.plate is None:
            return None
        if (h, w) not in self._plate_cache:
            from humanseg.models import images_to_tensor, resize_image

            self._plate_cache[(h, w)] = images_to_tensor(resize_image(self.plate, (h, w))).to(self._device)
        return self._plate_cache[(h, w)]

    def close(self) -> None:
        self._plate_cache.clear()
        self._plate_diff.clear()
        self._onnx_plates.clear()
        self._tile_plates.clear()

    def __repr__(self) -> str:
        src = str(self.checkpoint) if self.checkpoint is not None else "in-memory model"
        return f"SegNetSegmenter({src}, arch={self.config.arch!r}, inputs={self.config.inputs!r})"


# The default rule's probability per distance code, and the first code above probability 0.5 (the table never
# decreases, so "code >= _HALF_CODE" is "probability > 0.5").
_TABLE = code_table(DEFAULT_RULE)
assert _TABLE is not None  # the default ramp ends at distance 45
_HALF_CODE = int(np.searchsorted(_TABLE, 0.5, side="right"))


def _disc(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def enclosed(cut: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The pixels of ``cut`` (bool ``H x W``) whose 4-connected piece of ``cut`` touches only ``kept`` pixels
    (bool ``H+2 x W+2``: one pixel more on every side; ``cut`` and ``kept`` are disjoint): holes in a mask, not
    patches that reach out of it. Whether a piece at the edge of ``cut`` is enclosed depends on what ``kept``
    says lies beyond it (completion marks beyond the frame's border as kept)."""
    import cv2

    n, pieces = cv2.connectedComponents(cut.view(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros_like(cut)
    free = np.zeros_like(kept)
    free[1:-1, 1:-1] = cut
    free = ~(kept | free)  # neither kept nor cut: background a piece may touch
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
    leaks = cv2.dilate(free.view(np.uint8), cross)[1:-1, 1:-1].view(bool) & cut
    inside = np.ones(n, bool)
    inside[0] = False
    inside[pieces[leaks]] = False
    return inside[pieces]


def shadow_like(frame: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Where ``frame`` looks like a cast shadow on ``plate`` (RGB ``uint8``, same size): bool ``H x W``, darker by a
    luminance ratio within :data:`SHADOW_DARKENING` with the plate's chromaticity within :data:`SHADOW_CHROMA`."""
    f, p = frame.astype(np.float32), plate.astype(np.float32)
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    ratio = (f @ luma) / np.maximum(p @ luma, 1.0)
    chroma = np.abs(
        f / np.maximum(f.sum(axis=2, keepdims=True), 1.0) - p / np.maximum(p.sum(axis=2, keepdims=True), 1.0)
    )
    low, high = SHADOW_DARKENING
    return (ratio >= low) & (ratio <= high) & (chroma.max(axis=2) <= SHADOW_CHROMA)


def _plate_moved(frame: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Where the frame differs from its plate at all: the raw plate distance over the rule's low end (probability
    above 0), without isolated pixels (the rule's own 3 x 3 opening: sensor noise); ``uint8`` 0/1."""
    import cv2

    moved = (_TABLE[distance_codes(frame, plate, DEFAULT_RULE)] > 0).view(np.uint8)
    return cv2.morphologyEx(moved, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def _tallest_change(frame: np.ndarray, plate: np.ndarray) -> int:
    """Height in pixels of the tallest connected change of :func:`_plate_moved` (0: none)."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(_plate_moved(frame, plate), connectivity=8)
    return int(stats[1:, cv2.CC_STAT_HEIGHT].max()) if n > 1 else 0


def _plate_changes(frame: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Where tiles must run on a scaled frame: :func:`_plate_moved` grown by :data:`TILE_MARGIN`."""
    import cv2

    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * TILE_MARGIN + 1,) * 2)
    return cv2.dilate(_plate_moved(frame, plate), grow).view(bool)


def _onnx_network(model: Any, runtime: str | None, *, any_size: bool = False) -> Any:
    """The ONNX Runtime network for ``model`` when ``runtime`` asks for it (or, unset, on the CPU when
    onnxruntime is installed); ``None`` for torch. ``any_size``: the graph takes any height and width."""
    from importlib.util import find_spec

    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")
    device = next(model.parameters()).device.type
    if runtime == "onnxruntime" and device != "cpu":
        raise ValueError(f"runtime 'onnxruntime' runs on the CPU, but the model is on {device}; use device='cpu' "
                         "or runtime='torch'")  # fmt: skip
    if runtime == "torch" or device != "cpu" or (runtime is None and find_spec("onnxruntime") is None):
        return None
    from humanseg.segmenters.onnx_network import OnnxNetwork

    return OnnxNetwork(model, any_size=any_size)


def _resize_prob(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    if prob.shape != tuple(shape):
        prob = cv2.resize(prob, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(prob, 0.0, 1.0).astype(np.float32)
