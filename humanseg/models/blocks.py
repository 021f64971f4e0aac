"""Small building blocks shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """3x3 convolution (no bias: BN follows) + batch norm + ReLU, keeping the spatial size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions (zero bias) and identity batch norms, for networks trained from scratch."""
    # He init suits ReLU networks trained from scratch (no ImageNet VGG weights are available offline).
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def max_unpool2x2(x: torch.Tensor, indices: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Inverse of 2x2/stride-2 max pooling: put each value back where its maximum came from, zeros elsewhere.

    ``size`` is the (H, W) before pooling, so odd sizes (e.g. 241 -> 120 -> 241) round-trip. ONNX export
    (TorchScript exporter) has no ``max_unpool2d``; there the same result is built with a scatter along the
    flattened plane, which is exact because 2x2/stride-2 windows never share an index.
    """
    if torch.onnx.is_in_onnx_export():
        b, c = x.shape[0], x.shape[1]
        out = torch.zeros((b, c, size[0] * size[1]), dtype=x.dtype, device=x.device)
        out = out.scatter(2, indices.flatten(2), x.flatten(2))
        return out.view(b, c, size[0], size[1])
    return F.max_unpool2d(x, indices, 2, 2, output_size=tuple(size))
