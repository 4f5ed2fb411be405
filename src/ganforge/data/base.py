"""The in-memory data set and the batch loader every recipe reads from.

Small data sets are decoded once into one tensor (``uint8 [N, C, H, W]`` for images,
``float32 [N, D]`` for vectors), so a batch is a single index operation and the loader
never starves the training step. The loader is an infinite, seeded stream whose whole
state is two integers, which makes resume exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from ..errors import DataError


@dataclass
class Dataset:
    """A data set decoded into memory.

    Attributes:
        name: registered name of the data set (``"digits"``, ``"ring8"``, ...).
        data: ``uint8 [N, C, H, W]`` images, or ``float32 [N, D]`` vectors (2-D toys).
        labels: ``int64 [N]`` class indices, or None for unlabelled data.
        class_names: a name per class index, or None.
        info: free-form extras (source folder, mode centres and std for toy data, ...).
    """

    name: str
    data: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.dim() not in (2, 4):
            raise DataError(f"data set '{self.name}': expected [N, C, H, W] or [N, D] data, got shape {tuple(self.data.shape)}")
        if self.is_image and self.data.dtype != torch.uint8:
            raise DataError(f"data set '{self.name}': images must be uint8, got {self.data.dtype}")
        if len(self.data) == 0:
            raise DataError(f"data set '{self.name}' is empty")
        if self.labels is not None and len(self.labels) != len(self.data):
            raise DataError(f"data set '{self.name}': {len(self.labels)} labels for {len(self.data)} samples")

    @property
    def is_image(self) -> bool:
        return self.data.dim() == 4

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` or ``(D,)``."""
        return tuple(self.data.shape[1:])

    @property
    def num_classes(self) -> int:
        if self.labels is None:
            return 0
        return len(self.class_names) if self.class_names else int(self.labels.max()) + 1

    def __len__(self) -> int:
        return len(self.data)

    def to_model(self, batch: torch.Tensor) -> torch.Tensor:
        """Map stored samples to the model's range: uint8 images -> float in [-1, 1]."""
        if self.is_image:
            return batch.float().div_(127.5).sub_(1.0)
        return batch.float()

    def subset(self, n: int) -> "Dataset":
        """The first ``n`` samples (a view, no copy)."""
        labels = None if self.labels is None else self.labels[:n]
        return Dataset(self.name, self.data[:n], labels, self.class_names, dict(self.info))


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model output in [-1, 1] -> uint8 in [0, 255] (the inverse of :meth:`Dataset.to_model`)."""
    return x.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


#: Data sets up to this size live on the GPU for the whole run (CIFAR-10 is 150 MiB).
DEVICE_RESIDENT_BYTES = 2 << 30


class BatchLoader:
    """An infinite stream of shuffled batches from an in-memory :class:`Dataset`.

    Epoch ``e`` visits the samples in ``randperm(N)`` drawn from a generator seeded with
    ``(seed, e)``; the state is just ``(epoch, position)``, so a resumed run sees exactly the
    batches it would have seen. Incomplete last batches are dropped (all batches have the
    same size, which keeps BatchNorm statistics and compiled graphs stable).

    ``rank``/``world_size`` split every global batch into equal per-process slices, so the
    global batch is the same whatever the number of processes.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        seed: int = 0,
        hflip: bool = False,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size > len(dataset):
            raise DataError(
                f"batch size {batch_size} is larger than data set '{dataset.name}' ({len(dataset)} samples)"
            )
        if batch_size % world_size:
            raise DataError(f"batch size {batch_size} is not divisible by {world_size} processes")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.hflip = hflip and dataset.is_image
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.position = 0
        self._perm: torch.Tensor | None = None
        # On a GPU the whole (uint8) data set is copied once when it fits comfortably: batches
        # are then gathered on the device, with no host-to-device copy or sync per step.
        self._data, self._labels = dataset.data, dataset.labels
        if self.device.type == "cuda" and dataset.data.nbytes <= DEVICE_RESIDENT_BYTES:
            self._data = dataset.data.to(self.device)
            self._labels = dataset.labels.to(self.device) if dataset.labels is not None else None

    def _permutation(self) -> torch.Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(len(self.dataset), generator=g)
        return self._perm

    def _flip_mask(self, n: int) -> torch.Tensor:
        # Flip decisions are a pure function of (seed, epoch, position): resumable.
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 7919 + self.position)
        return torch.rand(n, generator=g) < 0.5

    def next_indices(self) -> torch.Tensor:
        """Indices of this process's slice of the next global batch."""
        if self.position + self.batch_size > len(self.dataset):
            self.epoch += 1
            self.position = 0
            self._perm = None
        idx = self._permutation()[self.position : self.position + self.batch_size]
        per_rank = self.batch_size // self.world_size
        return idx[self.rank * per_rank : (self.rank + 1) * per_rank]

    def __next__(self) -> dict[str, torch.Tensor]:
        idx = self.next_indices().to(self._data.device)
        x = self._data[idx]
        if self.hflip:
            mask = self._flip_mask(self.batch_size)[
                self.rank * len(idx) : (self.rank + 1) * len(idx)
            ].to(x.device)
            x = torch.where(mask[:, None, None, None], x.flip(-1), x)
        self.position += self.batch_size
        batch = {"image": self.dataset.to_model(x.to(self.device, non_blocking=True))}
        if self._labels is not None:
            batch["label"] = self._labels[idx].to(self.device, non_blocking=True)
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self.seed = int(state["epoch"]), int(state["position"]), int(state["seed"])
        self._perm = None
