"""Progressive growing (ProGAN; Karras et al., 2018): the ``progan`` recipe.

Training starts with both networks at ``start_resolution`` and doubles the resolution
in phases of ``kimg_per_phase`` thousand real images: one stable phase at the start
resolution, then per new resolution a fade-in phase (``alpha`` rising linearly from 0 to
1) and a stable phase; after the last fade-in the networks stay at the data resolution.

The position in the schedule is a function of the images shown so far,
``step * batch_size * n_critic``, so it needs no state of its own: before every step the
recipe sets ``(stage, alpha)`` on the generator and the discriminator (the trainer's EMA
copies the generator's buffers after the step), and real batches are brought to the same
point of the schedule (:func:`~ganforge.models.progan.fade_to_stage`) before the
discriminator sees them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator

import torch

from ..config import MAX_SIDE, MAX_WEIGHT, Config, ranged
from ..data import Dataset
from ..errors import ConfigError
from ..models.progan import Growing, fade_to_stage
from .recipes import RECIPES, Batch, GANRecipe


def growth_schedule(images: float, phase_images: float, start_stage: int, levels: int) -> tuple[int, float]:
    """``(stage, alpha)`` after ``images`` real images.

    Phase 0 is stable at ``start_stage``; then each stage ``start_stage + j`` (``j >= 1``)
    fades in during phase ``2j - 1`` (``alpha = fraction of the phase done``) and is stable
    during phase ``2j``; from the end of the last fade-in on it is ``(levels, 1)``.
    """
    t = images / phase_images  # phases completed (fractional)
    if t < 1.0 or start_stage >= levels:
        return start_stage, 1.0
    j, done = divmod(t - 1.0, 2.0)  # fade-in + stable pairs after the first stable phase
    stage = start_stage + 1 + int(j)
    if stage > levels:
        return levels, 1.0
    return stage, min(done, 1.0)


@RECIPES.register("progan", help="progressive growing (ProGAN): both networks grow to the data resolution with fade-ins")
class ProgressiveRecipe(GANRecipe):
    """ProGAN's growing schedule around the ordinary adversarial step (needs ``model.name=progan``).

    The loss is the config's (ProGAN used ``wasserstein`` with ``gp`` weight 10 and a drift
    term ``drift * E[D(x)^2]`` that keeps the critic's outputs near 0).
    """

    @dataclasses.dataclass
    class Options:
        kimg_per_phase: float = ranged(600.0, 0, 1e6, lo_open=True)  # thousands of real images per fade-in and per stable phase
        start_resolution: int = ranged(4, 4, MAX_SIDE)  # resolution of the first stage (a power of two >= 4)
        drift: float = ranged(0.0, 0, MAX_WEIGHT)  # epsilon_drift: adds drift * E[D(real)^2] to D's loss (ProGAN: 0.001)

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        o = self.options
        self.growing = [m for net in self.networks.values() for m in net.modules() if isinstance(m, Growing)]
        if len(self.growing) != 2:
            raise ConfigError(f"recipe 'progan' needs model.name=progan (growing networks), got '{config.model.name}'")
        self.levels = self.growing[0].levels
        full = 4 * 2**self.levels
        start = o.start_resolution
        if start < 4 or start > full or 2 ** round(math.log2(start)) != start:
            raise ConfigError(
                f"recipe_options.start_resolution must be a power of two in 4..{full} (the data resolution), got {start}"
            )
        self.start_stage = round(math.log2(start)) - 2
        self.images_per_step = config.train.batch_size * config.train.n_critic
        if o.drift > 0:  # the drift term is part of D's loss: a function of the real logits
            base = self.loss.d_loss
            self.loss = dataclasses.replace(
                self.loss, d_loss=lambda real, fake: base(real, fake) + o.drift * real.pow(2).mean()
            )
        self.growth = (self.levels, 1.0)

    def growth_at(self, step: int) -> tuple[int, float]:
        """``(stage, alpha)`` for the step that starts after ``step`` generator steps."""
        images = step * self.images_per_step
        # Rounded so that e.g. 0.024 kimg is exactly 24 images (phase boundaries land on steps).
        phase_images = round(self.options.kimg_per_phase * 1000.0, 6)
        return growth_schedule(images, phase_images, self.start_stage, self.levels)

    def _staged(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """The real batches, brought to the current stage and fade-in."""
        stage, alpha = self.growth
        while True:
            batch = next(batches)
            yield {**batch, "image": fade_to_stage(batch["image"], stage, alpha, self.levels)}

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        self.growth = self.growth_at(step)
        for net in self.growing:
            net.set_growth(*self.growth)
        out = super().train_step(self._staged(batches), step)
        stage, alpha = self.growth
        out["resolution"] = torch.tensor(4.0 * 2**stage)
        out["alpha"] = torch.tensor(alpha)
        return out
