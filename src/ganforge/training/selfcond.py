"""Self-conditioned GAN (after Liu et al., 2020): an unconditional model trained on pseudo-labels.

Without labels nothing tells a generator which of the data's modes to commit to, and on data of
a few distinct shapes (digits) it draws blends of two. The ``selfcond`` recipe clusters the real
data once, before training, into ``clusters`` groups; the networks are conditioned on a sample's
cluster, and the matching-aware discriminator of ``recipe: mismatch`` learns that a real sample
under another cluster's label is a negative, so a generated sample must look like its cluster.
No label of the data set is read: the run stays unconditional to its user, and its generator
draws clusters in turn (``class_names``: ``cluster 0`` ...).

Liu et al. cluster the discriminator's features and recluster as it learns. Here the features
are fixed and need no network: the magnitude spectrum of every sample's last two axes,

    s(x) = log(1 + |FFT2((x + 1) / 2)|),   averaged over the other axes (frames, channels),

a descriptor of *what* a picture holds and not *where*: a cyclic shift ``x(u - d)`` multiplies
the Fourier transform by ``exp(-2 pi i k d)``, whose modulus is one, so a digit's spectrum is
the same wherever it sits in the frame (exactly for cyclic shifts, nearly for an object on a
black background). k-means (scikit-learn, seeded) on ``fit_samples`` of them gives the
centroids; every real batch is then labelled with its nearest centroid as it is drawn. On
moving-digits clips, 20 clusters agree with the true digit on 82-86% of clips (k-means purity).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import torch

from ..config import Config, ranged
from ..data import Dataset
from ..errors import ConfigError
from .recipes import RECIPES, Batch, MismatchRecipe


def spectral_signature(x: torch.Tensor) -> torch.Tensor:
    """Samples ``[N, ..., H, W]`` in [-1, 1] -> shift-invariant descriptors ``[N, H * (W // 2 + 1)]`` (float32):
    ``log(1 + |FFT2|)`` of the ink ``(x + 1) / 2`` over the last two axes, averaged over the axes between."""
    ink = (x.float() + 1) / 2
    spectrum = torch.log1p(torch.fft.rfft2(ink).abs())  # [N, ..., H, W // 2 + 1]
    return spectrum.flatten(1, -3).mean(dim=1).flatten(1)


def nearest(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index ``[N]`` of the nearest centroid ``[K, D]`` to every point ``[N, D]`` (Euclidean)."""
    return torch.cdist(points, centroids).argmin(dim=1)


@RECIPES.register("selfcond", help="self-conditioned GAN: pseudo-labels from k-means on the data, matching-aware D (Liu et al.)")
class SelfConditionedRecipe(MismatchRecipe):
    """Unconditional data, conditional networks: labels are the k-means clusters of :func:`spectral_signature`.

    Training is :class:`MismatchRecipe`'s (``mismatch_fraction`` real samples a batch shown to
    D under another cluster's label). The centroids are fitted once, from seed ``train.seed +
    8``, and saved with the checkpoints, so a resumed run labels its batches as before.
    """

    @dataclasses.dataclass
    class Options:
        clusters: int = ranged(20, 2, 1000)  # k of k-means: the pseudo-classes
        fit_samples: int = ranged(4096, 2, 10**7)  # data samples k-means is fitted on (a seeded draw)
        mismatch_fraction: float = ranged(1.0, 0.0, 1.0, lo_open=True)  # mismatched real pairs per generated sample

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        if config.model.conditional:
            raise ConfigError("recipe=selfcond makes its own labels (clusters of the data): leave model.conditional false")
        if dataset.data.dim() < 4:
            raise ConfigError(f"recipe=selfcond clusters pictures, frames or spectrograms ([N, ..., H, W] samples); "
                              f"'{dataset.name}' holds samples of shape {tuple(dataset.shape)}")
        options = self.Options(**config.recipe_options)
        self.centroids = fit_centroids(dataset, options.clusters, options.fit_samples, config.train.seed + 8).to(device)
        super().__init__(config, dataset, device)

    def label_classes(self) -> int:
        return len(self.centroids)

    def pseudo_labelled(self, batch: Batch) -> Batch:
        """``batch`` with ``label`` = the nearest centroid of every real sample (the data set's labels unread)."""
        return {**batch, "label": nearest(spectral_signature(batch["image"]), self.centroids)}

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        return super().train_step(map(self.pseudo_labelled, batches), step)

    def generator_meta(self) -> dict[str, Any]:
        return {**super().generator_meta(), "class_names": [f"cluster {k}" for k in range(len(self.centroids))],
                "pseudo_labels": "k-means clusters of the magnitude spectrum (recipe selfcond)"}

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "centroids": self.centroids.cpu()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        if "centroids" in state:
            self.centroids = state["centroids"].to(self.device)


def fit_centroids(dataset: Dataset, clusters: int, fit_samples: int, seed: int) -> torch.Tensor:
    """k-means centroids ``[clusters, D]`` of :func:`spectral_signature` on ``fit_samples`` samples of ``dataset``."""
    from sklearn.cluster import KMeans

    if clusters > len(dataset):
        raise ConfigError(f"recipe_options.clusters ({clusters}) must not exceed the data set's {len(dataset)} samples")
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(dataset), generator=g)[: max(fit_samples, clusters)]
    signatures = torch.cat([spectral_signature(dataset.to_model(dataset.data[chunk]))
                            for chunk in pick.split(512)]).double().numpy()
    kmeans = KMeans(clusters, n_init=3, random_state=seed % 2**31).fit(signatures)
    return torch.from_numpy(kmeans.cluster_centers_).float()
