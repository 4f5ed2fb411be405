"""Image-to-image recipes: the shared base and ``pix2pix``.

:class:`TranslationRecipe` is what pix2pix, CycleGAN and super-resolution recipes have in
common: a :class:`~ganforge.models.Translator` generator, batches ``{"image": target,
"source": input}`` from an image-to-image data set (see :mod:`ganforge.data.paired`), and
the trainer hooks of :class:`~ganforge.training.recipes.Recipe` filled in for images
instead of latents:

* :meth:`~TranslationRecipe.fixed_inputs`: a fixed batch of training pairs (a seeded
  selection, centre-cropped to the training size);
* :meth:`~TranslationRecipe.render_samples`: a comparison grid, one example per row,
  ``input | output | target`` (no target column for unpaired data); the last one is also
  written to ``comparison.png`` in the run directory;
* :meth:`~TranslationRecipe.calibration_inputs`: batches of training inputs for the
  BatchNorm statistics of the exported generator;
* :meth:`~TranslationRecipe.generator_meta`: task, direction, scale, channels, training size.

``ganforge eval RUN_DIR`` scores pix2pix and CycleGAN runs on the test split
(:func:`ganforge.evaluation.translation.evaluate_translation`, registered for them).

Subclasses implement ``train_step`` and may override :meth:`~TranslationRecipe.make_source`
(super-resolution makes the input from the target).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch import nn

from .. import losses, models
from ..config import MAX_WEIGHT, Config, ranged
from ..data import Dataset
from ..data.base import center_crop
from ..errors import ConfigError
from ..losses.paired import l1_loss
from ..viz import comparison_grid
from .recipes import RECIPES, Batch, Recipe, make_optimizer

if TYPE_CHECKING:
    from PIL import Image

#: Example rows per group of a comparison grid (more examples wrap into side-by-side groups).
GRID_ROWS = 8


class TranslationRecipe(Recipe):
    """Base of image-to-image recipes (see the module docstring for the hooks it fills in)."""

    task = "translation"
    final_grid = "comparison.png"
    SHARED_STREAMS = ()  # no latents: nothing every process must draw identically

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        name = config.recipe
        if not dataset.is_image:
            raise ConfigError(f"recipe '{name}' needs image data; '{dataset.name}' is not")
        if config.eval.every > 0:
            raise ConfigError(
                f"eval.every > 0 is not supported by recipe '{name}' yet; evaluate after training with "
                "`ganforge eval RUN_DIR` (L1 and FID on the test split)"
            )
        unsupported = {
            "augment.name": config.augment.name != "none",
            "loss.regularizers": bool(config.loss.regularizers),
            "loss.weight_clip": config.loss.weight_clip is not None,
            "model.pack": config.model.pack > 1,
            "model.conditional": config.model.conditional,
        }
        for key, used in unsupported.items():
            if used:
                raise ConfigError(f"config key '{key}' is not supported by recipe '{name}'")

    @property
    def train_size(self) -> int | None:
        """Side of the training crops (``data.crop``), or None for whole images."""
        return self.config.data.crop

    def build_translator(self, in_channels: int, out_channels: int) -> tuple[models.Translator, nn.Module]:
        """``model.*``'s image-to-image pair, checked against the training image size."""
        m = self.config.model
        generator, discriminator = models.create_translator(m.name, in_channels, out_channels, **m.options)
        h, w = self.dataset.shape[1:]
        side = self.train_size
        sizes = (side, side) if side is not None else (h, w)
        step = generator.size_multiple * generator.scale
        if any(s % step for s in sizes):
            raise ConfigError(
                f"model '{m.name}' needs training images whose sides are multiples of {step}, got "
                f"{sizes[1]}x{sizes[0]} (set data.crop or data.resolution, or change the model's depth)"
            )
        return generator, discriminator

    def init_networks(self, generator: nn.Module, discriminator: nn.Module, adversarial: bool) -> None:
        """Place the generator (and, when ``adversarial``, the discriminator) with their optimizers and the loss."""
        opt, device = self.config.optim, self.device
        self.networks = {"generator": self.place(generator)}
        self.optimizers = {"generator": make_optimizer(opt, generator.parameters(), opt.g_lr, opt.g_betas, device)}
        if adversarial:
            self.networks["discriminator"] = self.place(discriminator)
            self.optimizers["discriminator"] = make_optimizer(opt, discriminator.parameters(), opt.d_lr, opt.d_betas, device)
        self.loss = losses.get(self.config.loss.name)

    def make_source(self, batch: Batch) -> torch.Tensor:
        """The generator's input for ``batch`` (the data set's ``source``)."""
        return batch["source"]

    # ------------------------------------------------------------------ trainer hooks

    def _crop_pairs(self, index: torch.Tensor, source_index: torch.Tensor | None) -> Batch:
        """Centre crops (the training size) of images ``index`` and their sources, in model range."""
        ds, side = self.dataset, self.train_size
        scale = ds.source_scale if ds.paired else 1
        image = ds.data[index]
        if side is not None:  # aligned with the source's window when the source is r times smaller
            h, w = image.shape[-2:]
            top, left = (h - side) // (2 * scale) * scale, (w - side) // (2 * scale) * scale
            image = image[..., top : top + side, left : left + side]
        batch = {"image": ds.to_model(image)}
        if ds.sources is not None:
            source = ds.sources[index if ds.paired else source_index]
            batch["source"] = ds.to_model(center_crop(source, None if side is None else side // scale))
        return {k: v.to(self.device) for k, v in batch.items()}

    def _selection(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        ds = self.dataset
        index = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
        source_index = None
        if ds.sources is not None and not ds.paired:
            source_index = torch.randperm(len(ds.sources), generator=torch.Generator().manual_seed(seed + 1))[:n]
        return index, source_index

    def fixed_inputs(self, n: int) -> Batch:
        """``{"source", "image"}``: ``n`` training pairs picked with seed ``train.seed + 2``."""
        n = min(n, len(self.dataset), *([] if self.dataset.sources is None else [len(self.dataset.sources)]))
        return self._crop_pairs(*self._selection(n, self.config.train.seed + 2))

    def render_samples(self, generator: nn.Module, fixed: Batch) -> "Image.Image":
        """Rows ``input | output | target`` (``input | output`` for unpaired data)."""
        source = self.make_source(fixed)
        output = generator(self.formatted(source)).float()
        columns = [source, output] + ([fixed["image"]] if self.dataset.paired or self.dataset.sources is None else [])
        return comparison_grid([c.cpu() for c in columns], max_rows=GRID_ROWS)

    def calibration_inputs(self, batch_size: int, count: int = 8) -> list[tuple[torch.Tensor | None, ...]]:
        """``count`` batches of training inputs (seed ``train.seed + 3``), as ``(source,)``."""
        seed = self.config.train.seed + 3
        batches = []
        for i in range(count):
            n = min(batch_size, len(self.dataset))
            batches.append((self.make_source(self._crop_pairs(*self._selection(n, seed + 2 * i))),))
        return batches

    def generator_meta(self) -> dict[str, Any]:
        g = self.generator
        return {
            "task": self.task,
            "direction": self.dataset.info.get("direction"),
            "scale": int(getattr(g, "scale", 1)),
            "in_channels": int(g.in_channels),
            "out_channels": int(g.out_channels),
            "train_size": self.train_size or int(self.dataset.shape[-1]),
        }


@RECIPES.register(
    "pix2pix", help="pix2pix: conditional PatchGAN on (input, output) pairs + L1 (Isola et al.); adversarial=false: L1 only"
)
class Pix2PixRecipe(TranslationRecipe):
    """pix2pix (Isola et al., 2017) on paired data; needs an image-to-image model (``model.name: pix2pix``).

    Each step: ``n_critic`` discriminator updates, each on a fresh batch, on ``(x, y)`` real
    pairs against ``(x, G(x))`` fake pairs, with the loss halved as in the paper (D then
    learns more slowly than G): ``L_D = 1/2 [loss_D(D(x, y), D(x, G(x)))]``; then one
    generator update on the last batch, reusing its ``G(x)``:
    ``L_G = loss_G(D(x, G(x))) + lambda_l1 * E|G(x) - y|``. ``loss.name`` picks the
    adversarial pair (the paper's is ``nonsaturating``); all reduce over every patch.

    ``adversarial: false`` drops the discriminator: the same U-Net trained on L1 alone, the
    paper's "L1" baseline (blurry but well aligned).
    """

    @dataclasses.dataclass
    class Options:
        lambda_l1: float = ranged(100.0, 0, MAX_WEIGHT)  # weight of the L1 term in the generator's loss
        adversarial: bool = True  # false: L1 only, no discriminator (the baseline)

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        if dataset.sources is None or not dataset.paired:
            raise ConfigError(
                f"recipe 'pix2pix' needs paired data (data.name: paired-folder); '{dataset.name}' has no paired inputs"
            )
        o = self.options
        if o.lambda_l1 < 0 or (o.lambda_l1 == 0 and not o.adversarial):
            raise ConfigError(
                f"recipe_options.lambda_l1 must be >= 0 (> 0 when adversarial is false), got {o.lambda_l1}"
            )
        self.init_networks(*self.build_translator(dataset.sources.shape[1], dataset.shape[0]), o.adversarial)
        self.n_critic = config.train.n_critic if o.adversarial else 1

    @property
    def discriminator(self) -> nn.Module:
        return self.networks["discriminator"]

    def score(self, output: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Patch logits ``[N, 1, h, w]`` (float32) of ``(source, output)`` pairs."""
        with self.autocast():
            return self.discriminator(self.formatted(output), self.formatted(source)).float()

    def translate(self, source: torch.Tensor, grad: bool) -> torch.Tensor:
        with torch.set_grad_enabled(grad), self.autocast():
            return self.generator(self.formatted(source))

    def d_update(self, source: torch.Tensor, target: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator step on real ``(x, y)`` and fake ``(x, G(x))`` pairs."""
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        real_logits, fake_logits = self.score(target, source), self.score(fake.detach(), source)
        loss = 0.5 * self.loss.d_loss(real_logits, fake_logits)
        self.optimize("discriminator", loss, self.discriminator)
        return {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}

    def g_update(self, source: torch.Tensor, target: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """One generator step: ``lambda_l1 * L1`` (+ the adversarial term through the current D)."""
        self.optimizers["generator"].zero_grad(set_to_none=True)
        l1 = l1_loss(fake, target)
        loss = self.options.lambda_l1 * l1
        logs = {"g_l1": l1.detach()}
        adversarial = self.options.adversarial
        if adversarial:
            self.discriminator.requires_grad_(False)  # D's weights need no gradients meanwhile
        try:
            if adversarial:
                real_logits = None
                if self.loss.relativistic:
                    with torch.no_grad():
                        real_logits = self.score(target, source)
                adv = self.loss.generator_loss(self.score(fake, source), real_logits)
                loss = loss + adv
                logs["g_adv"] = adv.detach()
            self.optimize("generator", loss, self.generator)
        finally:
            if adversarial:
                self.discriminator.requires_grad_(True)
        return {"g_loss": loss.detach(), **logs}

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        logs: dict[str, torch.Tensor] = {}
        for i in range(self.n_critic):
            batch = next(batches)
            source, target = self.make_source(batch), batch["image"]
            fake = self.translate(source, grad=i == self.n_critic - 1)
            if self.options.adversarial:
                logs.update(self.d_update(source, target, fake))
        logs.update(self.g_update(source, target, fake))
        return logs
