"""The in-memory data set and the batch loader every recipe reads from.

Small data sets are decoded once into one tensor (``uint8 [N, C, H, W]`` for images,
``float32 [N, D]`` for vectors), so a batch is a single index operation and the loader
never starves the training step. The loader is an infinite, seeded stream whose whole
state is two integers (four for unpaired image-to-image data), which makes resume exact.

Image-to-image data sets also hold ``sources`` (the translation inputs): *paired* ones
(pix2pix: source ``i`` goes with image ``i``) share indices, flips and crops with the
images; *unpaired* ones (CycleGAN) are an independent stream with its own order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from .. import modality as modalities
from ..core import cache_root
from ..errors import DataError, UserError
from ..registry import Registry

#: The data sets by name; each module of this package registers its own (``ganforge.data`` imports them all).
DATASETS: Registry = Registry("data set")


def default_root(name: str) -> Path:
    """Where data set ``name`` is downloaded when no ``data.root`` is given.

    ``$GANFORGE_CACHE/data/<name>``, by default ``~/.cache/ganforge/data/<name>``.
    """
    return cache_root() / "data" / name


def refuse_image_options(name: str, kind: str, hint: str, resolution: int | None, channels: int | None) -> None:
    """Raise unless ``data.resolution`` and ``data.channels`` are unset: they apply to images, not to the ``kind``
    data set ``name`` (``hint`` names its own options)."""
    for key, value in (("resolution", resolution), ("channels", channels)):
        if value is not None:
            raise DataError(f"data.{key} applies to images, not to the {kind} data set '{name}' (use {hint})")


@dataclass
class Dataset:
    """A data set decoded into memory.

    Attributes:
        name: registered name of the data set (``"digits"``, ``"ring8"``, ...).
        data: ``uint8 [N, C, H, W]`` images, or ``float32 [N, D]`` vectors (2-D toys).
        labels: ``int64 [N]`` class indices, or None for unlabelled data.
        class_names: a name per class index, or None.
        info: free-form extras (source folder, mode centres and std for toy data, ...).
        sources: ``uint8 [M, C', H', W']`` inputs of image-to-image data (batches hold them
            as ``"source"``), or None. ``data`` holds the targets.
        paired: source ``i`` is the input of image ``i`` (then ``M == N`` and the sizes are
            equal or ``H = r * H'``, ``W = r * W'`` for an integer ``r``); else the two sets
            are independent (unpaired translation).
        modality: what a sample is (``image``, ``points``, ... see :mod:`ganforge.modality`);
            by default ``image`` for ``[N, C, H, W]`` data and ``points`` for ``[N, D]``.
    """

    name: str
    data: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] | None = None
    info: dict = field(default_factory=dict)
    sources: torch.Tensor | None = None
    paired: bool = False
    modality: str = ""

    def __post_init__(self) -> None:
        if self.data.dim() < 2:
            raise DataError(f"data set '{self.name}': expected [N, ...] samples, got shape {tuple(self.data.shape)}")
        self.modality = self.modality or modalities.infer(tuple(self.data.shape[1:]))
        try:
            modalities.get(self.modality).check(self.data, f"data set '{self.name}'")
        except UserError as err:
            raise DataError(str(err)) from None
        if len(self.data) == 0:
            raise DataError(f"data set '{self.name}' is empty")
        if self.labels is not None and len(self.labels) != len(self.data):
            raise DataError(f"data set '{self.name}': {len(self.labels)} labels for {len(self.data)} samples")
        if self.sources is None:
            if self.paired:
                raise DataError(f"data set '{self.name}': paired=True needs sources")
            return
        if not self.is_image or self.sources.dim() != 4 or self.sources.dtype != torch.uint8 or not len(self.sources):
            raise DataError(
                f"data set '{self.name}': sources must be non-empty uint8 images [M, C, H, W] beside image data, "
                f"got {self.sources.dtype} {tuple(self.sources.shape)}"
            )
        if self.paired:
            if len(self.sources) != len(self.data):
                raise DataError(f"data set '{self.name}': {len(self.sources)} sources for {len(self.data)} paired images")
            _ = self.source_scale  # raises unless the sizes are equal or in an integer ratio

    @property
    def source_scale(self) -> int:
        """``r`` with image size = ``r`` x source size (1 for same-size pairs); paired data only."""
        (h, w), (sh, sw) = self.data.shape[-2:], self.sources.shape[-2:]  # type: ignore[union-attr]
        r = h // sh
        if h != r * sh or w != r * sw or r < 1:
            raise DataError(
                f"data set '{self.name}': paired images ({w}x{h}) and sources ({sw}x{sh}) must have the same size "
                "or sizes in an integer ratio"
            )
        return r

    @property
    def is_image(self) -> bool:
        return self.modality == "image"

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
        """Map stored samples to the model's range (uint8 images -> float in [-1, 1]; see the modality)."""
        return modalities.get(self.modality).to_model(batch)

    def subset(self, n: int) -> "Dataset":
        """The first ``n`` samples (and first ``n`` sources; a view, no copy)."""
        labels = None if self.labels is None else self.labels[:n]
        sources = None if self.sources is None else self.sources[:n]
        return Dataset(self.name, self.data[:n], labels, self.class_names, dict(self.info), sources, self.paired,
                       self.modality)


def center_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """The centred ``size`` x ``size`` window of images ``[..., H, W]`` (``x`` itself for None)."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def crop_each(x: torch.Tensor, tops: list[int], lefts: list[int], size: int) -> torch.Tensor:
    """Crop image ``i`` of ``x [N, C, H, W]`` to ``[top_i : top_i + size, left_i : left_i + size]``."""
    return torch.stack([x[i, :, t : t + size, left : left + size] for i, (t, left) in enumerate(zip(tops, lefts))])


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

    ``crop`` takes a random ``crop x crop`` window of every image (pix2pix's jitter); flips
    and crop offsets are pure functions of ``(seed, epoch, position)`` too. Data sets with
    ``sources`` also yield ``"source"``: paired sources share the images' indices, flips and
    crop windows (scaled by :attr:`Dataset.source_scale`); unpaired ones are a second
    stream with its own permutations, flips, crops and ``(source_epoch, source_position)``.
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
        crop: int | None = None,
    ) -> None:
        if batch_size > len(dataset):
            raise DataError(
                f"batch size {batch_size} is larger than data set '{dataset.name}' ({len(dataset)} samples)"
            )
        if dataset.sources is not None and not dataset.paired and batch_size > len(dataset.sources):
            raise DataError(
                f"batch size {batch_size} is larger than the sources of data set '{dataset.name}' "
                f"({len(dataset.sources)} images)"
            )
        if crop is not None:
            self._check_crop(dataset, crop)
        if batch_size % world_size:
            raise DataError(f"batch size {batch_size} is not divisible by {world_size} processes")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.hflip = hflip and dataset.is_image
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.crop = crop
        self.epoch = 0
        self.position = 0
        self._perm: torch.Tensor | None = None
        self.source_epoch = 0  # the unpaired source stream
        self.source_position = 0
        self._source_perm: torch.Tensor | None = None
        # On a GPU the whole (uint8) data set is copied once when it fits comfortably: batches
        # are then gathered on the device, with no host-to-device copy or sync per step.
        self._data, self._labels, self._sources = dataset.data, dataset.labels, dataset.sources
        nbytes = dataset.data.nbytes + (0 if dataset.sources is None else dataset.sources.nbytes)
        if self.device.type == "cuda" and nbytes <= DEVICE_RESIDENT_BYTES:
            self._data = dataset.data.to(self.device)
            self._labels = dataset.labels.to(self.device) if dataset.labels is not None else None
            self._sources = dataset.sources.to(self.device) if dataset.sources is not None else None

    @staticmethod
    def _check_crop(dataset: Dataset, crop: int) -> None:
        if not dataset.is_image:
            raise DataError(f"data.crop needs image data; '{dataset.name}' is not")
        sizes = [tuple(dataset.data.shape[-2:])]
        if dataset.sources is not None and not dataset.paired:
            sizes.append(tuple(dataset.sources.shape[-2:]))
        if isinstance(crop, bool) or crop < 1 or any(crop > side for size in sizes for side in size):
            h, w = min(sizes)
            raise DataError(f"data.crop must be between 1 and the image size ({w}x{h}) of '{dataset.name}', got {crop}")
        if dataset.paired and crop % dataset.source_scale:
            raise DataError(
                f"data.crop ({crop}) must be a multiple of {dataset.source_scale}, the size ratio of images to sources"
            )

    def _permutation(self) -> torch.Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._perm = torch.randperm(len(self.dataset), generator=g)
        return self._perm

    def _source_permutation(self) -> torch.Tensor:
        if self._source_perm is None:
            g = torch.Generator().manual_seed(self._stream_seed(1, self.source_epoch))
            self._source_perm = torch.randperm(len(self.dataset.sources), generator=g)  # type: ignore[arg-type]
        return self._source_perm

    def _stream_seed(self, stream: int, epoch: int, position: int | None = None) -> int:
        """The seed of a random draw: a pure function of (seed, stream, epoch[, position])."""
        base = self.seed * 1_000_003 + epoch + stream * 2_654_435_761  # stream 0: the images' historic seeds
        return base if position is None else (base * 7919 + position) % 2**63

    def _flip_mask(self, n: int, stream: int = 0) -> torch.Tensor:
        # Flip decisions are a pure function of (seed, epoch, position): resumable.
        epoch, position = (self.epoch, self.position) if stream == 0 else (self.source_epoch, self.source_position)
        g = torch.Generator().manual_seed(self._stream_seed(stream, epoch, position))
        return torch.rand(n, generator=g) < 0.5

    def _crop_windows(self, n: int, stream: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tops, lefts) [n]`` of random crop windows, in pixels of the stream's images.

        A pure function of ``(seed, stream, epoch, position)``, like :meth:`_flip_mask`. For
        paired sources ``r`` times smaller than the images, offsets are multiples of ``r``,
        so ``offset / r`` is the exactly aligned window in the source.
        """
        epoch, position = (self.epoch, self.position) if stream == 0 else (self.source_epoch, self.source_position)
        frame = self._data if stream == 0 else self._sources
        unit = self.dataset.source_scale if stream == 0 and self.dataset.paired else 1
        g = torch.Generator().manual_seed(self._stream_seed(stream + 2, epoch, position))
        h, w = frame.shape[-2:]  # type: ignore[union-attr]
        size = self.crop or 0
        tops = torch.randint((h - size) // unit + 1, (n,), generator=g) * unit
        lefts = torch.randint((w - size) // unit + 1, (n,), generator=g) * unit
        return tops, lefts

    def _transform(self, x: torch.Tensor, n: int, stream: int, divide: int = 1) -> torch.Tensor:
        """Random crop, then random flip, of this process's slice ``x`` of a global batch of ``n``.

        ``divide = r`` applies the stream's windows to images ``r`` times smaller (paired sources).
        """
        rows = slice(self.rank * len(x), (self.rank + 1) * len(x))
        if self.crop is not None:
            tops, lefts = self._crop_windows(n, stream)
            x = crop_each(x, (tops[rows] // divide).tolist(), (lefts[rows] // divide).tolist(), self.crop // divide)
        if self.hflip:
            mask = self._flip_mask(n, stream)[rows].to(x.device)
            x = torch.where(mask[:, None, None, None], x.flip(-1), x)
        return x

    def next_indices(self) -> torch.Tensor:
        """Indices of this process's slice of the next global batch."""
        if self.position + self.batch_size > len(self.dataset):
            self.epoch += 1
            self.position = 0
            self._perm = None
        idx = self._permutation()[self.position : self.position + self.batch_size]
        per_rank = self.batch_size // self.world_size
        return idx[self.rank * per_rank : (self.rank + 1) * per_rank]

    def next_source_indices(self) -> torch.Tensor:
        """Indices of this process's slice of the next global batch of unpaired sources."""
        count = len(self.dataset.sources)  # type: ignore[arg-type]
        if self.source_position + self.batch_size > count:
            self.source_epoch += 1
            self.source_position = 0
            self._source_perm = None
        idx = self._source_permutation()[self.source_position : self.source_position + self.batch_size]
        per_rank = self.batch_size // self.world_size
        return idx[self.rank * per_rank : (self.rank + 1) * per_rank]

    def __next__(self) -> dict[str, torch.Tensor]:
        idx = self.next_indices().to(self._data.device)
        x = self._transform(self._data[idx], self.batch_size, stream=0)
        batch = {"image": self.dataset.to_model(x.to(self.device, non_blocking=True))}
        if self._labels is not None:
            batch["label"] = self._labels[idx].to(self.device, non_blocking=True)
        if self._sources is not None:
            if self.dataset.paired:  # the same rows, windows and flips as the images
                source = self._transform(self._sources[idx], self.batch_size, 0, self.dataset.source_scale)
            else:
                sidx = self.next_source_indices().to(self._sources.device)
                source = self._transform(self._sources[sidx], self.batch_size, stream=1)
                self.source_position += self.batch_size
            batch["source"] = self.dataset.to_model(source.to(self.device, non_blocking=True))
        self.position += self.batch_size
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def state_dict(self) -> dict[str, int]:
        state = {"epoch": self.epoch, "position": self.position, "seed": self.seed}
        if self.dataset.sources is not None and not self.dataset.paired:
            state.update(source_epoch=self.source_epoch, source_position=self.source_position)
        return state

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self.seed = int(state["epoch"]), int(state["position"]), int(state["seed"])
        # Older checkpoints (and paired data) have no source stream: it starts at its beginning.
        self.source_epoch, self.source_position = int(state.get("source_epoch", 0)), int(state.get("source_position", 0))
        self._perm = self._source_perm = None
