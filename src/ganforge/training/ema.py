"""Exponential moving average of generator weights (Karras et al.; Yazıcı et al., 2019).

Averaging the generator's weights over the last ~1/(1 - decay) steps smooths out the
oscillations of the adversarial game and usually gives visibly better samples.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..core import eval_mode


class EMA:
    """``ema = decay * ema + (1 - decay) * weights`` after every generator step.

    Before ``start`` (and when ``decay == 0``) the average is a plain copy. Early on the
    decay ramps up as ``min(decay, (1 + t) / (10 + t))`` with ``t`` the steps since ``start``
    (as in TensorFlow's ``ExponentialMovingAverage``), so the average does not drag the
    random initial weights along for thousands of steps. Buffers such as BatchNorm
    running statistics are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float, start: int = 0) -> None:
        self.decay, self.start = decay, start
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        if step < self.start or self.decay == 0.0:
            torch._foreach_copy_(ema_params, params)
        else:
            t = step - self.start
            decay = min(self.decay, (1.0 + t) / (10.0 + t))
            # lerp(ema, w, 1 - decay) = decay * ema + (1 - decay) * w, in one fused kernel.
            torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)


@torch.no_grad()
def standing_stats(generator: nn.Module, latents: list[tuple[torch.Tensor | None, ...]]) -> None:
    """Re-estimate BatchNorm running statistics for ``generator``'s own weights (BigGAN).

    EMA weights never ran forward during training, so the running statistics copied from
    the live generator do not match them; averaging batch statistics over a few batches
    of the EMA generator's own activations fixes that. No-op without BatchNorm. Dropout
    stays off meanwhile (as at test time), so the statistics are those the network meets
    in evaluation and no random state is used.

    Args:
        generator: the network (its BatchNorm layers are updated in place).
        latents: argument tuples, ``generator(*args)`` for each: ``(z, labels)`` for latent
            generators, ``(source,)`` for translators.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    with eval_mode(generator, training=True):
        for m in generator.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        for args in latents:
            generator(*args)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
