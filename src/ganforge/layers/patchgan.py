"""PatchGAN: the fully convolutional discriminator of pix2pix and CycleGAN (Isola et al., 2017).

Instead of one score per image it classifies every ``R x R`` patch of the input as real or
fake, where ``R`` is the receptive field of its output units (70 x 70 with the default three
stride-2 layers). It models only high-frequency structure (local texture and style); the
low frequencies are left to an L1 term in pix2pix and to the cycle loss in CycleGAN. The
adversarial losses of :mod:`ganforge.losses` average over all patches, since they reduce
their logits with ``mean()`` whatever the shape.
"""

from __future__ import annotations

import torch
from torch import nn

from .normalization import image_norm

KERNEL = 4


def receptive_field(n_layers: int) -> int:
    """Side of the input patch each output logit sees: 70 for ``n_layers = 3``.

    The network is ``n_layers`` 4x4 convolutions of stride 2 then two of stride 1; walking
    back from one output unit through each layer, ``R <- (R - 1) * stride + kernel``.
    """
    size = 1
    for stride in [1, 1] + [2] * n_layers:  # from the output back to the input
        size = (size - 1) * stride + KERNEL
    return size


class PatchDiscriminator(nn.Module):
    """N-layer PatchGAN returning per-patch logits ``[N, 1, h, w]``.

    Layers: ``conv(in -> base, s2) + LeakyReLU(0.2)``; ``n_layers - 1`` times
    ``conv(s2) + norm + LeakyReLU`` doubling the channels (at most ``8 * base``); one
    ``conv(s1) + norm + LeakyReLU``; a final ``conv(s1)`` to one channel. All 4x4, padding 1.

    Args:
        channels: channels of the judged images.
        base_channels: channels of the first layer.
        n_layers: stride-2 layers (receptive field :func:`receptive_field`).
        norm: ``instance``, ``batch`` or ``none`` (see :data:`~ganforge.layers.normalization.IMAGE_NORMS`).
        condition_channels: channels of a conditioning image concatenated to the input
            (pix2pix judges (input, output) pairs); 0 for an unconditional D (CycleGAN).
    """

    def __init__(
        self, channels: int, base_channels: int = 64, n_layers: int = 3, norm: str = "batch", condition_channels: int = 0
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"a PatchGAN needs n_layers >= 1, got {n_layers}")
        self.num_classes = 0
        self.condition_channels = condition_channels
        self.receptive_field = receptive_field(n_layers)
        bias = norm != "batch"  # a norm with its own shift makes a conv bias redundant
        width = base_channels
        layers: list[nn.Module] = [
            nn.Conv2d(channels + condition_channels, width, KERNEL, 2, 1), nn.LeakyReLU(0.2, True)
        ]
        for i in range(1, n_layers + 1):
            out = base_channels * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(width, out, KERNEL, stride, 1, bias=bias), image_norm(norm, out), nn.LeakyReLU(0.2, True)]
            width = out
        layers.append(nn.Conv2d(width, 1, KERNEL, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[N, 1, h, w]`` of ``x`` (concatenated with ``condition`` when conditional)."""
        if self.condition_channels:
            if condition is None:
                raise ValueError("this PatchGAN is conditional: pass the input image as condition")
            x = torch.cat([condition, x], dim=1)
        return self.net(x)
