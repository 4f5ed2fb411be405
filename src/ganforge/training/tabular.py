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
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .. import models
from ..config import Config, ranged
from ..data import Dataset
from ..errors import ConfigError
from ..metrics.tabular import CATEGORY
from ..tabular import TableTransformer
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
        self.rows: list[torch.Tensor] = []
        weights = []
        for start, width, _, _ in g.conditions:
            block = data[:, start:start + width]
            for k in range(width):
                self.rows.append(torch.nonzero(block[:, k] > 0.5)[:, 0])
            counts = block.sum(dim=0)
            weights.append(torch.log1p(counts) / torch.log1p(counts).sum())
        self.category_weights = weights

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
            categories[chosen] = torch.multinomial(weights, int(chosen.sum()), replacement=True, generator=rng)
        offsets = torch.tensor([0] + [s[1] for s in g.conditions]).cumsum(0)[:-1]
        flat = offsets[columns] + categories
        cond = F.one_hot(flat, g.cond_dim).float()
        picks = torch.stack([self.rows[int(f)][torch.randint(len(self.rows[int(f)]), (1,), generator=rng)] for f in flat]).squeeze(1)
        return cond, columns, picks

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, torch.Tensor]:
        size = self.config.train.batch_size
        g = self.generator
        for i in range(self.n_critic):
            if g.cond_dim:
                cond, columns, picks = self.condition(size)
                batch = {"image": self.dataset.to_model(self.dataset.data[picks]).to(self.device)}
            else:  # no category column: plain GAN training on uniformly drawn rows
                batch, cond, columns = next(batches), None, None
            z = self.latents(size)
            with torch.set_grad_enabled(i == self.n_critic - 1), self.autocast():
                logits = g.logits(z, None if cond is None else cond.to(self.device))
                fake = g.activate(logits, z)
            d_loss, d_logs = self.d_update(batch, fake, None)
        self._conditional = (logits, cond, columns)
        g_loss, g_logs = self.g_update(batch, fake, None)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **d_logs, **g_logs}

    def g_objective(self, batch: Batch, fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, logs = super().g_objective(batch, fake, labels)
        logits, cond, columns = self._conditional
        if cond is None or self.options.cond_weight == 0:
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
