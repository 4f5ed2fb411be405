"""BatchNorm with statistics over the global batch of a multi-process job, on CPU and GPU.

PyTorch's ``nn.SyncBatchNorm`` synchronises on GPUs only; this layer does the same on any
device (gloo or NCCL). Each process sums its activations ``S = sum x`` and squares
``Q = sum x^2`` per channel over ``n`` positions; a differentiable ``all_reduce`` adds them
over the processes, giving the global ``mean = S / N`` and biased ``var = Q / N - mean^2``
with ``N = sum n``. Its backward pass is again an ``all_reduce``, so the gradient of each
process's loss reaches the activations of every process, and averaging the parameter
gradients afterwards yields exactly the gradient of the global-batch loss.

Outside a process group, in eval mode, or with ``sync = False`` (the EMA generator's
standing statistics, computed by rank 0 alone) it is a plain BatchNorm.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _AllReduceSum(torch.autograd.Function):
    """``sum over processes`` of a tensor; its gradient is again the sum of the incoming gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Drop-in BatchNorm (any input rank ``[N, C, ...]``) synchronised across processes."""

    sync: bool = True

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects [N, C, ...] input, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        world = _world_size()
        if not (self.training and self.sync and world > 1):
            return super().forward(x)
        dims = [d for d in range(x.dim()) if d != 1]
        xf = x.float()
        n = torch.tensor([xf.numel() / xf.shape[1]], device=x.device, dtype=torch.float32)
        # One collective for [S, Q, n]: channel sums, sums of squares and the count.
        stats = _AllReduceSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), n]))
        c = x.shape[1]
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c : 2 * c] / total - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (total / (total - 1).clamp_min(1.0))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm{1,2,3}d`` inside ``module`` by :class:`SyncBatchNorm`.

    The new layers take over the old ones' parameter and buffer objects, so an optimizer
    built before the conversion still updates them.
    """
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        new = SyncBatchNorm(module.num_features, module.eps, module.momentum, affine=False, track_running_stats=False)
        new.affine, new.track_running_stats = module.affine, module.track_running_stats
        for name, param in module.named_parameters(recurse=False):
            setattr(new, name, param)
        for name, buffer in module.named_buffers(recurse=False):
            new.register_buffer(name, buffer)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batchnorm(child))
    return module


def set_sync(module: nn.Module, enabled: bool) -> None:
    """Switch the synchronisation of every :class:`SyncBatchNorm` in ``module`` on or off."""
    for m in module.modules():
        if isinstance(m, SyncBatchNorm):
            m.sync = enabled
