"""Equalized learning rate and pixel normalization (Karras et al., ProGAN 2018).

Adam divides each update by a running estimate of the gradient's scale, so a weight's
*relative* speed of change depends on its magnitude: small weights move fast, large ones
slowly. Equalized layers store every weight as ``w ~ N(0, 1)`` and multiply it at run time
by He's constant ``c = gain / sqrt(fan_in)``: the effective weight ``c * w`` has the
variance of He initialisation, while all stored weights share one scale, so every layer
learns at the same rate. An ``lr_mul`` (StyleGAN's mapping network uses 0.01) stores
``w / lr_mul`` and multiplies by ``c * lr_mul``: same effective weight, ``lr_mul`` times
slower learning.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: He's gain for layers followed by a (leaky) ReLU.
RELU_GAIN = math.sqrt(2.0)


class EqualizedLinear(nn.Module):
    """``y = x (c W)^T + lr_mul * b`` with stored ``W ~ N(0, 1 / lr_mul^2)``, ``c = lr_mul * gain / sqrt(in)``.

    Args:
        in_features, out_features: sizes.
        bias: learn a bias (initialised to ``bias_init``).
        gain: He's gain; ``sqrt(2)`` before a (leaky) ReLU, 1 for a linear output.
        lr_mul: learning-rate multiplier of this layer (weights and bias).
        bias_init: initial value of the *effective* bias.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, gain: float = RELU_GAIN,
                 lr_mul: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.weight_scale = gain / math.sqrt(in_features) * lr_mul
        self.lr_mul = lr_mul

    def effective_weight(self) -> torch.Tensor:
        """The weight actually applied, ``c * W`` (std ``gain / sqrt(in_features)``)."""
        return self.weight * self.weight_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.effective_weight(), bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, lr_mul={self.lr_mul}"


class EqualizedConv2d(nn.Module):
    """A 2-D convolution with run-time He scaling, ``c = gain / sqrt(in_channels * k * k)``.

    Args:
        in_channels, out_channels, kernel_size: sizes (square kernel).
        stride: the stride. padding: default ``kernel_size // 2`` ("same" for odd kernels).
        bias: learn a bias (initialised to 0). gain: He's gain (see :class:`EqualizedLinear`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, bias: bool = True, gain: float = RELU_GAIN) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)

    def effective_weight(self) -> torch.Tensor:
        """The kernel actually applied, ``c * W`` (std ``gain / sqrt(fan_in)``)."""
        return self.weight * self.weight_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class PixelNorm(nn.Module):
    """Pixelwise feature normalization: ``x / sqrt(mean_c(x^2) + eps)`` at every position.

    Each feature vector (over dimension 1: channels of an image, features of a vector) is
    scaled to unit root-mean-square, which stops the generator's and discriminator's
    magnitudes from escalating against each other (ProGAN, section 4.2).
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


__all__ = ["RELU_GAIN", "EqualizedConv2d", "EqualizedLinear", "PixelNorm"]
