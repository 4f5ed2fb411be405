"""Regularizers of the discriminator (and generator), as pure functions plus a registry.

Each function takes ``score``, the discriminator as a callable ``x -> logits [N]`` (labels,
augmentation and packing already bound by the recipe), and the batch tensors it needs,
and returns a scalar penalty to *add* to the loss being minimised. The registry entry says
which side it regularises and which batch tensors it reads; a config names them:

    loss:
      regularizers:
        gp: {weight: 10}            # WGAN-GP
        r1: {weight: 10, every: 16} # R1 with lazy regularization (StyleGAN2)

``weight`` multiplies the penalty; with ``every: k`` the penalty is computed on every k-th
discriminator update only and multiplied by ``k``, which keeps its average strength while
saving most of its (double-backward) cost.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..config import MAX_WEIGHT, Range, coerce
from ..errors import ConfigError
from ..registry import Registry, did_you_mean

Score = Callable[[torch.Tensor], torch.Tensor]


def _grad_norm_sq(score: Score, x: torch.Tensor) -> torch.Tensor:
    """``||d score(x) / dx||^2`` per sample ``[N]``, with a graph for double backward."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(score(x).float().sum(), x, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(dim=1)


def gradient_penalty(score: Score, real: torch.Tensor, fake: torch.Tensor, *, center: float = 1.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., 2017): ``E[(||grad D(x_hat)|| - center)^2]``.

    ``x_hat = e * x + (1 - e) * G(z)`` with ``e ~ U[0, 1]`` per sample: the optimal critic
    has unit gradient norm on lines between real and generated points, so penalising
    deviations there enforces the 1-Lipschitz constraint softly (``center=0``: the
    zero-centred variant of Thanh-Tung et al.).
    """
    eps = torch.rand((len(real),) + (1,) * (real.dim() - 1), generator=generator, device=real.device, dtype=real.dtype)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    norm = (_grad_norm_sq(score, x_hat) + 1e-12).sqrt()
    return (norm - center).pow(2).mean()


def r1_penalty(score: Score, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): ``0.5 * E[||grad D(x)||^2]`` on real data.

    Penalising the gradient on the data makes the game locally convergent: it damps the
    rotation around the equilibrium that plain gradient descent-ascent keeps circling.
    (The config's ``weight`` is the paper's ``gamma``.)
    """
    return 0.5 * _grad_norm_sq(score, real).mean()


def r2_penalty(score: Score, fake: torch.Tensor) -> torch.Tensor:
    """R2: the same penalty on generated samples, ``0.5 * E[||grad D(G(z))||^2]``."""
    return 0.5 * _grad_norm_sq(score, fake).mean()


def dragan_penalty(score: Score, real: torch.Tensor, *, noise: float = 0.5,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """DRAGAN (Kodali et al., 2017): unit gradient norm *around the data*.

    Points ``x + noise * std(x) * u``, ``u ~ U[0, 1]``, are sampled near real samples and
    the gradient norm is pulled to 1 there, which removes the sharp local maxima of D that
    let the generator collapse onto a few real points.
    """
    std = real.detach().float().std().to(real.dtype)
    u = torch.rand(real.shape, generator=generator, device=real.device, dtype=real.dtype)
    x = real.detach() + noise * std * u
    norm = (_grad_norm_sq(score, x) + 1e-12).sqrt()
    return (norm - 1.0).pow(2).mean()


def consistency_penalty(score: Score, x: torch.Tensor, logits: torch.Tensor,
                        augment: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Consistency regularization (Zhang et al., 2020): ``E[(D(T(x)) - D(x))^2]``.

    The discriminator should give a sample and a semantics-preserving augmentation ``T`` of
    it the same score. ``logits`` are ``D(x)`` from the loss (not recomputed). Applied to
    real and generated samples, this is balanced consistency regularization (bCR).
    """
    return (score(augment(x.detach())).float() - logits.float()).pow(2).mean()


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Regularizer:
    """A registered penalty: its function, its side (``d`` or ``g``) and what it reads.

    ``inputs`` names the batch tensors passed as positional arguments after ``score``:
    ``real``, ``fake``, ``real_logits``, ``fake_logits``.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    side: str
    inputs: tuple[str, ...]
    description: str

    @functools.cached_property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The function's parameters, read once (the trainer asks at every update)."""
        return dict(inspect.signature(self.fn).parameters)

    def options(self) -> dict[str, inspect.Parameter]:
        """The function's keyword-only options (what the config may set besides weight/every)."""
        return {name: p for name, p in self.parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("generator", "augment")}


REGULARIZERS: Registry = Registry("regularizer")


def _add(name: str, fn: Callable[..., torch.Tensor], inputs: tuple[str, ...], description: str,
         side: str = "d", aliases: tuple[str, ...] = ()) -> None:
    REGULARIZERS.add(name, Regularizer(name, fn, side, inputs, description), aliases=aliases, help=description)


_add("gp", gradient_penalty, ("real", "fake"), "WGAN-GP gradient penalty on real/fake interpolates",
     aliases=("gradient-penalty", "wgan-gp"))
_add("r1", r1_penalty, ("real",), "R1: squared gradient norm on real data (weight = gamma)")
_add("r2", r2_penalty, ("fake",), "R2: squared gradient norm on generated data")
_add("dragan", dragan_penalty, ("real",), "DRAGAN: unit gradient norm in a noisy neighbourhood of the data")


def _bcr_real(score: Score, real: torch.Tensor, real_logits: torch.Tensor, *, augment: Any = None) -> torch.Tensor:
    return consistency_penalty(score, real, real_logits, augment)


def _bcr_fake(score: Score, fake: torch.Tensor, fake_logits: torch.Tensor, *, augment: Any = None) -> torch.Tensor:
    return consistency_penalty(score, fake, fake_logits, augment)


_add("bcr-real", _bcr_real, ("real", "real_logits"), "consistency regularization on real samples (bCR)", aliases=("cr",))
_add("bcr-fake", _bcr_fake, ("fake", "fake_logits"), "consistency regularization on generated samples (bCR)")

GENERIC_OPTIONS = {"weight": float, "every": int}
GENERIC_DEFAULTS = {"weight": 1.0, "every": 1}
#: The values of every numeric regularizer option, by name (checked by :func:`check_regularizers`).
OPTION_RANGES = {
    "weight": Range(0, MAX_WEIGHT),
    "every": Range(1, 10**6),
    "center": Range(0, 100),  # gp
    "noise": Range(0, 100),  # dragan
}


def _expand(options: Any) -> Any:
    """One penalty's options as written: None is ``{}``, a number is its weight (``gp: 10``)."""
    if options is None:
        return {}
    if isinstance(options, (int, float)) and not isinstance(options, bool):
        return {"weight": options}
    return options


def check_regularizers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Validate ``loss.regularizers`` (name -> options) and fill ``weight``/``every`` defaults."""
    if not isinstance(config, dict):
        raise ConfigError(f"config key 'loss.regularizers' must be a mapping of name -> options, got {config!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, options in config.items():
        reg = REGULARIZERS.get(str(name))
        options = _expand(options)
        if not isinstance(options, dict):
            raise ConfigError(f"config key 'loss.regularizers.{name}' must be a mapping of options or a weight")
        accepted = {**{k: p.annotation for k, p in reg.options().items()}, **GENERIC_OPTIONS}
        checked: dict[str, Any] = dict(GENERIC_DEFAULTS)
        for key, value in options.items():
            if key not in accepted:
                raise ConfigError(
                    f"unknown config key 'loss.regularizers.{name}.{key}'{did_you_mean(key, list(accepted))}"
                    f" (accepted: {', '.join(accepted)})"
                )
            hint = accepted[key]
            hint = {"float": float, "int": int, "str": str, "bool": bool}.get(hint, hint) if isinstance(hint, str) else hint
            checked[key] = coerce(value, hint, f"loss.regularizers.{name}.{key}", OPTION_RANGES.get(key))
        out[reg.name] = checked
    return out


def resolve_regularizers(config: dict[str, Any]) -> list[tuple[Regularizer, dict[str, Any]]]:
    """The penalties of an already checked ``loss.regularizers``, with ``weight``/``every`` defaults.

    Nothing is checked again (:func:`check_regularizers` did, in ``ganforge.validate``).
    """
    return [(REGULARIZERS.get(str(name)), {**GENERIC_DEFAULTS, **_expand(options)}) for name, options in config.items()]


__all__ = [
    "REGULARIZERS",
    "Regularizer",
    "check_regularizers",
    "consistency_penalty",
    "dragan_penalty",
    "gradient_penalty",
    "r1_penalty",
    "r2_penalty",
    "resolve_regularizers",
]
