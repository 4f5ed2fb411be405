"""InfoGAN (Chen et al., 2016): latent codes that the generator must keep recoverable.

The generator's input is ``[noise | categorical code | continuous codes]``: ``noise_dim``
incompressible dimensions, a one-hot code over ``num_categorical`` values and
``num_continuous`` codes uniform on [-1, 1]. A head Q on the discriminator's features
predicts the codes back from the image; training (``recipe: infogan``) maximises a lower
bound on the mutual information ``I(c; G(z, c))`` by minimising Q's prediction loss in both
networks, so the codes come to control salient factors (digit class, slant, width).

Latents stay plain Gaussians. The generator reads its codes off a standard normal latent
``z [N, noise_dim + num_categorical + num_continuous]``: the categorical code is the
``argmax`` of its ``K`` entries (uniform over ``K`` by symmetry) and each continuous code
is ``erf(z / sqrt 2) = 2 Phi(z) - 1`` (uniform on [-1, 1]). So every consumer that feeds
``N(0, I)`` latents (``Generator.sample``, the trainer's sample grids and BatchNorm
calibration, a generator rebuilt by ``load_generator``) gets correctly distributed codes;
:meth:`InfoGANGenerator.sample_codes` samples with chosen codes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, UserError
from . import MODELS, image_resolutions, smallest_config
from .base import configurable, generate, init_weights, square_image_shape, truncated_normal
from .dcgan import DCGANDiscriminator, DCGANGenerator, octaves

#: Bound of the learned log-variance (a soft clamp keeps the Gaussian NLL finite).
MAX_LOGVAR = 6.0


def _check_codes(num_categorical: int, num_continuous: int) -> None:
    """One-line errors for impossible code sizes (a single category carries no information)."""
    if num_categorical < 0 or num_categorical == 1:
        raise ConfigError(f"model.num_categorical must be 0 (no categorical code) or >= 2, got {num_categorical}")
    if num_continuous < 0:
        raise ConfigError(f"model.num_continuous must be >= 0, got {num_continuous}")


@configurable
class InfoGANGenerator(DCGANGenerator):
    """DCGAN generator whose latent carries a categorical code and continuous codes.

    ``latent_dim = noise_dim + num_categorical + num_continuous``: the size of the Gaussian
    latent ``forward`` takes (see the module docstring for how codes are read off it).
    """

    def __init__(
        self,
        channels: int = 1,
        resolution: int = 32,
        noise_dim: int = 62,
        num_categorical: int = 10,
        num_continuous: int = 2,
        base_channels: int = 64,
        num_classes: int = 0,
        label_dim: int = 0,
    ) -> None:
        _check_codes(num_categorical, num_continuous)
        if noise_dim < 0 or noise_dim + num_categorical + num_continuous == 0:
            raise ConfigError(f"model.noise_dim must be >= 0 with a non-empty latent, got {noise_dim}")
        latent_dim = noise_dim + num_categorical + num_continuous
        super().__init__(channels, resolution, latent_dim, base_channels, num_classes, label_dim)
        self.noise_dim, self.num_categorical, self.num_continuous = noise_dim, num_categorical, num_continuous

    def codes(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Split a Gaussian latent into ``(noise [N, noise_dim], category [N] or None, continuous [N, C])``."""
        noise, cat, cont = z.split([self.noise_dim, self.num_categorical, self.num_continuous], dim=1)
        category = cat.argmax(dim=1) if self.num_categorical else None
        # erf(z / sqrt 2) = 2 Phi(z) - 1 with Phi the normal CDF: N(0, 1) -> U(-1, 1)
        return noise, category, torch.erf(cont / math.sqrt(2.0))

    def synthesize(
        self,
        noise: torch.Tensor,
        category: torch.Tensor | None,
        continuous: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images for explicit codes (continuous codes may leave [-1, 1] to extrapolate)."""
        parts = [noise]
        if self.num_categorical:
            parts.append(F.one_hot(category, self.num_categorical).to(noise.dtype))
        parts.append(continuous.to(noise.dtype))
        return super().forward(torch.cat(parts, dim=1), labels)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesize(*self.codes(z), labels)

    @torch.no_grad()
    def sample_codes(
        self,
        n: int,
        seed: int = 0,
        category: int | list[int] | torch.Tensor | None = None,
        continuous: float | list[float] | torch.Tensor | None = None,
        labels: torch.Tensor | list[int] | int | None = None,
        truncation: float | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Like :meth:`Generator.sample` (same seed, same noise), with chosen codes.

        Args:
            category: one value or ``[n]`` values in ``0..num_categorical-1`` (None: random).
            continuous: a scalar, ``[num_continuous]`` or ``[n, num_continuous]`` values
                (None: random); training draws them from [-1, 1].
            labels: class labels of a conditional generator (default: cycling classes).
        """
        rng = torch.Generator(device="cpu").manual_seed(int(seed))
        noise, cat, cont = self.codes(truncated_normal((n, self.latent_dim), truncation, rng))
        if category is not None:
            if not self.num_categorical:
                raise UserError("this generator has no categorical code (num_categorical = 0)")
            cat = torch.as_tensor(category, dtype=torch.long).reshape(-1).cpu()
            cat = cat.expand(n) if cat.numel() == 1 else cat
            if cat.numel() != n or cat.min() < 0 or cat.max() >= self.num_categorical:
                raise UserError(f"category must be one or {n} values in 0..{self.num_categorical - 1}")
        if continuous is not None:
            c = self.num_continuous
            values = torch.as_tensor(continuous, dtype=torch.float32).cpu()
            if c and values.numel() == 1:
                values = values.reshape(1).expand(c)  # the same value for every continuous code
            if not c or tuple(values.shape) not in ((c,), (n, c)):
                raise UserError(f"continuous must be a scalar, {c} values or [{n}, {c}] values (num_continuous = {c})")
            cont = values.expand(n, c)
        if self.num_classes and labels is None:
            labels = torch.arange(n) % self.num_classes
        labels = self.check_labels(labels, n)
        return generate(self, (noise, cat, cont), labels, batch_size=batch_size, forward=self.synthesize)


@configurable
class InfoGANDiscriminator(DCGANDiscriminator):
    """DCGAN discriminator (projection head when conditional) plus the Q head of InfoGAN.

    Q shares every convolution with D, then (as in the paper) a dense layer of ``q_hidden``
    units with batch norm and LeakyReLU, and outputs the categorical logits and the
    continuous codes' means (and log-variances with ``learn_variance``).
    """

    def __init__(
        self,
        channels: int = 1,
        resolution: int = 32,
        base_channels: int = 64,
        num_classes: int = 0,
        num_categorical: int = 10,
        num_continuous: int = 2,
        q_hidden: int = 128,
        learn_variance: bool = False,
    ) -> None:
        super().__init__(channels, resolution, base_channels, num_classes, "projection")
        _check_codes(num_categorical, num_continuous)
        if q_hidden < 1:
            raise ConfigError(f"model.q_hidden must be >= 1, got {q_hidden}")
        self.num_categorical, self.num_continuous, self.learn_variance = num_categorical, num_continuous, learn_variance
        outputs = num_categorical + num_continuous * (2 if learn_variance else 1)
        width = self.head.in_channels
        self.q_head = (
            nn.Sequential(
                nn.Conv2d(width, q_hidden, 4, 1, 0, bias=False),  # dense layer on the 4x4 features
                nn.BatchNorm2d(q_hidden),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(q_hidden, outputs, 1),
            )
            if outputs
            else None
        )
        if self.q_head is not None:
            self.q_head.apply(init_weights())

    def forward_aux(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Adversarial logits ``[N]`` and Q's outputs: ``cat_logits [N, K]``, ``cont_mean [N, C]``
        and, with ``learn_variance``, ``cont_logvar [N, C]`` (keys of absent codes omitted)."""
        h = self.features(x)
        logits = self.head(h).flatten()
        if self.projection is not None:
            logits = logits + self.projection(h.sum(dim=(2, 3)), labels)
        aux: dict[str, torch.Tensor] = {}
        if self.q_head is None:
            return logits, aux
        q = self.q_head(h).flatten(1)
        k, c = self.num_categorical, self.num_continuous
        if k:
            aux["cat_logits"] = q[:, :k]
        if c:
            aux["cont_mean"] = q[:, k : k + c]
            if self.learn_variance:
                aux["cont_logvar"] = MAX_LOGVAR * torch.tanh(q[:, k + c :] / MAX_LOGVAR)
        return logits, aux


@MODELS.register("infogan", help="InfoGAN: DCGAN with categorical/continuous latent codes recovered by a Q head")
@image_resolutions(octaves)
@smallest_config(
    ((1, 8, 8), {"base_channels": 4, "noise_dim": 8, "num_categorical": 3, "num_continuous": 1, "q_hidden": 8}),
    ((3, 16, 16), {"base_channels": 4, "noise_dim": 8, "num_categorical": 4, "num_continuous": 2, "q_hidden": 8, "learn_variance": True}),
)
def build_infogan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    noise_dim: int = 62,
    num_categorical: int = 10,
    num_continuous: int = 2,
    base_channels: int = 64,
    d_base_channels: int | None = None,
    q_hidden: int = 128,
    learn_variance: bool = False,
    label_dim: int = 0,
) -> tuple[InfoGANGenerator, InfoGANDiscriminator]:
    """InfoGAN for square images ``(C, R, R)``; the generator's latent size is
    ``noise_dim + num_categorical + num_continuous``. Train with ``recipe: infogan``."""
    channels, resolution = square_image_shape("infogan", data_shape)
    generator = InfoGANGenerator(
        channels, resolution, noise_dim, num_categorical, num_continuous, base_channels, num_classes, label_dim
    )
    discriminator = InfoGANDiscriminator(
        channels, resolution, d_base_channels or base_channels, num_classes,
        num_categorical, num_continuous, q_hidden, learn_variance,
    )
    return generator, discriminator
