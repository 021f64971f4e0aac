"""The training dataset in memory, and batch augmentation in torch.

The dataset on disk is what ``dataset_builder`` writes (see docs/ARCHITECTURE.md): ``images/``, ``masks/``,
``plates/`` and ``manifest.json``. It is small (a few thousand frames), so it is loaded once as ``uint8``
tensors and batches are augmented with torch ops on whole batches (on the GPU when training there), which keeps
two CPU cores busy with the network instead of with a data loader.

Augmentation is driven by an explicit ``torch.Generator``, so a batch is a pure function of (indices, seed): the
trainer seeds one per step, which makes resumed and multi-process runs reproduce the same batches.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from humanseg.checks import check_frame_size
from humanseg.progress import bar

DATASET_FORMAT = "humanseg-dataset/1"
#: Augmentation modes: ``default`` (flips, scale/crop jitter, colour, blur, noise) and ``paper`` (flips and
#: rotations of up to +-30 degrees), ``none`` (validation).
AUGMENTATIONS = ("default", "paper", "none")


@dataclass
class TrainSet:
    """A dataset held in memory.

    ``images``: ``uint8 [N, 3, H, W]``; ``masks``: ``uint8 [N, H, W]`` with 0 background / 1 person;
    ``plate_index``: ``int64 [N]`` into ``plates`` (``uint8 [P, 3, H, W]``, the un-jittered site plates);
    ``plate_names``: the plates' paths relative to the dataset; ``is_val``: ``bool [N]``.
    """

    root: Path
    manifest: dict[str, Any]
    images: torch.Tensor
    masks: torch.Tensor
    plate_index: torch.Tensor
    plates: torch.Tensor
    plate_names: list[str]
    is_val: torch.Tensor

    @property
    def id(self) -> str:
        """The manifest's id (a hash of the sources, parameters and seed)."""
        return str(self.manifest.get("id", ""))

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the images in memory."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def indices(self, split: str) -> torch.Tensor:
        """Sample indices of ``split`` (``"train"`` or ``"val"``)."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        mask = self.is_val if split == "val" else ~self.is_val
        return torch.nonzero(mask).flatten()

    def plate_array(self, name: str | None = None) -> np.ndarray:
        """One plate as RGB ``uint8`` ``H x W x 3`` at its own resolution (the site's, not the training size):
        ``name`` (a path relative to the dataset, or a file name in ``plates/``), or the first plate when
        ``None``. Checkpoints keep it, so segmenting and plate completion see the full-resolution plate."""
        # Tiled datasets: samples hold plate windows; the whole plates, at frame size, are listed apart.
        names = self.manifest["site_plates"] if self.manifest.get("tiled") else self.plate_names
        if name is None:
            i = 0
        else:
            matches = [k for k, p in enumerate(names) if p == name or Path(p).name == name]
            if not matches:
                raise ValueError(f"plate {name!r} is not in the dataset; its plates: {', '.join(names)}")
            i = matches[0]
        return _read_rgb(self.root / names[i], None)


def read_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    """Read and check ``manifest.json``; raise ``FileNotFoundError``/``ValueError`` saying what to do."""
    root = Path(dataset_dir)
    path = root / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no dataset manifest at {path}; build a dataset first with `python -m dataset_builder` "
            "(the manifest is written last, so its absence can also mean an interrupted build)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); the dataset is damaged: rebuild it with `python -m dataset_builder "
            "build` (same command, --overwrite)"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        manifest = manifest if isinstance(manifest, dict) else {}
        raise ValueError(f"{path}: format {manifest.get('format')!r} is not {DATASET_FORMAT!r}")
    samples = manifest.get("samples")
    if not isinstance(samples, list) or not samples:
        raise ValueError(f"{path}: 'samples' must be a non-empty list")
    for s in samples:
        if not {"image", "mask", "split"} <= set(s):
            raise ValueError(f"{path}: sample {s!r} lacks one of image, mask, split")
        if s["split"] not in ("train", "val"):
            raise ValueError(f"{path}: sample {s['image']} has split {s['split']!r}, expected 'train' or 'val'")
    return manifest


def _read_rgb(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if size is not None and bgr.shape[:2] != tuple(size):
        bgr = cv2.resize(bgr, (size[1], size[0]), interpolation=_interp(bgr.shape[:2], size))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_mask(path: Path) -> np.ndarray:
    """The mask as gray 'L' values (thresholded after any resize, as the training size asks); a missing or
    undecodable file is a VideoError naming it."""
    from humanseg.video import read_label

    return read_label(path)


def _resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if array.shape[:2] == tuple(size):
        return array
    return cv2.resize(array, (size[1], size[0]), interpolation=_interp(array.shape[:2], size))


def _interp(src: tuple[int, ...], dst: tuple[int, int]) -> int:
    import cv2

    return cv2.INTER_AREA if dst[0] < src[0] or dst[1] < src[1] else cv2.INTER_LINEAR


def load_dataset(dataset_dir: str | Path, size: tuple[int, int] | None = None, progress: bool = False) -> TrainSet:
    """Load a dataset into memory, resizing images, masks and plates to ``size`` (height, width) if given.

    Samples without a ``plate`` entry get the dataset's first plate (or none, if the dataset has no plates: then
    only frame-only models can train on it).
    """
    root = Path(dataset_dir)
    manifest = read_manifest(root)
    samples = manifest["samples"]
    plate_names = sorted({s["plate"] for s in samples if s.get("plate")})
    if not plate_names and (root / "plates").is_dir():
        plate_names = [f"plates/{p.name}" for p in sorted((root / "plates").glob("*.png"))]
    if size is None:
        first = _read_rgb(root / samples[0]["image"], None)
        size = first.shape[:2]
    size = (int(size[0]), int(size[1]))
    check_frame_size(size[1], size[0], f"{root} (training size)")

    iterator = bar(samples, desc="loading dataset", unit="img", enabled=progress, leave=False)
    n = len(samples)
    images = torch.empty((n, 3, *size), dtype=torch.uint8)
    masks = torch.empty((n, *size), dtype=torch.uint8)
    plate_index = torch.zeros(n, dtype=torch.int64)
    for i, s in enumerate(iterator):
        image, mask = _read_rgb(root / s["image"], None), _read_mask(root / s["mask"])
        if mask.shape != image.shape[:2]:
            # Resizing it would train on people shifted away from where they are in the image.
            raise ValueError(
                f"{root / s['mask']}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {s['image']} is "
                f"{image.shape[1]}x{image.shape[0]}; every mask must have its image's size (rebuild the dataset)"
            )
        images[i] = torch.from_numpy(_resized(image, size)).permute(2, 0, 1)
        masks[i] = torch.from_numpy((_resized(mask, size) >= 128).astype(np.uint8))
        if s.get("plate"):
            plate_index[i] = plate_names.index(s["plate"])
    if plate_names:
        plates = torch.stack([torch.from_numpy(_read_rgb(root / p, size)).permute(2, 0, 1) for p in plate_names])
    else:
        plates = torch.zeros((0, 3, *size), dtype=torch.uint8)
    is_val = torch.tensor([s["split"] == "val" for s in samples], dtype=torch.bool)
    return TrainSet(root, manifest, images, masks, plate_index, plates, plate_names, is_val)


def class_weights(masks: torch.Tensor, method: str = "median-frequency") -> torch.Tensor:
    """Per-class loss weights ``[2]`` (background, person) from ``uint8 [N, H, W]`` 0/1 masks.

    ``median-frequency`` (SegNet paper, after Eigen & Fergus): ``freq_c`` = pixels of class c / pixels of the
    images where c occurs, weight = median(freq) / freq_c. ``inverse-frequency``: total / (classes * count_c).
    """
    counts = torch.stack([(masks == 0).flatten(1).sum(1), (masks == 1).flatten(1).sum(1)]).double()  # [2, N]
    if (counts.sum(1) == 0).any():
        raise ValueError("class weights need both classes in the training masks; some class never occurs")
    if method == "median-frequency":
        pixels = float(masks[0].numel())
        present = (counts > 0).double().sum(1) * pixels
        freq = counts.sum(1) / present
        median = freq.median() if freq.numel() % 2 else freq.mean()  # median of two values: their mean
        return (median / freq).float()
    if method == "inverse-frequency":
        total = counts.sum()
        return (total / (2 * counts.sum(1))).float()
    raise ValueError(f"unknown class weighting {method!r}; valid: median-frequency, inverse-frequency")


def augment_batch(
    images: torch.Tensor,
    masks: torch.Tensor,
    plates: torch.Tensor | None,
    mode: str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Augment a batch; returns float frames ``[B, 3, H, W]`` in [0, 1], ``int64`` masks ``[B, H, W]`` and the
    float plates (or ``None``).

    Inputs are ``uint8``: images ``[B, 3, H, W]``, masks ``[B, H, W]`` (0/1), plates ``[B, 3, H, W]``. Geometry
    (flip, scale/shift or rotation) is applied identically to frame, mask and plate, so the plate stays aligned
    with the frame as it is on a fixed camera. Photometric changes hit the frame; the plate gets the same global
    change plus a small independent one (lighting drift since the plate was taken). All randomness comes from
    ``generator`` (on the same device as the tensors).
    """
    if mode not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {mode!r}; valid: {', '.join(AUGMENTATIONS)}")
    x = images.float().div_(255.0)
    m = masks.float().unsqueeze(1)
    p = plates.float().div_(255.0) if plates is not None else None
    if mode == "none":
        return x, masks.long(), p
    b, _, h, w = x.shape
    dev = x.device
    if mode == "default" and p is not None:
        p = imperfect_plates(x, m, p, generator)

    def uniform(lo: float, hi: float, n: int = b) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=dev) * (hi - lo) + lo

    flip = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
    if mode == "paper":
        angle = uniform(-30.0, 30.0) * (math.pi / 180.0)
        zoom = torch.ones(b, device=dev)
        shift = torch.zeros(2, b, device=dev)
    else:
        angle = uniform(-5.0, 5.0) * (math.pi / 180.0)
        zoom = torch.exp(uniform(math.log(0.8), math.log(1.25)))
        shift = uniform(-0.15, 0.15, 2 * b).view(2, b)
    # theta maps output to input coordinates in [-1, 1]; the aspect factors keep rotations rigid in pixels.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin * (h / w), shift[0]], 1),
            torch.stack([sin * (w / h) * flip, cos, shift[1]], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    # Reflection padding: border pixels stay plausible scenery, identically in frame, plate and mask.
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    m = F.grid_sample(m, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if p is not None:
        p = F.grid_sample(p, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    if mode == "default":
        x, p = _photometric(x, p, generator)
    return x.clamp_(0.0, 1.0), (m[:, 0] > 0.5).long(), (p.clamp_(0.0, 1.0) if p is not None else None)


def imperfect_plates(
    frames: torch.Tensor,
    masks: torch.Tensor,
    plates: torch.Tensor,
    generator: torch.Generator,
    stationary: float = 0.15,
    ghost: float = 0.15,
) -> torch.Tensor:
    """Plates as a real site gives them: estimated from busy footage, so sometimes holding people.

    ``stationary`` of the samples get their own person pasted into the plate (someone standing still long
    enough to enter the median plate: the frame-plate difference vanishes and only appearance tells the person
    apart); ``ghost`` of the others get another sample's person pasted in (someone who has left: a difference
    that is background). Float ``[B, 3, H, W]`` frames/plates and ``[B, 1, H, W]`` masks; returns new plates.
    """
    b = frames.shape[0]
    r = torch.rand(b, generator=generator, device=frames.device).view(b, 1, 1, 1)
    own = (r < stationary).to(frames.dtype) * masks
    other = ((r >= stationary) & (r < stationary + ghost)).to(frames.dtype) * masks.roll(1, 0)
    plates = plates * (1 - own) + frames * own
    return plates * (1 - other) + frames.roll(1, 0) * other


def _photometric(
    x: torch.Tensor, p: torch.Tensor | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    b, dev = x.shape[0], x.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator, device=dev) * (hi - lo) + lo).view(b, 1, 1, 1)

    def colour(img: torch.Tensor, bright: torch.Tensor, contrast: torch.Tensor, sat: torch.Tensor) -> torch.Tensor:
        img = img * bright
        mean = img.mean(dim=(1, 2, 3), keepdim=True)
        img = (img - mean) * contrast + mean
        gray = img.mean(dim=1, keepdim=True)
        return (img - gray) * sat + gray

    bright, contrast, sat = uniform(0.7, 1.3), uniform(0.7, 1.3), uniform(0.7, 1.3)
    drift = uniform(0.9, 1.1)
    x = colour(x, bright, contrast, sat)
    if p is not None:
        p = colour(p, bright * drift, contrast, sat)
    # Blur 30% of the frames (defocus, motion, compression); Gaussian sigma 0.5-1.5 px, separable 5-tap kernel.
    blur = torch.rand(b, generator=generator, device=dev) < 0.3
    sigma = torch.rand(b, generator=generator, device=dev) + 0.5
    taps = torch.arange(-2, 3, device=dev, dtype=x.dtype)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    identity = torch.zeros_like(kernel)
    identity[:, 2] = 1.0
    kernel = torch.where(blur[:, None], kernel, identity).repeat_interleave(3, 0)  # [B*3, 5]
    h, w = x.shape[-2:]
    flat = x.reshape(1, b * 3, h, w)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), kernel.view(b * 3, 1, 1, 5), groups=b * 3)
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), kernel.view(b * 3, 1, 5, 1), groups=b * 3)
    x = flat.view(b, 3, h, w)
    # Sensor noise on half of the frames, std up to 0.03 (8 grey levels).
    noisy = (torch.rand(b, generator=generator, device=dev) < 0.5).to(x.dtype).view(b, 1, 1, 1)
    std = torch.rand(b, generator=generator, device=dev).view(b, 1, 1, 1) * 0.03
    x = x + torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype) * std * noisy
    return x, p
