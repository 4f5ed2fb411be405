"""Multi-process training on PyTorch's distributed engine (torchrun, gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node=N -m ganforge train ...`` (or ``ganforge train --nproc N``)
starts N copies of the trainer; each reads its rank from the environment torchrun sets
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``).

How a GAN step is split (data parallelism with a fixed *global* batch):

* every global batch of real images is cut into ``WORLD_SIZE`` equal slices, one per
  process (:class:`~ganforge.data.base.BatchLoader` with ``rank``/``world_size``);
* every process draws the latents of the whole global batch from the same seeded stream
  and keeps its slice, so the fake batch is the one a single process would make;
* after each backward pass the gradients are averaged over the processes with one
  ``all_reduce`` of a flat buffer, as DistributedDataParallel's reducer does. A GAN update
  runs the discriminator several times per backward (real, fake, penalties with double
  backward) and freezes it during the generator's update, which DDP's module wrapper does
  not support; averaging explicitly is what StyleGAN2-ADA does for the same reason;
* BatchNorm statistics are per process unless ``train.sync_batchnorm`` is true, which
  swaps every BatchNorm for :class:`~ganforge.layers.sync_batchnorm.SyncBatchNorm`
  (statistics over the global batch, on CPU and GPU alike).

Since the optimizer sees the same averaged gradients everywhere, every process holds the
same weights, EMA and data position; rank 0 alone writes logs, samples and checkpoints,
and a checkpoint resumes on any number of processes that divides the batch.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """The job layout torchrun put in the environment (a single process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
    )


def setup(device: torch.device, timeout_minutes: float = 120.0) -> DistInfo:
    """Join the process group when launched by torchrun; a no-op for a single process.

    The backend is NCCL for CUDA devices and gloo otherwise. The generous timeout lets rank
    0 evaluate (Inception features on a CPU take minutes) while the others wait.
    """
    info = env_info()
    if not info.enabled:
        return info
    import torch.distributed as dist

    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed: multi-process training is unavailable")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return info


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    """One GPU per process on a node (``cuda`` becomes ``cuda:LOCAL_RANK``); CPU stays CPU."""
    if device.type == "cuda" and info.enabled:
        if info.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process {info.local_rank} on this node has no GPU ({torch.cuda.device_count()} visible): "
                "use --nproc_per_node <= the number of GPUs"
            )
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device


def default_threads(info: DistInfo) -> int | None:
    """CPU threads per process when ``train.threads`` is unset: the cores shared out evenly."""
    if not info.enabled:
        return None
    return max(1, (os.cpu_count() or 1) // info.local_world_size)


def cleanup(wait_for_all: bool = False) -> None:
    """Leave the process group. ``wait_for_all`` (a run that ended well) first meets the other
    processes at a barrier, so that no process tears gloo down while rank 0 still writes its
    last checkpoint and samples: destroying a group is meant to be collective, and a rank that
    leaves early can abort in gloo's worker threads ("terminate called without an active
    exception"). After a failure there is no barrier: the others may never arrive."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers to every process (identical start or resume)."""
    import torch.distributed as dist

    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src)


def average_gradients(module: nn.Module, world_size: int) -> None:
    """Replace every gradient by its mean over the processes: one all_reduce of a flat buffer.

    A parameter without a gradient on this update contributes zeros (and gets a zero
    gradient), so every process runs the same collective whatever its branch did.
    """
    import torch.distributed as dist

    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= world_size
    for p, mean in zip(params, flat.split([p.numel() for p in params])):
        if p.grad is None:
            p.grad = mean.view_as(p).clone()
        else:
            p.grad.copy_(mean.view_as(p))


def all_mean(values: torch.Tensor, world_size: int) -> torch.Tensor:
    """The element-wise mean of ``values`` over the processes (for logged losses)."""
    import torch.distributed as dist

    out = values.clone()
    dist.all_reduce(out)
    return out / world_size


def check_global_batch(batch_size: int, world_size: int) -> None:
    """``train.batch_size`` is the global batch: each of ``world_size`` processes takes an equal share."""
    if batch_size % world_size:
        raise ConfigError(
            f"train.batch_size ({batch_size}) is the global batch and must be divisible by the {world_size} processes"
        )


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
