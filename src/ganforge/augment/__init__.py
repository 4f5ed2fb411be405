"""Differentiable augmentation of discriminator inputs (a registry): DiffAugment and ADA.

The recipe applies the same kind of augmentation to real and generated images before the
discriminator sees them (and inside the generator's update, so gradients flow through
it). Selected by the config's ``augment`` section::

    augment:
      name: diffaugment               # none | diffaugment | ada
      policy: color,translation,cutout  # diffaugment
      target: 0.6                     # ada: wanted E[sign(D(real))]
      speed_kimg: 100                 # ada: thousands of images for p to go 0 -> 1
"""

from __future__ import annotations

from typing import Any

import torch

from ..registry import Registry
from .ada import AdaptiveProbability, ada_augment
from .diffaugment import POLICIES, diff_augment, parse_policy

AUGMENTS: Registry = Registry("augmentation")


class Augmentation:
    """Base: the identity. ``observe`` sees each update's real logits; state is checkpointed."""

    def __init__(self, config: Any, generator: torch.Generator | None) -> None:
        self.config, self.generator = config, generator

    @property
    def enabled(self) -> bool:
        return False

    @property
    def p(self) -> float:
        return 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def observe(self, real_logits: torch.Tensor) -> None:
        """Called with the real logits of every discriminator update."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


AUGMENTS.add("none", Augmentation, help="no augmentation")


@AUGMENTS.register("diffaugment", aliases=("diffaug",), help="DiffAugment: colour, translation, cutout (Zhao et al.)")
class DiffAugment(Augmentation):
    """DiffAugment with the ops of ``augment.policy``, applied to every image (p = 1)."""

    def __init__(self, config: Any, generator: torch.Generator | None) -> None:
        super().__init__(config, generator)
        self.ops = parse_policy(config.policy)

    @property
    def enabled(self) -> bool:
        return bool(self.ops)

    @property
    def p(self) -> float:
        return 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.ops, self.generator)


@AUGMENTS.register("ada", help="adaptive discriminator augmentation: p steered by E[sign(D(real))] (Karras et al.)")
class ADA(Augmentation):
    """ADA's pipeline at an adaptive probability (fixed at ``augment.p`` when ``target`` is null)."""

    def __init__(self, config: Any, generator: torch.Generator | None) -> None:
        super().__init__(config, generator)
        self.controller = AdaptiveProbability(config.target or 0.0, config.speed_kimg, config.interval, config.p)
        self.adaptive = config.target is not None

    @property
    def enabled(self) -> bool:
        return True

    @property
    def p(self) -> float:
        return self.controller.p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ada_augment(x, self.controller.p, self.generator)

    def observe(self, real_logits: torch.Tensor) -> None:
        if self.adaptive:
            self.controller.observe(real_logits)

    def state_dict(self) -> dict[str, Any]:
        return self.controller.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state)


def create(config: Any, generator: torch.Generator | None = None) -> Augmentation:
    """The augmentation named by ``config.name`` (an ``AugmentConfig``)."""
    return AUGMENTS.get(config.name)(config, generator)


__all__ = ["ADA", "AUGMENTS", "POLICIES", "Augmentation", "DiffAugment", "ada_augment", "create", "diff_augment"]
