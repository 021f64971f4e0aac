"""U-Net generator in the style of Pix2Pix (Isola et al., CVPR 2017), used here as a segmenter.

Encoder: 4x4/stride-2 convolutions, LeakyReLU(0.2), batch norm (none on the first and the innermost layer), with
64, 128, 256, 512, 512, 512 channels times ``width`` (six levels: Pix2Pix's ``unet_256`` has eight, which would
pad a 240-pixel frame to 256 and leave a 1x1 bottleneck). Decoder: ReLU, 4x4/stride-2 transposed convolution,
batch norm, then concatenation with the encoder features of the same resolution (the skip connections). The
outermost transposed convolution produces the class logits (Pix2Pix's tanh image output is dropped, and so is
its dropout, which there serves as the GAN's noise source).

Inputs of any size work: the frame is padded (edge replication) to a multiple of 64 and the logits are cropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from humanseg.models.base import ModelConfig, SegModel, scaled
from humanseg.models.blocks import init_weights

#: Channels per level at width 1 (Pix2Pix's ngf=64 ladder, six levels).
LEVELS: tuple[int, ...] = (64, 128, 256, 512, 512, 512)


class UNet(SegModel):
    """Pix2Pix-style U-Net with skip connections; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        chans = [scaled(c, config.width) for c in LEVELS]
        depth = len(chans)
        self.multiple = 2**depth
        self.down = nn.ModuleList()
        for i, c in enumerate(chans):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2, inplace=False))
            cin = config.net_channels if i == 0 else chans[i - 1]
            use_bn = 0 < i < depth - 1
            layers.append(nn.Conv2d(cin, c, 4, 2, 1, bias=not use_bn))
            if use_bn:
                layers.append(nn.BatchNorm2d(c))
            self.down.append(nn.Sequential(*layers))
        # Up path, innermost first: level i maps to the channels of level i-1 (concatenated with its skip).
        self.up = nn.ModuleList()
        for i in reversed(range(1, depth)):
            cin = chans[i] if i == depth - 1 else 2 * chans[i]
            self.up.append(
                nn.Sequential(
                    nn.ReLU(inplace=False),
                    nn.ConvTranspose2d(cin, chans[i - 1], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(chans[i - 1]),
                )
            )
        self.head = nn.Sequential(nn.ReLU(inplace=False), nn.ConvTranspose2d(2 * chans[0], config.classes, 4, 2, 1))
        init_weights(self)
        self._zero_last(self.head[-1])

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips: list[torch.Tensor] = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = skips.pop()  # the innermost features feed the first up block directly
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return self.head(x)[..., :h, :w]
