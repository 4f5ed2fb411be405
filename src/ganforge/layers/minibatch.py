"""Layers that let the discriminator look at a whole minibatch (against mode collapse).

A collapsed generator produces near-identical samples. A discriminator that scores each
sample alone cannot see that; one that gets a statistic of the batch can, and its gradient
then pushes the generator to spread out.
"""

from __future__ import annotations

import torch
from torch import nn


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al., ProGAN), as one extra feature map.

    The batch is split into groups of ``group_size``; within each group the std of every
    feature at every position is taken over the group members, averaged over channels and
    positions to one number per group, and appended as a constant channel to each member.
    Works on ``[N, C, H, W]`` and on ``[N, F]`` (appends one feature).
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size, self.eps = group_size, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g = min(self.group_size, n)
        if n % g:  # fall back to one group per batch when N is not a multiple
            g = n
        y = x.reshape(g, -1, *x.shape[1:]).float()  # [G, N/G, ...]: member i of every group
        std = (y.var(dim=0, unbiased=False) + self.eps).sqrt()  # [N/G, ...]
        stat = std.reshape(std.shape[0], -1).mean(dim=1).to(x.dtype)  # [N/G]
        stat = stat.repeat(g)  # back to [N], group member order preserved
        if x.dim() == 2:
            return torch.cat([x, stat[:, None]], dim=1)
        return torch.cat([x, stat[:, None, None, None].expand(-1, 1, *x.shape[2:])], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al., 2016): closeness to the rest of the batch.

    Features ``f [N, A]`` are projected by a learned tensor ``T [A, B, C]`` to matrices
    ``M_i [B, C]``; for each of the ``B`` kernels, ``c_b(i, j) = exp(-||M_i,b - M_j,b||_1)``
    measures how close samples ``i`` and ``j`` are, and ``o_b(i) = sum_{j != i} c_b(i, j)``
    is appended to ``f``. A collapsed batch has large ``o``, which real batches never
    have, so the discriminator can reject it.

    Args:
        in_features: ``A``. kernels: ``B`` (appended features). kernel_dim: ``C``.
    """

    def __init__(self, in_features: int, kernels: int = 50, kernel_dim: int = 5) -> None:
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    @property
    def out_features_added(self) -> int:
        return self.kernels

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim).transpose(0, 1)  # [B, N, C]
        l1 = torch.cdist(m, m, p=1)  # [B, N, N]: one L1 distance matrix per kernel (2x faster than broadcasting)
        o = torch.exp(-l1).sum(dim=2).t() - 1.0  # [N, B]; minus exp(0) for j == i
        return torch.cat([f, o], dim=1)
