"""The ``ctgan`` recipe: CTGAN's training-by-sampling and conditional loss (Xu et al. 2019, section 4.3).

Tables are imbalanced: a category held by 2% of the rows is rarely drawn, and an unconditional
generator learns to leave it out. CTGAN trains conditionally without labels:

1. For every row of a batch, pick one category column uniformly, then one of its categories with
   probability proportional to the *log* of its frequency (rare categories drawn more often than
   their share, common ones less); the one-hot of that choice is the row's conditional vector.
2. The real row is drawn among the training rows that hold that category (training-by-sampling),
   so real and generated batches are conditioned alike and the critic cannot tell them apart by
   the categories they cover.
3. The generator reads the conditional vector; besides the adversarial loss it pays the
   cross-entropy between its logits for the chosen column and the chosen category, so it
   produces what it was asked for.

The critic is ``model.*``'s (``ctgan``: an MLP, packed with ``model.pack``), trained with the
configured loss and regularizers (the preset: Wasserstein with gradient penalty). At sampling
time the generator draws conditional vectors at the categories' plain frequencies
(:meth:`~ganforge.models.ctgan.CTGANGenerator.draw_condition`), as CTGAN does.

With ``train.privacy`` (DP-CTGAN) the critic trains by DP-SGD (:mod:`ganforge.training.privacy`):
training-by-sampling would draw rare categories' rows more often than the accountant allows, so
real rows are Poisson-sampled uniformly instead, and each generated row is conditioned on the
category of the real row beside it (a column chosen uniformly), which keeps real and generated
batches conditioned alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .. import models
from ..config import Config, ranged
from ..data import Dataset
from ..distributed import DistInfo
from ..errors import ConfigError
from ..metrics.tabular import CATEGORY
from ..tabular import TableTransformer
from .privacy import PrivateCritic
from .recipes import RECIPES, Batch, GANRecipe


def table_spans(dataset: Dataset) -> list[list[object]]:
    """The ``ctgan`` model's ``spans`` of a table data set: its transformer's layout, category columns'
    one-hots marked as conditional."""
    if "table" not in dataset.info:
        raise ConfigError(f"recipe=ctgan needs a table data set (table, breast_cancer, wine, diabetes), not '{dataset.name}'")
    transformer = TableTransformer.from_dict(dataset.info["table"])
    kinds = {c.name: c.kind for c in transformer.columns}
    return [[start, width, activation, activation == "softmax" and kinds[column] in CATEGORY]
            for start, width, activation, column in transformer.spans]


@RECIPES.register("ctgan", help="CTGAN for tables: training-by-sampling, conditional vectors, conditional cross-entropy (Xu et al.)")
class CTGANRecipe(GANRecipe):
    """:class:`GANRecipe` with CTGAN's conditional sampling of real and generated rows (module docstring)."""

    supports_privacy = True

    @dataclasses.dataclass
    class Options:
        cond_weight: float = ranged(1.0, 0.0, 1e3)  # weight of the generator's conditional cross-entropy

    def __init__(self, config: Config, dataset: Dataset, device: torch.device) -> None:
        if config.model.name != "ctgan":
            raise ConfigError(f"recipe=ctgan trains model.name=ctgan, not '{config.model.name}'")
        self.spans = table_spans(dataset)
        super().__init__(config, dataset, device)
        self.rngs["condition"] = torch.Generator().manual_seed(config.train.seed + 9)
        g = self.generator
        data = dataset.data
        # per conditional category: the rows that hold it (training-by-sampling), and its log-frequency weight
        # (all categories' row lists concatenated, with each category's offset and count into them)
        rows: list[torch.Tensor] = []
        weights = []
        for start, width, _, _ in g.conditions:
            block = data[:, start:start + width]
            rows += [torch.nonzero(block[:, k] > 0.5)[:, 0] for k in range(width)]
            counts = block.sum(dim=0)
            weights.append(torch.log1p(counts) / torch.log1p(counts).sum())
        self.category_weights = weights
        self.row_counts = torch.tensor([len(r) for r in rows])
        self.row_offsets = self.row_counts.cumsum(0) - self.row_counts
        self.row_index = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)
        self.privacy: PrivateCritic | None = None
        privacy = config.train.privacy
        if privacy.epsilon is not None:
            if config.train.compile:
                raise ConfigError("train.privacy runs uncompiled (Opacus's per-row gradient hooks): set train.compile=false")
            if config.model.pack != 1:
                raise ConfigError("train.privacy needs model.pack=1: a packed critic input would hold several real rows")
            if self.regularizers:
                raise ConfigError("train.privacy trains the critic without loss.regularizers (Opacus cannot clip "
                                  "per-row gradients of a gradient penalty): remove them")
            self.rngs["privacy"] = torch.Generator().manual_seed(config.train.seed + 11)
            self.privacy = PrivateCritic(
                self.discriminator, self.optimizers["discriminator"], privacy, rows=len(data),
                batch_size=config.train.batch_size, updates=config.train.steps * self.n_critic, generator=self.rngs["privacy"],
            )
            self.optimizers["discriminator"] = self.privacy.optimizer

    def distribute(self, info: DistInfo, *, sync_batchnorm: bool = False) -> None:
        if self.privacy is not None:
            raise ConfigError("train.privacy trains on one process (the accounting assumes one Poisson batch per update)")
        super().distribute(info, sync_batchnorm=sync_batchnorm)

    def label_classes(self) -> int:
        return 0  # conditioning is the conditional vector's, not the data set's labels

    def build_networks(self, num_classes: int) -> tuple[nn.Module, nn.Module]:
        m = self.config.model
        generator, _ = models.create(m.name, self.dataset.shape, 0, **{**m.options, "spans": self.spans})
        _, critic = models.create(m.name, self.dataset.shape, 0, pack=m.pack, **m.options)  # spans: the generator's only
        return generator, critic

    def condition(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` conditional vectors by log-frequency, the chosen (column, category) of each, and real rows
        that hold them."""
        g, rng = self.generator, self.rngs["condition"]
        columns = torch.randint(len(g.conditions), (n,), generator=rng)
        categories = torch.zeros(n, dtype=torch.long)
        for i, weights in enumerate(self.category_weights):
            chosen = columns == i
            if chosen.any():  # a batch may draw no row for a column (tables with many category columns)
                categories[chosen] = torch.multinomial(weights, int(chosen.sum()), replacement=True, generator=rng)
        offsets = torch.tensor([0] + [s[1] for s in g.conditions]).cumsum(0)[:-1]
        flat = offsets[columns] + categories
        cond = F.one_hot(flat, g.cond_dim).float()
        # a uniformly drawn row among those holding each chosen category (a category no row holds has
        # zero log-frequency weight and is never chosen)
        within = (torch.rand(n, generator=rng) * self.row_counts[flat]).long().clamp_max(self.row_counts[flat] - 1)
        picks = self.row_index[self.row_offsets[flat] + within]
        return cond, columns, picks

    def condition_of(self, picks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional vectors that name the categories real rows ``picks`` hold (a column chosen
        uniformly per row), and the chosen columns."""
        g, data = self.generator, self.dataset.data
        columns = torch.randint(len(g.conditions), (len(picks),), generator=self.rngs["condition"])
        cond = torch.zeros(len(picks), g.cond_dim)
        offset = 0
        for i, (start, width, _, _) in enumerate(g.conditions):
            chosen = columns == i
            cond[chosen, offset:offset + width] = data[picks[chosen], start:start + width].float()
            offset += width
        return cond, columns

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        size = self.config.train.batch_size
        g = self.generator
        for i in range(self.n_critic):
            if self.privacy is not None:  # Poisson rows, generated rows conditioned like them
                picks = self.privacy.poisson_rows()
                cond, columns = self.condition_of(picks) if g.cond_dim else (None, None)
            elif g.cond_dim:
                cond, columns, picks = self.condition(size)
            else:  # no category column: plain GAN training on uniformly drawn rows
                picks, cond, columns = None, None, None
            batch = next(batches) if picks is None else {"image": self.dataset.to_model(self.dataset.data[picks]).to(self.device)}
            z = self.latents(len(batch["image"]))
            with torch.set_grad_enabled(i == self.n_critic - 1), self.autocast():
                cond = g.condition_of(z) if cond is None else cond.to(self.device)
                logits = g.logits(z, cond)
                fake = g.activate(logits, z, cond)
            d_loss, d_logs = self.d_update(batch, fake, None)
        self._conditional = (logits, None if columns is None else cond, columns)
        g_loss, g_logs = self.g_update(batch, fake, None)
        logs = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **d_logs, **g_logs}
        t = self.config.train
        if self.privacy is not None and ((step + 1) % t.log_every == 0 or step + 1 == t.steps):
            logs["epsilon"] = torch.tensor(self.privacy.epsilon(self.d_updates))  # spent so far (only on logged steps)
        return logs

    def extra_state(self) -> dict[str, Any]:
        state = super().extra_state()
        return {**state, "noise_multiplier": self.privacy.sigma} if self.privacy is not None else state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        saved = state.get("noise_multiplier")
        if self.privacy is not None and saved is not None and abs(saved - self.privacy.sigma) > 1e-9 * saved:
            # the accounting assumes one noise level for the whole run: a longer (or shorter) run needs another
            raise ConfigError(f"train.privacy: this run's noise (multiplier {saved:.4g}) was calibrated to its train.steps; "
                              "resume it with the same train.steps, or start a new run")

    def generator_meta(self) -> dict[str, Any]:
        meta = super().generator_meta()
        return {**meta, "privacy": self.privacy.meta(self.d_updates)} if self.privacy is not None else meta

    def g_update(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.privacy is None:
            return super().g_update(batch, fake, labels)
        with self.privacy.public():  # the generator's gradient through the critic needs no per-row gradients
            return super().g_update(batch, fake, labels)

    def g_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, logs = super().g_objective(batch, fake, labels)
        logits, cond, columns = self._conditional
        if cond is None or self.options.cond_weight == 0 or self.generator.copy_condition:  # copied: nothing to learn
            return loss, logs
        cond = cond.to(logits.device)
        penalty = logits.new_zeros(())
        offset = 0
        for i, (start, width, _, _) in enumerate(self.generator.conditions):
            chosen = (columns == i).to(logits.device)
            if chosen.any():
                target = cond[chosen, offset:offset + width].argmax(dim=1)
                penalty = penalty + F.cross_entropy(logits[chosen, start:start + width].float(), target, reduction="sum")
            offset += width
        penalty = penalty / len(logits)
        return loss + self.options.cond_weight * penalty, {**logs, "cond_ce": penalty.detach()}
