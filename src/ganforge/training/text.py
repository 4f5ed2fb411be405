"""Text recipes: one language model (``models/textgan.py``) trained three ways.

* ``mle``: maximum likelihood by teacher forcing, ``-sum_t log p(x_t | x_<t)``: the baseline
  every text GAN is measured against (Caccia et al., "Language GANs Falling Short").
* ``relgan`` (Nie et al., 2019): MLE pre-training, then a relativistic GAN whose generator's
  sampling step is relaxed by Gumbel-softmax with an inverse temperature ``beta`` annealed
  from 1 to ``beta_max``: D reads soft one-hots, the gradient flows back through them.
* ``seqgan`` (Yu et al., 2017): MLE pre-training of G and D's pre-training on real against
  generated sentences, then REINFORCE: every word's reward is D's probability of "real" for
  sentences completed from its prefix by Monte-Carlo rollouts, and G ascends
  ``sum_t Q_t log p(y_t | y_<t)``.

The pre-training steps count in ``train.steps``, so a preset's budget is its whole run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import torch

from .. import losses, models
from ..config import Config, ranged
from ..core import eval_mode
from ..data import Dataset
from ..errors import ConfigError
from ..losses.adversarial import bce_d_loss
from ..models.textgan import PAD
from .recipes import RECIPES, Batch, Recipe, make_optimizer


class TextRecipe(Recipe):
    """The language model (and its discriminator where the recipe has one), MLE steps, text previews."""

    #: Whether the recipe trains a discriminator.
    adversarial = True

    @dataclasses.dataclass
    class Options:
        pretrain_steps: int = ranged(0, 0, 10**7)  # MLE updates before adversarial training (counted in train.steps)
        mle_lr: float = ranged(1e-2, 0, 10, lo_open=True)  # Adam's learning rate of the MLE updates
        grad_clip: float = ranged(5.0, 0, 1e6, lo_open=True)  # largest gradient norm of G's updates

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        if dataset.modality != "text":
            raise ConfigError(f"recipe '{config.recipe}' trains on sentences; '{dataset.name}' holds {dataset.modality} data")
        if config.model.conditional:
            raise ConfigError(f"recipe '{config.recipe}' is unconditional: set model.conditional=false")
        vocab = len(dataset.info["vocab"])
        generator, discriminator = models.create(config.model.name, dataset.shape, 0, vocab_size=vocab, **config.model.options)
        if not hasattr(generator, "token_nll"):
            raise ConfigError(f"recipe '{config.recipe}' needs a language model as generator (model.name: textgan), "
                              f"not '{config.model.name}'")
        o = config.optim
        self.networks = {"generator": self.place(generator)}
        self.optimizers = {"mle": make_optimizer(o, generator.parameters(), self.options.mle_lr, o.g_betas, device)}
        if self.adversarial:
            self.networks["discriminator"] = self.place(discriminator)
            self.optimizers["generator"] = make_optimizer(o, generator.parameters(), o.g_lr, o.g_betas, device)
            self.optimizers["discriminator"] = make_optimizer(o, discriminator.parameters(), o.d_lr, o.d_betas, device)
        self.rngs["noise"] = torch.Generator(device=device).manual_seed(config.train.seed + 1)

    @property
    def discriminator(self) -> torch.nn.Module:
        return self.networks["discriminator"]

    def clip_and_step(self, name: str, loss: torch.Tensor, module: torch.nn.Module) -> None:
        """Backward ``loss`` and step optimizer ``name`` with ``module``'s gradient norm clipped at ``grad_clip``."""
        self.optimizers[name].zero_grad(set_to_none=True)
        self.optimize(name, loss, module, max_norm=self.options.grad_clip)

    def mle_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One teacher-forcing update: the mean negative log-likelihood per word (``<eos>`` included)."""
        nll, words = self.generator.token_nll(batch["image"])
        loss = nll.sum() / words.sum()
        self.clip_and_step("mle", loss, self.generator)
        return {"nll": loss.detach()}

    def real_and_fake_scores(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.discriminator(real), self.discriminator(fake)

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        if not self.adversarial or step < self.options.pretrain_steps:
            return self.mle_step(next(batches))
        return self.adversarial_step(batches, step)

    def adversarial_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def generator_meta(self) -> dict[str, Any]:
        return {"recipe": self.config.recipe}


@RECIPES.register("mle", help="text: a language model trained by maximum likelihood (teacher forcing) only; model textgan")
class MLERecipe(TextRecipe):
    """Teacher forcing for all ``train.steps``: the baseline of the text GANs."""

    adversarial = False


@RECIPES.register("relgan", help="text: RelGAN, Gumbel-softmax relaxation with annealed temperature, relativistic loss; model textgan")
class RelGANRecipe(TextRecipe):
    """MLE pre-training, then ``n_critic`` D updates and one G update per step through Gumbel-softmax samples.

    ``beta``, the inverse temperature, grows as ``beta_max ** (i / N)`` over the ``N``
    adversarial steps (RelGAN's exponential schedule): soft samples at first (low-variance,
    biased gradients), nearly one-hot at the end. ``loss.name`` is the adversarial loss
    (RelGAN: ``relativistic-pair``).
    """

    @dataclasses.dataclass
    class Options(TextRecipe.Options):
        beta_max: float = ranged(100.0, 1, 1e6)  # final inverse temperature of the Gumbel-softmax

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        self.loss = losses.get(config.loss.name)
        self.rngs["gumbel"] = torch.Generator(device=device).manual_seed(config.train.seed + 5)

    def beta(self, step: int) -> float:
        adversarial = max(1, self.config.train.steps - self.options.pretrain_steps)
        return float(self.options.beta_max ** (min(step - self.options.pretrain_steps, adversarial) / adversarial))

    def adversarial_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        g, d = self.generator, self.discriminator
        beta = self.beta(step)
        g.beta.fill_(beta)
        for _ in range(self.config.train.n_critic):
            real = next(batches)["image"]
            with torch.no_grad():
                soft, _ = g.relaxed(len(real), beta, self.rngs["gumbel"])
            real_logits, fake_logits = self.real_and_fake_scores(real, soft)
            d_loss = self.loss.d_loss(real_logits, fake_logits)
            self.clip_and_step("discriminator", d_loss, d)
        d.requires_grad_(False)
        try:
            soft, _ = g.relaxed(len(real), beta, self.rngs["gumbel"])
            fake_logits = d(soft)
            real_logits = d(real).detach() if self.loss.relativistic else None
            g_loss = self.loss.generator_loss(fake_logits, real_logits)
            self.clip_and_step("generator", g_loss, g)
        finally:
            d.requires_grad_(True)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "beta": torch.tensor(beta)}


@RECIPES.register("seqgan", help="text: SeqGAN, REINFORCE with Monte-Carlo rollouts against a CNN discriminator; model textgan")
class SeqGANRecipe(TextRecipe):
    """MLE pre-training of G, then of D (``d_pretrain_steps``), then policy gradients.

    Each adversarial step: ``n_critic`` D updates (real against sampled sentences, binary
    cross-entropy), then one G update. The reward of word ``t`` of a sampled sentence is the
    mean of ``sigmoid(D)`` over ``rollouts`` completions of its first ``t + 1`` words (the
    sentence itself at its last word); words after ``<eos>`` get no reward.
    """

    @dataclasses.dataclass
    class Options(TextRecipe.Options):
        d_pretrain_steps: int = ranged(200, 0, 10**7)  # D updates on real vs generated after G's MLE pre-training
        rollouts: int = ranged(8, 1, 256)  # Monte-Carlo completions per prefix

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        super().__init__(config, dataset, device)
        self.d_pretrained = False

    def sample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.generator.latent_dim, generator=self.rngs["noise"], device=self.device)
        with torch.no_grad():
            return self.generator.sample_words(z)

    def d_step(self, real: torch.Tensor) -> torch.Tensor:
        fake = self.sample(len(real))
        real_logits, fake_logits = self.real_and_fake_scores(real, fake)
        loss = bce_d_loss(real_logits, fake_logits)  # a classifier: the rewards read sigmoid(D) as P(real)
        self.clip_and_step("discriminator", loss, self.discriminator)
        return loss.detach()

    #: Rollout sentences sampled at once (prefixes x rollouts are stacked into batches of this size).
    ROLLOUT_BATCH = 4096

    @torch.no_grad()
    def rewards(self, words: torch.Tensor) -> torch.Tensor:
        """``Q [N, T]``: for every prefix, the mean D probability of its rollouts (0 after the sentence).

        The last action of a sentence (its ``<eos>``) is rewarded by D's verdict on the sentence
        itself; every earlier prefix of every sentence is completed ``rollouts`` times, all in
        a few batches of rows ``(prefix, rollout)``.
        """
        g, d, r = self.generator, self.discriminator, self.options.rollouts
        alive = (words != PAD).float()  # after the end: no action taken there
        lengths = alive.sum(1).long()  # words + <eos>
        with eval_mode(d):  # no dropout while judging
            q = torch.sigmoid(d(words))[:, None].expand_as(alive).clone()
            positions = torch.arange(words.shape[1], device=words.device)
            rows, cols = (positions[None, :] < (lengths - 1)[:, None]).nonzero(as_tuple=True)  # prefixes without <eos>
            if len(rows):
                rows_r, keep = rows.repeat(r), cols.repeat(r) + 1
                scores = []
                for i in range(0, len(rows_r), self.ROLLOUT_BATCH):
                    chunk = slice(i, i + self.ROLLOUT_BATCH)
                    z = torch.randn(len(keep[chunk]), g.latent_dim, generator=self.rngs["noise"], device=words.device)
                    scores.append(torch.sigmoid(d(g.complete(words[rows_r[chunk]], keep[chunk], z))))
                q[rows, cols] = torch.cat(scores).view(r, len(rows)).mean(0)
        return q * alive

    def adversarial_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        logs: dict[str, torch.Tensor] = {}
        if not self.d_pretrained:
            for _ in range(self.options.d_pretrain_steps):
                self.d_step(next(batches)["image"])
            self.d_pretrained = True
        for _ in range(self.config.train.n_critic):
            real = next(batches)["image"]
            logs["d_loss"] = self.d_step(real)
        words = self.sample(len(real))
        q = self.rewards(words)
        alive = (words != PAD).float()
        actions = alive.sum().clamp_min(1)
        log_probs = self.generator.token_log_probs(words)  # [N, T]
        g_loss = -(log_probs * q).sum() / actions  # REINFORCE: each word's log-probability weighted by its reward
        self.clip_and_step("generator", g_loss, self.generator)
        logs.update(g_loss=g_loss.detach(), reward=q.sum() / actions, sample_nll=-(log_probs * alive).sum().detach() / actions)
        return logs

    def extra_state(self) -> dict[str, Any]:
        return {"d_pretrained": self.d_pretrained}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.d_pretrained = bool(state.get("d_pretrained", False))
