"""StyleGAN2 training (Karras et al., 2020): the ``stylegan`` recipe.

On top of the ordinary adversarial step (use the non-saturating loss and R1 through the
config, ``loss.regularizers: {r1: {weight: gamma, every: 16}}``) it adds:

* **Style mixing regularization**: with probability ``style_mixing`` a generated sample
  takes its styles from two latents, the first for layers ``< cutoff`` and the second
  from ``cutoff`` on (``cutoff`` uniform in ``1..num_ws - 1``), so that the network cannot
  assume adjacent styles are correlated.
* **Path-length regularization** (``pl_weight > 0``, lazily every ``pl_every`` generator
  steps): for ``y ~ N(0, I) / sqrt(H W)`` the length ``||J_w^T y||`` of the gradient of
  ``<G(w), y>`` with respect to ``w`` should be the same for every ``w``: the penalty is
  ``(||J_w^T y|| - a)^2`` with ``a`` the running mean of the lengths (decay ``pl_decay``),
  which makes a fixed-size step in ``w`` change the image by a fixed amount.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator

import torch

from ..config import MAX_BATCH, MAX_WEIGHT, Config, ranged
from ..data import Dataset
from ..errors import ConfigError
from ..models.stylegan import StyleGANGenerator
from .recipes import RECIPES, Batch, GANRecipe


@RECIPES.register("stylegan", help="StyleGAN2 training: style mixing and lazy path-length regularization")
class StyleGANRecipe(GANRecipe):
    """StyleGAN2's generator-side regularizers around the adversarial step (needs ``model.name=stylegan``)."""

    @dataclasses.dataclass
    class Options:
        style_mixing: float = ranged(0.9, 0, 1)  # probability that a generated sample mixes two latents
        pl_weight: float = ranged(0.0, 0, MAX_WEIGHT)  # path-length regularization weight (0 = off; StyleGAN2 used 2)
        pl_every: int = ranged(4, 1, 10**6)  # lazy regularization: every k-th generator step, weighted by k
        pl_decay: float = ranged(0.01, 0, 1, lo_open=True)  # decay of the running mean path length a
        pl_batch_shrink: int = ranged(2, 1, MAX_BATCH)  # the path-length batch is batch_size / this

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        if not isinstance(self.generator, StyleGANGenerator):
            raise ConfigError(f"recipe 'stylegan' needs model.name=stylegan, got '{config.model.name}'")
        self.pl_mean = torch.zeros((), device=device)  # a, the running mean of ||J_w^T y||
        self.g_steps = 0  # generator steps done before the current one (for pl_every)

    def make_fake(self, batch: Batch, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A generated batch; with probability ``style_mixing`` per sample, two latents mixed."""
        g, rng = self.generator, self.rngs["noise"]
        n = len(batch["image"])
        labels = batch.get("label") if self.conditional else None
        z = self.latents(n)
        mix_latents = mix_cutoff = None
        if self.options.style_mixing > 0:
            mix_latents = self.latents(n)
            cutoff = self.draw(lambda m: torch.randint(1, g.num_ws, (m,), generator=rng, device=rng.device), n)
            mixing = self.draw(lambda m: torch.rand(m, generator=rng, device=rng.device), n) < self.options.style_mixing
            # A cutoff of num_ws means "no layer takes the second latent".
            mix_cutoff = torch.where(mixing, cutoff, torch.full_like(cutoff, g.num_ws)).to(self.device)
        with torch.set_grad_enabled(grad), self.autocast():
            return g(z, labels, mix_latents=mix_latents, mix_cutoff=mix_cutoff), labels

    def path_length_penalty(self, labels: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """``E[(||J_w^T y|| - a)^2]`` on a fresh batch; updates the running mean ``a``."""
        g, rng = self.generator, self.rngs["noise"]
        n = max(1, batch_size // self.options.pl_batch_shrink)
        z = self.latents(n)
        labels = labels[:n] if labels is not None else None
        with self.autocast():
            ws = g.styles(z, labels)
            images = g.synthesize(ws)
        height, width = images.shape[2:]
        # y ~ N(0, I) / sqrt(HW): E||J^T y||^2 then does not depend on the resolution.
        shape = images.shape[1:]
        y = self.draw(lambda m: torch.randn((m, *shape), generator=rng, device=rng.device), n).to(self.device)
        y = y / math.sqrt(height * width)
        (grad,) = torch.autograd.grad((images.float() * y).sum(), ws, create_graph=True)
        lengths = grad.float().pow(2).sum(dim=2).mean(dim=1).sqrt()  # [n]: mean over layers of ||.||^2, rooted
        self.pl_mean = self.pl_mean.lerp(lengths.mean().detach(), self.options.pl_decay)
        return (lengths - self.pl_mean).pow(2).mean()

    def g_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, logs = super().g_objective(batch, fake, labels)
        o = self.options
        if o.pl_weight > 0:
            if self.g_steps % o.pl_every == 0:
                penalty = self.path_length_penalty(labels, len(fake))
                loss = loss + (o.pl_weight * o.pl_every) * penalty
            logs = {**logs, "pl_mean": self.pl_mean.detach().clone()}
        return loss, logs

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        self.g_steps = step
        return super().train_step(batches, step)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "pl_mean": self.pl_mean.detach().cpu()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.pl_mean = torch.as_tensor(state.get("pl_mean", 0.0), dtype=torch.float32).to(self.device)
