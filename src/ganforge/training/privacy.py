"""Differentially private critic training: DP-SGD with Opacus (``train.privacy``).

Only the critic reads real rows, so only its updates need privacy; the generator learns through
the critic alone, and everything computed from a private critic is post-processing (DP-CTGAN,
DPGAN). Each critic update (Abadi et al. 2016):

1. draws a *Poisson* batch: every training row joins independently with probability
   ``q = batch_size / rows`` (the sampling the accountants analyse);
2. computes each row's own gradient (Opacus's per-sample gradients) and clips it to norm ``C``
   (``max_grad_norm``), so that no one row moves the critic by more than ``C``;
3. adds Gaussian noise of standard deviation ``sigma * C`` to the sum and divides by the expected
   batch size.

``sigma`` (the noise multiplier) is the smallest that keeps the whole run, ``steps * n_critic``
updates at rate ``q``, within the target ``epsilon`` at ``delta`` (:func:`noise_multiplier`);
a target no noise level can meet stops the run before it starts. The epsilon spent so far is a
function of (``sigma``, ``q``, updates) alone (:func:`spent_epsilon`), so a resumed run reports
it exactly.

Each row's gradient is its unit of privacy: a fake row generated beside it is scored in the same
unit (Opacus sums the per-sample gradients of the real and of the fake forward pass by index), so
every unit holds exactly one real row. That is also why PacGAN packing is refused: a packed unit
would hold ``pack`` real rows.

What the guarantee does not cover: the table encoding (column modes, category lists and their
frequencies) is fitted on the training rows without noise, as in DP-CTGAN; give the columns'
ranges and categories from public knowledge for an end-to-end guarantee.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator

import torch
from torch import nn

from ..config import PrivacyConfig
from ..errors import ConfigError

#: Renyi orders the RDP accountant tries (Opacus's defaults, extended upwards: short, noisy runs find
#: their tightest bound at high orders).
RDP_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [64, 80, 96, 128, 192, 256, 384, 512]
#: The smallest expected batch a private run accepts: an empty Poisson batch then has probability
#: below ``exp(-32)`` per update.
MIN_BATCH = 32


def _opacus() -> Any:
    try:
        import opacus
    except ImportError:
        raise ConfigError("train.privacy needs Opacus: pip install 'ganforge[privacy]'") from None
    return opacus


def spent_epsilon(sigma: float, sample_rate: float, updates: int, delta: float, accountant: str = "rdp") -> float:
    """Epsilon at ``delta`` after ``updates`` Poisson-sampled Gaussian updates (0 before any)."""
    if updates <= 0:
        return 0.0
    accountant_ = _opacus().accountants.create_accountant(accountant)
    accountant_.history = [(sigma, sample_rate, updates)]
    return float(accountant_.get_epsilon(delta, **_orders(accountant)))


def _orders(accountant: str) -> dict[str, Any]:
    return {"alphas": RDP_ORDERS} if accountant == "rdp" else {}


def noise_multiplier(cfg: PrivacyConfig, sample_rate: float, updates: int) -> float:
    """The smallest noise multiplier that keeps ``updates`` updates at ``sample_rate`` within ``cfg.epsilon``.

    Raises:
        ConfigError: no noise level meets the target (one line, with what to change).
    """
    utils = _opacus().accountants.utils
    assert cfg.epsilon is not None
    try:
        return float(utils.get_noise_multiplier(target_epsilon=cfg.epsilon, target_delta=cfg.delta, sample_rate=sample_rate,
                                                steps=updates, accountant=cfg.accountant, **_orders(cfg.accountant)))
    except ValueError as err:
        raise ConfigError(
            f"train.privacy.epsilon={cfg.epsilon} cannot be met at delta {cfg.delta} over {updates} critic updates "
            f"that each sample {sample_rate:.3g} of the rows ({err}); raise the epsilon or lower train.steps or train.batch_size"
        ) from None


class PrivateCritic:
    """DP-SGD on a critic: per-sample gradients, clipping and noise (Opacus), Poisson batches, the accounting.

    Args:
        critic: the critic (its layers get Opacus's per-sample gradient hooks; the module is unchanged).
        optimizer: the critic's optimizer; :attr:`optimizer` is it wrapped by Opacus's ``DPOptimizer``.
        cfg: ``train.privacy``.
        rows: training rows; batch_size: the expected batch; updates: every critic update of the run.
        generator: the stream of the noise and of the Poisson draws (checkpointed by the recipe).
    """

    def __init__(self, critic: nn.Module, optimizer: torch.optim.Optimizer, cfg: PrivacyConfig, *, rows: int, batch_size: int,
                 updates: int, generator: torch.Generator) -> None:
        if batch_size < MIN_BATCH:
            raise ConfigError(f"train.privacy needs train.batch_size >= {MIN_BATCH} (Poisson batches), got {batch_size}")
        opacus = _opacus()
        self.cfg, self.rows, self.batch_size, self.generator = cfg, rows, batch_size, generator
        self.sample_rate = batch_size / rows
        self.sigma = noise_multiplier(cfg, self.sample_rate, updates)
        self.hooks = opacus.GradSampleModule(critic)  # registers the per-sample hooks on critic's layers
        # Opacus's hooks are full backward hooks; torch warns when the critic's input needs no gradient (real rows)
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect to module outputs")
        self.optimizer = opacus.optimizers.DPOptimizer(
            optimizer, noise_multiplier=self.sigma, max_grad_norm=cfg.max_grad_norm, expected_batch_size=batch_size,
            loss_reduction="mean", generator=generator,
        )

    @contextlib.contextmanager
    def public(self) -> Iterator[None]:
        """Score through the critic without per-sample gradients (the generator's update)."""
        self.hooks.disable_hooks()
        try:
            yield
        finally:
            self.hooks.enable_hooks()

    def poisson_rows(self) -> torch.Tensor:
        """The indices of a Poisson batch: each row kept with probability ``q``."""
        picks = torch.nonzero(torch.rand(self.rows, generator=self.generator) < self.sample_rate)[:, 0]
        if not len(picks):  # probability below exp(-MIN_BATCH)
            raise ConfigError("train.privacy drew an empty batch: raise train.batch_size")
        return picks

    def epsilon(self, updates: int) -> float:
        """Epsilon spent after ``updates`` critic updates."""
        return spent_epsilon(self.sigma, self.sample_rate, updates, self.cfg.delta, self.cfg.accountant)

    def meta(self, updates: int) -> dict[str, Any]:
        """What the generator's metadata and the run's logs record of the guarantee."""
        return {"epsilon": self.epsilon(updates), "delta": self.cfg.delta, "target_epsilon": self.cfg.epsilon,
                "noise_multiplier": self.sigma, "max_grad_norm": self.cfg.max_grad_norm, "sample_rate": self.sample_rate,
                "critic_updates": updates, "accountant": self.cfg.accountant, "mechanism": "DP-SGD (Opacus) on the critic"}
