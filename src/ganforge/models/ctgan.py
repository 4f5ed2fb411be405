"""CTGAN's networks (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN"), written from the paper.

The generator reads noise and a *conditional vector* (a one-hot over every category of every
category column: "this row's column c takes value v") through two residual layers whose outputs
are concatenated to their inputs (``h_{i+1} = h_i (+) ReLU(BN(FC(h_i)))``), then a linear layer
gives the row's logits. Per output span (:class:`~ganforge.tabular.TableTransformer` layout):

* ``tanh`` for a numeric column's position ``alpha`` in its mode;
* Gumbel-softmax with temperature ``tau`` (0.2) for one-hots (modes, categories, missing
  flags): differentiable, and close to one-hot, so the critic cannot tell generated one-hots by
  their softness alone. :meth:`CTGANGenerator.decode` makes them exactly one-hot.

A fixed condition (:meth:`CTGANGenerator.set_condition`, ``ganforge sample --condition column=value``)
replaces the drawn conditional vector with that category's one-hot and sets the column's output to
it, so every row holds the asked value and the other columns follow it.

Sampling stays a pure function of the latent: the latent holds, after the ``noise_dim`` noise
values, two values that pick the conditional vector (a category column uniformly, then a category
at its training frequency, from :meth:`~CTGANGenerator.fit_data`) and one value per one-hot entry
that becomes its Gumbel noise (``-log(-log(Phi(u)))``). Seeds thus give the same rows anywhere.

The critic is an MLP (LeakyReLU 0.2, dropout 0.5) over ``pack`` rows at once (PacGAN:
``model.pack``, 10 in the paper). It reads the rows alone: the paper also appends each row's
conditional vector, but a real row drawn by training-by-sampling already holds the category its
vector names, and the generator is held to its vector by the recipe's cross-entropy term; rows
alone keep the critic an ordinary discriminator of the data's shape (PacGAN packing, the
shared tests).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import MODELS, smallest_config
from .base import Discriminator, Generator, configurable

#: A span of the output: (start, width, "tanh" | "softmax", conditional: a category column's one-hot).
Span = tuple[int, int, str, bool]


def as_spans(spans: Sequence[Sequence[object]] | None, width: int) -> list[Span]:
    """Spans from a config (lists), or one ``tanh`` span over all ``width`` outputs when None."""
    if not spans:
        return [(0, width, "tanh", False)]
    out = [(int(s[0]), int(s[1]), str(s[2]), bool(s[3]) if len(s) > 3 else False) for s in spans]
    if sum(s[1] for s in out) != width or any(s[2] not in ("tanh", "softmax") for s in out):
        raise ValueError(f"spans must tile the {width} outputs with 'tanh' or 'softmax' parts, got {spans}")
    return out


@configurable
class CTGANGenerator(Generator):
    """Noise + conditional vector -> residual MLP -> activated row vector (see the module docstring)."""

    def __init__(self, output_shape: tuple[int, ...] | list[int], spans: list[list[Any]] | None = None, noise_dim: int = 128,
                 hidden_dim: int = 256, num_layers: int = 2, tau: float = 0.2, num_classes: int = 0,
                 copy_condition: bool = False) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        width = math.prod(self.output_shape)
        self.spans = as_spans(spans, width)
        self.noise_dim, self.tau, self.num_classes, self.copy_condition = noise_dim, tau, num_classes, copy_condition
        self.conditions = [s for s in self.spans if s[3]]
        self.cond_dim = sum(s[1] for s in self.conditions)
        self.softmax_dim = sum(s[1] for s in self.spans if s[2] == "softmax")
        self.latent_dim = noise_dim + 2 + self.softmax_dim
        layers, size = [], noise_dim + self.cond_dim
        for _ in range(num_layers):
            layers.append(nn.Sequential(nn.Linear(size, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU()))
            size += hidden_dim
        self.layers = nn.ModuleList(layers)
        self.out = nn.Linear(size, width)
        # training frequency of every category of the conditional columns (fit_data); uniform until then
        self.register_buffer("frequencies", torch.ones(self.cond_dim))
        self.fixed: tuple[int, int, int, int] | None = None  # set_condition: (span start, width, category, cond offset)

    def set_condition(self, start: int | None, category: int = 0) -> None:
        """Generate every row with category ``category`` of the conditional span starting at ``start`` (None: draw
        conditions again)."""
        if start is None:
            self.fixed = None
            return
        offset = 0
        for span_start, width, _, _ in self.conditions:
            if span_start == start:
                if not 0 <= category < width:
                    raise ValueError(f"category {category} out of range 0..{width - 1}")
                self.fixed = (start, width, category, offset)
                return
            offset += width
        raise ValueError(f"no conditional span starts at {start}")

    def fit_data(self, real: torch.Tensor) -> None:
        """Category frequencies of the conditional columns, from real row vectors (their one-hots)."""
        if self.cond_dim:
            self.frequencies.copy_(self.condition_part(real).sum(dim=0) + 1e-3)

    def condition_part(self, rows: torch.Tensor) -> torch.Tensor:
        """The conditional columns' one-hots of row vectors, concatenated ``[N, cond_dim]``."""
        return torch.cat([rows[:, s[0]:s[0] + s[1]] for s in self.conditions], dim=1)

    def draw_condition(self, u: torch.Tensor) -> torch.Tensor:
        """Conditional vectors from two standard-normal latent values per row: a column uniformly,
        then a category at its training frequency (``[N, cond_dim]``)."""
        n = len(u)
        cond = torch.zeros(n, self.cond_dim, device=u.device)
        if not self.cond_dim:
            return cond
        uniform = torch.special.ndtr(u).clamp(0, 1 - 1e-7)
        column = (uniform[:, 0] * len(self.conditions)).long()
        offset = 0
        for i, (_, width, _, _) in enumerate(self.conditions):
            chosen = column == i
            p = self.frequencies[offset:offset + width]
            cdf = torch.cumsum(p / p.sum(), 0)
            category = torch.searchsorted(cdf, uniform[chosen, 1].contiguous()).clamp_max(width - 1)
            cond[chosen.nonzero()[:, 0], offset + category] = 1.0
            offset += width
        return cond

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.condition_of(z) if cond is None else cond
        return self.activate(self.logits(z, cond), z, cond)

    def condition_of(self, z: torch.Tensor) -> torch.Tensor:
        """The conditional vectors of latents ``z``: the fixed condition's (:meth:`set_condition`), else drawn from
        the latent's two condition values."""
        if self.fixed is None:
            return self.draw_condition(z[:, self.noise_dim:self.noise_dim + 2])
        cond = torch.zeros(len(z), self.cond_dim, device=z.device)
        cond[:, self.fixed[3] + self.fixed[2]] = 1.0
        return cond

    def logits(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The row logits before the per-span activations (the recipe's conditional loss reads them)."""
        h = torch.cat([z[:, :self.noise_dim], cond], dim=1) if self.cond_dim else z[:, :self.noise_dim]
        for layer in self.layers:
            h = torch.cat([h, layer(h)], dim=1)
        return self.out(h)

    def activate(self, logits: torch.Tensor, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``tanh`` per numeric span, Gumbel-softmax (noise from the latent's tail) per one-hot span; the column a
        conditional vector names holds its category (with ``copy_condition``, or a fixed condition)."""
        noise = z[:, self.noise_dim + 2:]
        gumbel = -torch.log(-torch.log(torch.special.ndtr(noise).clamp(1e-10, 1 - 1e-7)))
        parts, used = [], 0
        for start, width, activation, _ in self.spans:
            x = logits[:, start:start + width]
            if activation == "tanh":
                parts.append(torch.tanh(x))
            else:
                parts.append(F.softmax((x + gumbel[:, used:used + width]) / self.tau, dim=1))
                used += width
        out = torch.cat(parts, dim=1)
        if cond is not None and (self.copy_condition or self.fixed is not None):
            out = self.with_condition(out, cond)
        return out.view(len(z), *self.output_shape)

    def with_condition(self, rows: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Row vectors whose conditional columns named by ``cond`` hold the named category (the others unchanged)."""
        rows, offset = rows.clone(), 0
        for start, width, _, _ in self.conditions:
            part = cond[:, offset:offset + width]
            named = part.sum(dim=1) > 0
            rows[named, start:start + width] = part[named].to(rows.dtype)
            offset += width
        return rows

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """Soft one-hots made exact (the largest entry wins): rows as the data set stores them."""
        flat = outputs.flatten(1)
        parts = []
        for start, width, activation, _ in self.spans:
            x = flat[:, start:start + width]
            parts.append(x if activation == "tanh" else F.one_hot(x.argmax(dim=1), width).to(x.dtype))
        return torch.cat(parts, dim=1).view_as(outputs)


@configurable
class CTGANCritic(Discriminator):
    """Row (+ conditional vector) -> [Linear, LeakyReLU(0.2), Dropout(0.5)] x layers -> score."""

    def __init__(self, input_shape: tuple[int, ...] | list[int], hidden_dim: int = 256, num_layers: int = 2, dropout: float = 0.5,
                 num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        size = math.prod(input_shape)
        for _ in range(num_layers):
            layers += [nn.Linear(size, hidden_dim), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            size = hidden_dim
        self.net = nn.Sequential(*layers, nn.Linear(size, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


@MODELS.register("ctgan", help="CTGAN for tables: residual generator with Gumbel-softmax one-hots, MLP critic (use model.pack=10)")
@smallest_config(((6,), {"noise_dim": 4, "hidden_dim": 8, "num_layers": 1,
                         "spans": [[0, 1, "tanh", False], [1, 2, "softmax", False], [3, 3, "softmax", True]]}))
def build_ctgan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    spans: list[list[object]] | None = None,
    noise_dim: int = 128,
    hidden_dim: int = 256,
    num_layers: int = 2,
    tau: float = 0.2,
    copy_condition: bool = False,
    d_hidden_dim: int = 256,
    d_num_layers: int = 2,
    dropout: float = 0.5,
) -> tuple[CTGANGenerator, CTGANCritic]:
    """CTGAN's generator and critic. ``spans``: the table's output layout (the ctgan recipe fills it in
    from the data set)."""
    generator = CTGANGenerator(data_shape, spans, noise_dim, hidden_dim, num_layers, tau, num_classes, copy_condition)
    critic = CTGANCritic(data_shape, d_hidden_dim, d_num_layers, dropout, num_classes)
    return generator, critic
