"""Recipes: how a family of methods turns batches into parameter updates.

A recipe builds its networks and optimizers from the config and implements
``train_step``; the :class:`~ganforge.training.trainer.Trainer` owns everything around it
(loop, EMA, checkpoints, logging, samples). New methods (unrolled GANs, pix2pix, ...) are
new registered recipes, not branches in the trainer.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from .. import losses, models
from ..config import Config, OptimConfig
from ..data import Dataset
from ..errors import ConfigError
from ..registry import Registry

RECIPES: Registry = Registry("recipe")

Batch = dict[str, torch.Tensor]


def make_optimizer(cfg: OptimConfig, params: Any, lr: float, betas: list[float], device: torch.device) -> torch.optim.Optimizer:
    """Adam or RMSprop; the fused kernel on CUDA, the multi-tensor (foreach) one elsewhere."""
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=cfg.weight_decay, **fast)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=cfg.weight_decay, **fast)


class Recipe:
    """Base class: networks, optimizers, random generators and one training step.

    Attributes:
        networks: every trainable module by name (saved in checkpoints).
        optimizers: every optimizer by name (saved in checkpoints).
        generators: named ``torch.Generator`` objects whose state is checkpointed.
    """

    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        self.config, self.dataset, self.device = config, dataset, device
        self.generators: dict[str, torch.Generator] = {}
        self.amp_dtype = torch.bfloat16 if config.train.precision == "bf16" else None
        channels_last = config.train.channels_last and dataset.is_image
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def autocast(self) -> torch.autocast:
        """Mixed precision for forward passes (backward runs outside, as autocast advises)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None)

    def place(self, module: nn.Module) -> nn.Module:
        """Move a network to the device (and memory format) the recipe trains in."""
        return module.to(self.device, memory_format=self.memory_format)

    @property
    def generator(self) -> models.Generator:
        """The network that is averaged (EMA), sampled and exported."""
        return self.networks["generator"]  # type: ignore[return-value]

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        """One generator update (and its discriminator updates); returns detached losses."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {k: m.state_dict() for k, m in self.networks.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.networks.items():
            m.load_state_dict(state["networks"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])


@RECIPES.register("gan", help="adversarial training with n_critic D steps per G step")
class GANRecipe(Recipe):
    """Alternating updates of one generator and one discriminator.

    Each step: ``n_critic`` discriminator updates on fresh real batches, then one generator
    update. The fake batch of the *last* discriminator update is generated with autograd on
    and reused for the generator update, so a step with ``n_critic=1`` costs one generator
    forward (the discriminator sees it detached, the generator loss backpropagates through
    it after the discriminator has moved).
    """

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        self.conditional = config.model.conditional
        if self.conditional and dataset.labels is None:
            raise ConfigError(f"model.conditional=true needs a labelled data set; '{dataset.name}' has no labels")
        num_classes = dataset.num_classes if self.conditional else 0
        generator, discriminator = models.create(
            config.model.name, dataset.shape, num_classes, **config.model.options
        )
        self.networks = {"generator": self.place(generator), "discriminator": self.place(discriminator)}
        o = config.optim
        self.optimizers = {
            "generator": make_optimizer(o, generator.parameters(), o.g_lr, o.g_betas, device),
            "discriminator": make_optimizer(o, discriminator.parameters(), o.d_lr, o.d_betas, device),
        }
        self.loss = losses.get(config.loss.name)
        self.n_critic = config.train.n_critic
        self.generators["noise"] = torch.Generator(device=device).manual_seed(config.train.seed + 1)

    @property
    def discriminator(self) -> nn.Module:
        return self.networks["discriminator"]

    def _fake(self, batch: Batch, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        real = batch["image"]
        labels = batch.get("label") if self.conditional else None  # fake labels follow the real batch
        z = self.generator.sample_latents(len(real), self.generators["noise"])
        with torch.set_grad_enabled(grad), self.autocast():
            return self.generator(z, labels), labels

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        d, g = self.discriminator, self.generator
        d_opt, g_opt = self.optimizers["discriminator"], self.optimizers["generator"]
        for i in range(self.n_critic):
            batch = next(batches)
            last = i == self.n_critic - 1
            fake, labels = self._fake(batch, grad=last)
            d_opt.zero_grad(set_to_none=True)
            with self.autocast():
                real_logits = d(batch["image"].contiguous(memory_format=self.memory_format), labels).float()
                fake_logits = d(fake.detach(), labels).float()
            d_loss = self.loss.d_loss(real_logits, fake_logits)
            d_loss.backward()
            d_opt.step()

        # Generator update through the freshly updated discriminator; D's weights need no grads.
        d.requires_grad_(False)
        g_opt.zero_grad(set_to_none=True)
        with self.autocast():
            fake_logits_g = d(fake, labels).float()
        g_loss = self.loss.g_loss(fake_logits_g)
        g_loss.backward()
        g_opt.step()
        d.requires_grad_(True)
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": real_logits.detach().mean(),
            "d_fake": fake_logits.detach().mean(),
        }
