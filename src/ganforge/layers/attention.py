"""Self-attention over feature-map positions (SAGAN, Zhang et al., 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .normalization import spectral_norm


class SelfAttention(nn.Module):
    """SAGAN's self-attention block: ``y = x + gamma * o``, with ``gamma`` learned from 0.

    With ``N = H * W`` positions, 1x1 convolutions give queries ``f(x)`` and keys
    ``g(x)`` (``C/8`` channels) and values ``h(x)`` (``C/2`` channels). The weight of
    position ``j`` for position ``i`` is ``beta[i, j] = softmax_j(f(x)_i . g(x)_j)``; the
    attended values ``sum_j beta[i, j] h(x)_j`` go through an output 1x1 convolution
    ``v`` back to ``C`` channels. Since ``gamma`` starts at 0 the block is the identity at
    first, and the network learns how much non-local evidence to mix in.

    Args:
        channels: ``C`` (at least 8).
        pool: max-pool keys and values 2x2 (``N/4`` of them), as the official SAGAN and
            BigGAN code do; 4x cheaper, needs even ``H`` and ``W``.
        use_spectral_norm: wrap the four convolutions with spectral normalization.
    """

    def __init__(self, channels: int, pool: bool = True, use_spectral_norm: bool = True) -> None:
        super().__init__()
        if channels < 8:
            raise ConfigError(f"self-attention needs at least 8 channels, got {channels}")
        keys, values = channels // 8, channels // 2
        self.pool = pool

        def conv(cin: int, cout: int) -> nn.Conv2d:
            layer = nn.Conv2d(cin, cout, 1, bias=False)
            nn.init.xavier_uniform_(layer.weight)
            return spectral_norm(layer, use_spectral_norm)

        self.query, self.key, self.value = conv(channels, keys), conv(channels, keys), conv(channels, values)
        self.out = conv(values, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def _attend(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention weights ``beta [B, N, M]`` and values ``[B, C/2, M]``."""
        q = self.query(x).flatten(2)  # [B, C/8, N]
        k, v = self.key(x), self.value(x)
        if self.pool:
            k, v = F.max_pool2d(k, 2), F.max_pool2d(v, 2)
        k, v = k.flatten(2), v.flatten(2)  # [B, C/8, M], [B, C/2, M]
        beta = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # softmax over the M key positions
        return beta, v

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weights ``beta [B, N, M]`` (each row sums to 1) for ``x [B, C, H, W]``."""
        return self._attend(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        beta, v = self._attend(x)
        attended = (v @ beta.transpose(1, 2)).view(b, -1, h, w)  # o_i = sum_j beta[i, j] h_j
        return x + self.gamma * self.out(attended)
