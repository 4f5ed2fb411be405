"""Residual blocks of the SNGAN / SAGAN / BigGAN family of ResNet GANs (Miyato et al., 2018).

Weights use Glorot-uniform initialisation as in the reference (Chainer) code: gain
``sqrt(2)`` on the 3x3 convolutions of the residual branch (they follow ReLUs), gain 1 on
the 1x1 shortcuts. Spectral normalization, when on, wraps every convolution after init.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .normalization import ConditionalBatchNorm2d, spectral_norm


def conv(cin: int, cout: int, kernel: int, gain: float = 1.0, use_spectral_norm: bool = False) -> nn.Conv2d:
    """A ``kernel x kernel`` "same" convolution with Glorot-uniform weights, optionally spectrally normalized."""
    layer = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
    nn.init.xavier_uniform_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return spectral_norm(layer, use_spectral_norm)


class ClassBatchNorm(nn.Module):
    """Batch norm that is class-conditional when ``num_classes > 0`` and plain (affine) otherwise."""

    def __init__(self, channels: int, num_classes: int = 0) -> None:
        super().__init__()
        self.norm = ConditionalBatchNorm2d(channels, num_classes) if num_classes else nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if isinstance(self.norm, ConditionalBatchNorm2d):
            return self.norm(x, labels)
        return self.norm(x)


class GeneratorBlock(nn.Module):
    """``BN-ReLU-up2-conv3-BN-ReLU-conv3`` plus an upsampled 1x1-conv shortcut (doubles H and W).

    Batch norms are class-conditional when ``num_classes > 0``. Upsampling is nearest
    neighbour; on the shortcut the 1x1 convolution runs *before* upsampling, which gives
    the same result (a pointwise map commutes with copying pixels) at a quarter of the cost.
    """

    def __init__(self, cin: int, cout: int, num_classes: int = 0, use_spectral_norm: bool = False) -> None:
        super().__init__()
        self.bn1, self.bn2 = ClassBatchNorm(cin, num_classes), ClassBatchNorm(cout, num_classes)
        self.conv1 = conv(cin, cout, 3, math.sqrt(2), use_spectral_norm)
        self.conv2 = conv(cout, cout, 3, math.sqrt(2), use_spectral_norm)
        self.shortcut = conv(cin, cout, 1, 1.0, use_spectral_norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, labels)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels)))
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


class DiscriminatorBlock(nn.Module):
    """``ReLU-conv3-ReLU-conv3`` (then 2x2 average pooling if ``downsample``) plus a shortcut.

    The shortcut is a 1x1 convolution and the same pooling when the block changes the
    channel count or the size, the identity otherwise. It pools first, which is 4x cheaper
    and gives the same result: averaging over space and a 1x1 convolution over channels
    act on different axes, so they commute (the average of a constant bias is the bias).
    ``optimized=True`` is the first block of Miyato et al.: no ReLU before its first
    convolution, whose input is the image itself.
    """

    def __init__(
        self, cin: int, cout: int, downsample: bool = True, optimized: bool = False, use_spectral_norm: bool = True
    ) -> None:
        super().__init__()
        self.downsample, self.optimized = downsample, optimized
        self.conv1 = conv(cin, cout, 3, math.sqrt(2), use_spectral_norm)
        self.conv2 = conv(cout, cout, 3, math.sqrt(2), use_spectral_norm)
        learned = optimized or downsample or cin != cout
        self.shortcut = conv(cin, cout, 1, 1.0, use_spectral_norm) if learned else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.optimized else F.relu(x))
        h = self._pool(self.conv2(F.relu(h)))
        return h + (x if self.shortcut is None else self.shortcut(self._pool(x)))
