"""StyleGAN building blocks: mapping network, modulated convolution, noise, constant input.

StyleGAN (Karras et al., 2019) maps ``z`` through an MLP to an intermediate latent ``w``;
affine transforms of ``w`` ("styles") scale the input channels of every convolution of a
synthesis network that starts from a learned constant, and per-pixel noise adds
stochastic detail. StyleGAN2 (Karras et al., 2020) folds the style into the convolution
weight and *demodulates* it, which replaces AdaIN's instance normalization and removes
its droplet artefacts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .equalized import EqualizedLinear, PixelNorm


class MappingNetwork(nn.Module):
    """``z -> w``: pixel norm, then ``num_layers`` equalized dense layers with LeakyReLU(0.2).

    The dense layers learn ``lr_mul`` (default 0.01) times slower than the rest of the
    generator, as in StyleGAN. Conditional variants concatenate a normalised class
    embedding to the normalised ``z``. The running mean of ``w`` (buffer ``w_avg``, an
    exponential average with factor ``w_avg_beta`` over training batches) is the centre of
    the truncation trick ``w' = w_avg + psi (w - w_avg)``.

    Args:
        latent_dim: size of ``z`` (and of the class embedding).
        w_dim: size of ``w`` (and of the hidden layers).
        num_layers: number of dense layers (>= 1).
        num_classes: classes (0 = unconditional).
        lr_mul: learning-rate multiplier of the dense layers.
        w_avg_beta: decay of the running mean of ``w``.
    """

    def __init__(self, latent_dim: int, w_dim: int, num_layers: int = 8, num_classes: int = 0,
                 lr_mul: float = 0.01, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.norm = PixelNorm()
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        dims = [latent_dim * (2 if num_classes else 1)] + [w_dim] * num_layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [EqualizedLinear(a, b, lr_mul=lr_mul), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float = 1.0) -> torch.Tensor:
        """``w [N, w_dim]``; in training mode also moves ``w_avg`` towards this batch's mean."""
        x = self.norm(z)
        if self.embed is not None:
            x = torch.cat([x, self.norm(self.embed(labels))], dim=1)
        w = self.net(x)
        if self.training:
            with torch.no_grad():  # w_avg <- beta * w_avg + (1 - beta) * mean(w)
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation != 1.0:
            w = self.w_avg.to(w.dtype).lerp(w, truncation)  # w_avg + psi (w - w_avg)
        return w


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution with optional demodulation and 2x up-sampling.

    With style ``s = A(w)`` (an equalized affine layer, bias initialised to 1) the kernel
    of sample ``n`` is ``w'_oikl = c * W_oikl * s_ni`` (``c = 1 / sqrt(fan_in)``); with
    demodulation it is rescaled to ``w''_oikl = w'_oikl / sqrt(sum_ikl w'_oikl^2 + eps)``,
    so that for unit-variance i.i.d. input every output channel has unit variance again.

    The ``fused`` implementation (default) runs one grouped convolution with the ``N``
    per-sample kernels (the batch folded into the channel axis); ``fused=False`` scales
    the activations by ``s`` instead, convolves with the shared kernel and multiplies the
    output by the demodulation coefficients: the same function, often faster on CPUs.
    ``up=True`` first doubles the resolution (bilinear), standing in for StyleGAN2's
    transposed convolution followed by a blur filter.

    Args:
        in_channels, out_channels, kernel_size: sizes (odd square kernel, "same" padding).
        w_dim: size of ``w``.
        demodulate: apply weight demodulation (off for the toRGB layers).
        up: up-sample the input by 2 first.
        fused: grouped-convolution implementation.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, up: bool = False, fused: bool = True, eps: float = 1e-8) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.up, self.fused, self.eps = demodulate, up, fused, eps
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)

    def modulated_weight(self, w: torch.Tensor) -> torch.Tensor:
        """The per-sample kernels ``[N, out, in, k, k]`` (modulated, and demodulated if on)."""
        styles = self.affine(w)  # [N, in]
        weight = self.weight[None] * (self.weight_scale * styles[:, None, :, None, None])
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + self.eps)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        n, _, height, width = x.shape
        pad = self.kernel_size // 2
        if self.fused:
            weight = self.modulated_weight(w).reshape(n * self.out_channels, self.in_channels, *self.weight.shape[2:])
            out = F.conv2d(x.reshape(1, n * self.in_channels, height, width), weight, padding=pad, groups=n)
            return out.reshape(n, self.out_channels, height, width)
        styles = self.affine(w)  # [N, in]
        weight = self.weight * self.weight_scale
        out = F.conv2d(x * styles[:, :, None, None], weight, padding=pad)
        if self.demodulate:  # sum_ikl (c W_oikl s_ni)^2 = sum_i s_ni^2 sum_kl (c W_oikl)^2
            demod = torch.rsqrt(styles.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + self.eps)  # [N, out]
            out = out * demod[:, :, None, None]
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"demodulate={self.demodulate}, up={self.up}, fused={self.fused}")


class NoiseInjection(nn.Module):
    """Adds per-pixel Gaussian noise scaled by a learned per-channel strength (initially 0).

    In training mode the noise is fresh for every call; in eval mode a fixed noise map
    (buffer ``fixed_noise``, drawn at construction) is used, so sampling is a deterministic
    function of the latents (StyleGAN2's ``noise_mode='const'``).

    Args:
        channels: feature channels. resolution: side of the feature maps.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("fixed_noise", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            if self.training:
                noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            else:
                noise = self.fixed_noise.to(x.dtype)
        return x + self.strength.to(x.dtype) * noise


class ConstantInput(nn.Module):
    """The synthesis network's learned starting point, a ``[channels, size, size]`` tensor."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, n: int) -> torch.Tensor:
        return self.value.expand(n, -1, -1, -1)


__all__ = ["ConstantInput", "MappingNetwork", "ModulatedConv2d", "NoiseInjection"]
