"""Recipes for discriminators with auxiliary heads: AC-GAN and InfoGAN.

Both add a prediction loss on the discriminator's extra head to the adversarial losses of
:class:`~ganforge.training.recipes.GANRecipe` (whose regularizers, augmentation and
``n_critic`` still apply):

* ``acgan`` (Odena et al., 2017): the head classifies real and generated images; D
  minimises ``adv + w (CE(real) + CE(fake))``, G minimises ``adv + w CE(fake)``, so G
  learns to draw images of the class it was asked for.
* ``infogan`` (Chen et al., 2016): the head Q predicts the generator's latent codes; the
  mutual-information term ``L_I = CE(cat) + w_c NLL(cont)`` (a variational lower bound on
  ``I(c; G(z, c))``, up to the constant entropy ``H(c)``) is added with weight ``w`` to both
  losses.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..config import MAX_WEIGHT, Config, ranged
from ..data import Dataset
from ..errors import ConfigError
from ..registry import did_you_mean
from .recipes import RECIPES, Batch, GANRecipe

#: A GANRecipe objective: ``(batch, fake, labels) -> (loss, logs)``.
Objective = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


def gaussian_nll(mean: torch.Tensor, target: torch.Tensor, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of ``-log N(target; mean, exp(logvar))`` summed over codes, without
    the constant ``log(2 pi) / 2``; ``logvar=None`` is unit variance (half the squared error)."""
    if logvar is None:
        per_code = 0.5 * (target - mean).square()
    else:
        per_code = 0.5 * (logvar + (target - mean).square() * torch.exp(-logvar))
    return per_code.sum(dim=1).mean()


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose largest logit is the target (detached)."""
    return (logits.detach().argmax(dim=1) == targets).float().mean()


class AuxiliaryRecipe(GANRecipe):
    """A :class:`GANRecipe` whose discriminator has heads reached through ``forward_aux``.

    The adversarial objectives of the parent are reused unchanged: while :meth:`with_heads`
    runs one of them, :meth:`score` calls ``forward_aux`` instead of ``forward`` (the same
    features, one pass) and records each call's head outputs in order.
    """

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        self._heads: list[dict[str, torch.Tensor]] | None = None

    def score(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self._heads is None:
            return super().score(x, labels)
        with self.autocast():
            logits, heads = self.discriminator.forward_aux(self.formatted(x), labels)
        self._heads.append({k: v.float() for k, v in heads.items()})
        return logits.float()

    def with_heads(
        self, objective: Objective, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
        """Run a parent objective; also return the head outputs of each of its D calls, in order.

        ``GANRecipe.d_objective`` scores the real batch first, then the fake one (then any
        regularizer's inputs); ``GANRecipe.g_objective`` scores the fake batch first.
        """
        self._heads = []
        try:
            loss, logs = objective(batch, fake, labels)
        finally:
            heads, self._heads = self._heads, None
        return loss, logs, heads


@RECIPES.register("acgan", help="AC-GAN: D also classifies real and fake images; needs model acgan, conditional")
class ACGANRecipe(AuxiliaryRecipe):
    """Auxiliary-classifier GAN (Odena et al., 2017).

    Fake labels are drawn uniformly over the classes (``fake_labels: uniform``, the paper's
    choice) or copied from the real batch (``real``, as the plain conditional GAN does,
    which follows the data set's class frequencies). The classifier's accuracy on the real
    batch (``acc_real``) and on the fake one (``acc_fake``) is logged with the losses.
    """

    @dataclasses.dataclass
    class Options:
        aux_weight: float = ranged(1.0, 0, MAX_WEIGHT)  # w: weight of the classification losses in both networks
        fake_labels: str = "uniform"  # uniform | real: how the generator's labels are drawn
        # D's classifier also learns the labels of generated images (the paper); false: real images
        # only, so the head stays a classifier of the data that G must satisfy.
        classify_fakes: bool = True

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> Any:
        opts = super().check_options(options)
        if opts.fake_labels not in ("uniform", "real"):
            raise ConfigError(
                f"config key 'recipe_options.fake_labels' must be uniform or real, got '{opts.fake_labels}'"
                f"{did_you_mean(opts.fake_labels, ['uniform', 'real'])}"
            )
        return opts

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        if not config.model.conditional:
            raise ConfigError("recipe 'acgan' needs model.conditional: true (its classifier learns the data set's labels)")
        super().__init__(config, dataset, device)
        if not getattr(self.discriminator, "classifies", False):
            raise ConfigError(f"recipe 'acgan' needs model.name: acgan (a discriminator with a classifier head; or specgan "
                              f"with model.d_classifier: true), got '{config.model.name}'")
        self.rngs["labels"] = torch.Generator(device=device).manual_seed(config.train.seed + 5)

    def make_fake(self, batch: Batch, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.options.fake_labels == "real":
            return super().make_fake(batch, grad)
        n = len(batch["image"])
        labels = self.draw(
            lambda m: torch.randint(self.num_classes, (m,), generator=self.rngs["labels"], device=self.device), n
        )
        return super().make_fake({**batch, "label": labels}, grad)

    def d_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, logs, heads = self.with_heads(super().d_objective, batch, fake, labels)
        real_classes, fake_classes = heads[0]["class_logits"], heads[1]["class_logits"]  # real first (see with_heads)
        ce_real = F.cross_entropy(real_classes, batch["label"])
        ce_fake = F.cross_entropy(fake_classes, labels)
        logs.update(
            aux_real=ce_real.detach(), aux_fake=ce_fake.detach(),
            acc_real=accuracy(real_classes, batch["label"]), acc_fake=accuracy(fake_classes, labels),
        )
        aux = ce_real + ce_fake if self.options.classify_fakes else ce_real
        return loss + self.options.aux_weight * aux, logs

    def g_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, logs, heads = self.with_heads(super().g_objective, batch, fake, labels)
        ce = F.cross_entropy(heads[0]["class_logits"], labels)  # heads[0]: the fake batch
        logs["g_aux"] = ce.detach()
        return loss + self.options.aux_weight * ce, logs


@RECIPES.register("infogan", help="InfoGAN: G and D/Q also minimise Q's error on the latent codes; needs model infogan")
class InfoGANRecipe(AuxiliaryRecipe):
    """InfoGAN (Chen et al., 2016): the mutual-information term in both networks.

    ``L_I = CE(Q_cat(G(z, c)), c_cat) + continuous_weight * NLL(c_cont | Q_cont(G(z, c)))``
    is added with weight ``info_weight`` to the discriminator's loss (training Q and the
    shared body on the detached fakes) and to the generator's (making codes recoverable).
    Logged: ``info_cat``, ``info_cont`` (from the generator update) and ``q_acc``, Q's
    categorical accuracy on the fake batch in the discriminator update.
    """

    @dataclasses.dataclass
    class Options:
        info_weight: float = ranged(1.0, 0, MAX_WEIGHT)  # lambda: weight of the mutual-information term (paper: 1)
        continuous_weight: float = ranged(1.0, 0, MAX_WEIGHT)  # weight of the continuous codes' NLL inside L_I (official code: 1)

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        if config.model.pack > 1:
            raise ConfigError("recipe 'infogan' does not support model.pack > 1 (Q needs one image per prediction)")
        super().__init__(config, dataset, device)
        g, d = self.generator, self.discriminator
        # Any generator with InfoGAN's codes (``codes(z)``) and a discriminator with its Q head (``forward_aux``):
        # model infogan, or mocogan with model.num_categorical / num_continuous.
        if not (hasattr(g, "codes") and hasattr(d, "forward_aux") and hasattr(g, "num_categorical")):
            raise ConfigError(f"recipe 'infogan' needs model.name: infogan (latent codes and a Q head; or mocogan with "
                              f"model.num_categorical), got '{config.model.name}'")
        if not (g.num_categorical or g.num_continuous):
            raise ConfigError("recipe 'infogan' needs at least one code: model.num_categorical or model.num_continuous > 0")
        # The codes of the batch make_fake returned last: this step's D and G updates use it.
        self.codes: tuple[torch.Tensor | None, torch.Tensor] | None = None

    def make_fake(self, batch: Batch, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        labels = batch.get("label") if self.conditional else None
        z = self.latents(len(batch["image"]))
        _, category, continuous = self.generator.codes(z)
        self.codes = (category, continuous)
        with torch.set_grad_enabled(grad), self.autocast():
            return self.generator(z, labels), labels

    def information_loss(self, heads: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_I`` of Q's outputs on the current fake batch, and its parts to log."""
        category, continuous = self.codes
        loss = torch.zeros((), device=self.device)
        logs: dict[str, torch.Tensor] = {}
        if category is not None:
            ce = F.cross_entropy(heads["cat_logits"], category)
            loss = loss + ce
            logs.update(info_cat=ce.detach(), q_acc=accuracy(heads["cat_logits"], category))
        if continuous.shape[1]:
            nll = gaussian_nll(heads["cont_mean"], continuous, heads.get("cont_logvar"))
            loss = loss + self.options.continuous_weight * nll
            logs["info_cont"] = nll.detach()
        return loss, logs

    def d_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, logs, heads = self.with_heads(super().d_objective, batch, fake, labels)
        info, info_logs = self.information_loss(heads[1])  # Q on the (detached) fake batch
        if "q_acc" in info_logs:
            logs["q_acc"] = info_logs["q_acc"]
        return loss + self.options.info_weight * info, logs

    def g_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, logs, heads = self.with_heads(super().g_objective, batch, fake, labels)
        info, info_logs = self.information_loss(heads[0])
        info_logs.pop("q_acc", None)
        logs.update(info_logs)
        return loss + self.options.info_weight * info, logs
