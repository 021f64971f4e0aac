"""SegNet (Badrinarayanan, Kendall, Cipolla, TPAMI 2017), as in the paper.

Encoder: the 13 convolutional layers of VGG16 with batch norm, in 5 blocks of 2, 2, 3, 3, 3 convolutions with
64, 128, 256, 512, 512 channels (times ``width``), each block followed by 2x2/stride-2 max pooling that keeps the
argmax indices. Decoder: the mirror image; each block first max-unpools with the indices of its encoder block
(no learned upsampling, no skip features), then convolves; the last decoder convolution of each block maps to the
channel count of the next shallower block. The final layer is a 3x3 convolution to the per-pixel class scores
(softmax in ``predict``). At ``width=1`` this has 29.4 M parameters (the paper reports 29.5 M).

Unpooling uses the pre-pooling size, so any input of at least 32x32 works, odd sizes included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from humanseg.models.base import ModelConfig, SegModel, scaled
from humanseg.models.blocks import ConvBNReLU, init_weights, max_unpool2x2

#: (convolutions, channels at width 1) per encoder block: VGG16's conv layers.
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


class SegNet(SegModel):
    """SegNet encoder-decoder with index-based max-unpooling; see the module docstring."""

    min_size = 2 ** len(VGG16_BLOCKS)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        chans = [scaled(c, config.width) for _, c in VGG16_BLOCKS]
        self.encoder = nn.ModuleList()
        cin = config.net_channels
        for (n, _), c in zip(VGG16_BLOCKS, chans, strict=True):
            self.encoder.append(nn.Sequential(*[ConvBNReLU(cin if i == 0 else c, c) for i in range(n)]))
            cin = c
        # Decoder blocks, deepest first; block k ends with the channel count of block k-1.
        self.decoder = nn.ModuleList()
        for k in reversed(range(len(VGG16_BLOCKS))):
            n, c = VGG16_BLOCKS[k][0], chans[k]
            layers = [ConvBNReLU(c, c) for _ in range(n - 1)]
            if k > 0:
                layers.append(ConvBNReLU(c, chans[k - 1]))
            self.decoder.append(nn.Sequential(*layers))
        # The paper's last decoder layer of block 1 is the classifier itself (no BN/ReLU).
        self.classifier = nn.Conv2d(chans[0], config.classes, 3, padding=1)
        init_weights(self)
        self._zero_last(self.classifier)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled: list[tuple[torch.Tensor, torch.Size]] = []
        for block in self.encoder:
            x = block(x)
            size = x.shape[-2:]
            x, idx = F.max_pool2d(x, 2, 2, return_indices=True)
            pooled.append((idx, size))
        for block, (idx, size) in zip(self.decoder, reversed(pooled), strict=True):
            x = block(max_unpool2x2(x, idx, size))
        return self.classifier(x)

