"""Learning-rate schedules: a pure function of the step, so a resumed run continues exactly.

``optim.lr_schedule`` names one of :data:`LR_SCHEDULES`; it scales both networks' learning
rates by ``factor(progress)``, where ``progress = step / train.steps`` and the decay starts
at ``optim.decay_start`` (a fraction of the run). CycleGAN's "constant, then linear to 0
over the second half" is ``lr_schedule: linear`` with ``decay_start: 0.5``.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from ..registry import Registry

LR_SCHEDULES: Registry = Registry("learning-rate schedule")


@LR_SCHEDULES.register("constant", help="the configured learning rates throughout")
def constant(t: float) -> float:
    return 1.0


@LR_SCHEDULES.register("linear", help="linear decay to 0 from optim.decay_start to the last step")
def linear(t: float) -> float:
    """``t`` in [0, 1] is the progress through the decay phase."""
    return 1.0 - t


@LR_SCHEDULES.register("cosine", help="half-cosine decay to 0 from optim.decay_start to the last step")
def cosine(t: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * t))


def lr_factor(schedule: str, step: int, total: int, decay_start: float = 0.5) -> float:
    """The multiplier of the base learning rates for the update that follows ``step`` done steps.

    Flat at 1 until ``decay_start * total`` steps, then ``LR_SCHEDULES[schedule]`` of the
    progress through the remaining steps (0 at the start of the decay, 1 at ``total``).
    """
    shape: Callable[[float], float] = LR_SCHEDULES.get(schedule)
    begin = decay_start * total
    if step <= begin or total <= begin:
        return shape(0.0)
    return shape(min(1.0, (step - begin) / (total - begin)))


def apply_lr_factor(optimizers: Iterable[torch.optim.Optimizer], factor: float) -> None:
    """Set every param group's ``lr`` to ``factor`` times its base rate (kept as ``initial_lr``)."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            base = group.setdefault("initial_lr", group["lr"])
            lr = base * factor
            if isinstance(group["lr"], torch.Tensor):  # a tensor lr (capturable optimizers) is set in place
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
