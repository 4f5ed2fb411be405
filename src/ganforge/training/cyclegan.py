"""CycleGAN (Zhu et al., 2017): unpaired translation with cycle consistency.

Domain A is the data set's inputs (batches' ``source``), domain B its targets (``image``);
``data.direction`` picks which side is which. Two generators ``G = G_AB`` and ``F = G_BA``
and two unconditional PatchGANs ``D_A``, ``D_B`` (model family ``cyclegan``) train with

    L_G = loss_G(D_B(G(a))) + loss_G(D_A(F(b)))
          + lambda_cycle * (E|F(G(a)) - a| + E|G(F(b)) - b|)                      (cycle)
          + lambda_cycle * lambda_identity * (E|G(b) - b| + E|F(a) - a|)          (identity)
    L_D = 1/2 loss_D(D_B(b), D_B(pool_B(G(a)))) + 1/2 loss_D(D_A(a), D_A(pool_A(F(b))))

where ``pool`` is the :class:`~ganforge.training.image_pool.ImagePool` history of fakes and
``loss`` the registered adversarial pair (``least-squares`` in the paper). One step: the
four translations once, then the generators' update (both in one Adam, as in the reference
code; the discriminators frozen), then the discriminators' update (both in one Adam) on the
detached fakes through the pools. ``G_AB`` is the run's ``generator``: the one averaged,
sampled, exported and evaluated (direction A -> B).

Loss scales: the registry's ``least-squares`` pair is Mao et al.'s, ``1/2 E(D - 1)^2`` for
G, half the paper's ``E(D - 1)^2``; at the same ``lambda_cycle`` the cycle term therefore
weighs twice as much, relative to the adversarial one, as in the paper (``lambda_cycle: 5``
reproduces the paper's balance; Adam ignores the overall factor). ``L_D`` halves the
registered D loss as pix2pix does, which only rescales it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch import nn

from .. import losses, models
from ..config import MAX_WEIGHT, Config, ranged
from ..core import eval_mode
from ..data import Dataset
from ..errors import ConfigError, UserError
from ..losses.paired import cycle_loss, identity_loss
from ..models.base import GENERATOR_CONFIG
from ..models.loading import check_fit, check_generator_config
from ..rundir import RunDir
from ..viz import comparison_grid
from .checkpoint import load_checkpoint
from .image_pool import ImagePool
from .recipes import RECIPES, Batch, make_optimizer
from .translation import GRID_ROWS, TranslationRecipe

if TYPE_CHECKING:
    from PIL import Image

#: Checkpointed networks: ``generator`` is G_AB (the run's translator).
NETWORK_NAMES = ("generator", "generator_ba", "discriminator_a", "discriminator_b")


@RECIPES.register(
    "cyclegan",
    help="CycleGAN: two generators and two PatchGANs on unpaired domains, cycle + identity losses, image pools",
)
class CycleGANRecipe(TranslationRecipe):
    """CycleGAN on unpaired data (``unpaired-folders``, or paired data with ``data.unpaired: true``).

    See the module docstring for the objective; ``model.name: cyclegan`` for the networks.
    """

    @dataclasses.dataclass
    class Options:
        lambda_cycle: float = ranged(10.0, 0, MAX_WEIGHT)  # weight of the cycle-consistency terms (both directions)
        lambda_identity: float = ranged(0.5, 0, MAX_WEIGHT)  # identity terms' weight, as a fraction of lambda_cycle (0: off)
        pool_size: int = ranged(50, 0, 10_000)  # fakes remembered per discriminator (0: no history)

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        if dataset.sources is None or dataset.paired:
            raise ConfigError(
                f"recipe 'cyclegan' needs unpaired data: data.name: unpaired-folders, or data.unpaired: true to draw "
                f"the two sides of '{dataset.name}' independently"
            )
        o = self.options
        if config.train.n_critic != 1:
            raise ConfigError(
                "recipe 'cyclegan' alternates one generator and one discriminator update: train.n_critic must be 1, "
                f"got {config.train.n_critic}"
            )
        a_channels, b_channels = dataset.sources.shape[1], dataset.shape[0]
        if o.lambda_identity > 0 and a_channels != b_channels:
            raise ConfigError(
                f"the identity loss needs domains with the same channels (A has {a_channels}, B {b_channels}): "
                "set recipe_options.lambda_identity: 0"
            )
        g_ab, d_b = self.build_translator(a_channels, b_channels)
        g_ba, d_a = self.build_translator(b_channels, a_channels)
        self.networks = {
            name: self.place(net) for name, net in zip(NETWORK_NAMES, (g_ab, g_ba, d_a, d_b))
        }
        # Views for gradient averaging and freezing; the networks are owned (and saved) above.
        self.generator_pair = nn.ModuleList([self.networks["generator"], self.networks["generator_ba"]])
        self.discriminator_pair = nn.ModuleList([self.networks["discriminator_a"], self.networks["discriminator_b"]])
        opt = config.optim
        self.optimizers = {
            "generator": make_optimizer(opt, self.generator_pair.parameters(), opt.g_lr, opt.g_betas, device),
            "discriminator": make_optimizer(opt, self.discriminator_pair.parameters(), opt.d_lr, opt.d_betas, device),
        }
        self.loss = losses.get(config.loss.name)
        self.rngs["pool"] = torch.Generator().manual_seed(config.train.seed + 5)
        self.pools = {side: ImagePool(o.pool_size, self.rngs["pool"]) for side in ("a", "b")}

    # ------------------------------------------------------------------ pieces

    def run(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Network ``name`` on ``x`` under the recipe's autocast and memory format (float32 out)."""
        with self.autocast():
            return self.networks[name](self.formatted(x)).float()

    def adversarial(self, side: str, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``loss_G`` of ``fake`` through ``D_side`` (real logits only for relativistic losses)."""
        real_logits = None
        if self.loss.relativistic:
            with torch.no_grad():
                real_logits = self.run(f"discriminator_{side}", real)
        return self.loss.generator_loss(self.run(f"discriminator_{side}", fake), real_logits)

    def g_update(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Both generators' step; returns the fakes ``G(a)``, ``F(b)`` (for D) and the logs."""
        o = self.options
        self.optimizers["generator"].zero_grad(set_to_none=True)
        fake_b = self.run("generator", a)  # G(a)
        fake_a = self.run("generator_ba", b)  # F(b)
        cycle_a = cycle_loss(self.run("generator_ba", fake_b), a)  # |F(G(a)) - a|
        cycle_b = cycle_loss(self.run("generator", fake_a), b)  # |G(F(b)) - b|
        self.discriminator_pair.requires_grad_(False)  # D's weights need no gradients meanwhile
        try:
            adv_b, adv_a = self.adversarial("b", fake_b, b), self.adversarial("a", fake_a, a)
            loss = adv_a + adv_b + o.lambda_cycle * (cycle_a + cycle_b)
            logs = {"g_adv_a": adv_a.detach(), "g_adv_b": adv_b.detach(), "cycle_a": cycle_a.detach(),
                    "cycle_b": cycle_b.detach(), "cycle": (cycle_a + cycle_b).detach()}
            if o.lambda_identity > 0:
                idt_b = identity_loss(self.run("generator", b), b)  # |G(b) - b|
                idt_a = identity_loss(self.run("generator_ba", a), a)  # |F(a) - a|
                loss = loss + o.lambda_cycle * o.lambda_identity * (idt_a + idt_b)
                logs["identity"] = (idt_a + idt_b).detach()
            self.optimize("generator", loss, self.generator_pair)
        finally:
            self.discriminator_pair.requires_grad_(True)
        return fake_b, fake_a, {"g_loss": loss.detach(), **logs}

    def d_objective(
        self, side: str, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``1/2 loss_D`` of ``D_side`` on ``real`` against the pooled, detached ``fake``; and mean logits."""
        name = f"discriminator_{side}"
        real_logits, fake_logits = self.run(name, real), self.run(name, self.pools[side].query(fake.detach()))
        return 0.5 * self.loss.d_loss(real_logits, fake_logits), real_logits.detach().mean(), fake_logits.detach().mean()

    def d_update(
        self, a: torch.Tensor, b: torch.Tensor, fake_b: torch.Tensor, fake_a: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Both discriminators' step (one backward through the sum of their losses)."""
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        loss_b, real_b, faked_b = self.d_objective("b", b, fake_b)
        loss_a, real_a, faked_a = self.d_objective("a", a, fake_a)
        self.optimize("discriminator", loss_a + loss_b, self.discriminator_pair)
        return {"d_loss": (loss_a + loss_b).detach(), "d_loss_a": loss_a.detach(), "d_loss_b": loss_b.detach(),
                "d_real": 0.5 * (real_a + real_b), "d_fake": 0.5 * (faked_a + faked_b)}

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        batch = next(batches)
        a, b = self.make_source(batch), batch["image"]
        fake_b, fake_a, logs = self.g_update(a, b)
        logs.update(self.d_update(a, b, fake_b, fake_a))
        return logs

    # ------------------------------------------------------------------ trainer hooks

    def render_samples(self, generator: nn.Module, fixed: Batch) -> "Image.Image":
        """Rows ``a | G(a) | F(G(a)) | b | F(b)``: ``generator`` is the exported G_AB; F the current G_BA."""
        backward = self.networks["generator_ba"]
        with eval_mode(backward):
            a, b = fixed["source"], fixed["image"]
            fake_b = generator(self.formatted(a)).float()
            columns = [a, fake_b, backward(self.formatted(fake_b)).float(), b,
                       backward(self.formatted(b)).float()]
        return comparison_grid([c.cpu() for c in columns], max_rows=GRID_ROWS)

    def generator_meta(self) -> dict[str, Any]:
        return {**super().generator_meta(), "recipe": "cyclegan"}

    def extra_state(self) -> dict[str, Any]:
        return {"pools": {side: pool.state_dict() for side, pool in self.pools.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for side, pool_state in state.get("pools", {}).items():
            self.pools[side].load_state_dict(pool_state, self.device)


def load_translators(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[models.Translator, models.Translator]:
    """``(G_AB, G_BA)`` of a CycleGAN run, rebuilt from its latest checkpoint, in eval mode.

    (The run's ``generator/`` folder holds G_AB alone, with EMA weights when ``train.ema_decay > 0``;
    these are the raw training weights of both directions.)
    """
    run = RunDir(run_dir)
    if run.config.recipe != "cyclegan":
        raise UserError(f"'{run.dir}' is a '{run.config.recipe}' run, not a CycleGAN one")
    path = run.latest_checkpoint
    if not path.is_file():
        raise UserError(f"no checkpoint at '{path}'")
    where = f"'{run.generator_dir / GENERATOR_CONFIG}'"
    cls, kwargs, _ = check_generator_config(run.generator_config(), where)  # G_AB's class and arguments (EMA weights)
    if not {"in_channels", "out_channels"} <= set(kwargs):
        raise UserError(f"{where}: a CycleGAN generator needs 'in_channels' and 'out_channels' arguments")
    swapped = {**kwargs, "in_channels": kwargs["out_channels"], "out_channels": kwargs["in_channels"]}
    networks = load_checkpoint(path)["recipe"]["networks"]
    out = []
    for arguments, name in ((kwargs, "generator"), (swapped, "generator_ba")):
        state = networks.get(name)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise UserError(f"'{path}' is not a CycleGAN checkpoint: no tensors of 'recipe.networks.{name}'")
        check_fit(cls, arguments, {k: v.shape for k, v in state.items()}, where,
                  f"'{path}' does not fit {where} (network '{name}')", "the checkpoint")
        net = cls(**arguments)
        net.load_state_dict(state)
        out.append(net.to(device).eval())
    return out[0], out[1]


@torch.no_grad()
def cycle_error(g_ab: nn.Module, g_ba: nn.Module, a: torch.Tensor, batch_size: int = 64) -> float:
    """Mean ``|F(G(a)) - a|`` over images ``a`` (model range [-1, 1]): the cycle-consistency error."""
    total = 0.0
    for i in range(0, len(a), batch_size):
        chunk = a[i : i + batch_size]
        total += float(cycle_loss(g_ba.translate(g_ab.translate(chunk)), chunk)) * len(chunk)
    return total / len(a)
