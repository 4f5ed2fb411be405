"""LPIPS (Zhang et al., 2018): the learned perceptual distance between two images.

Both images go through AlexNet's five ReLU stages; at each stage the features are
unit-normalised along channels, their squared difference is weighted per channel by a
learnt non-negative vector ``w_l`` and averaged over space; the distance is the sum
over stages:

    d(x, y) = sum_l mean_hw || w_l * (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|) ||^2

The computation is the reference implementation's, the PyPI package ``lpips``
(``pip install lpips``, or ganforge's ``translation`` extra), version 0.1 with the
AlexNet backbone, the variant papers report. The package ships the small ``w_l``
weights; the AlexNet backbone is torchvision's published file, which the package would
download. ganforge never downloads it: it is read from ``$GANFORGE_LPIPS_ALEXNET_WEIGHTS``
or ``$GANFORGE_CACHE/weights/alexnet-owt-7be5be79.pth`` (or a path given here). Without
the package or the file, :func:`available` is False and :func:`load_lpips` raises a
one-line message saying what to install or download. Lower is more similar; 0 for equal
images.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..core import from_uint8
from ..errors import ConfigError
from ..extractors.base import WeightsFile

ALEXNET = WeightsFile(
    "AlexNet (for LPIPS)", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "GANFORGE_LPIPS_ALEXNET_WEIGHTS", option="load_lpips(weights=PATH)",
    without="or score without lpips",
)


def available() -> bool:
    """True when both the ``lpips`` package and the AlexNet weights file are present."""
    try:
        import lpips  # noqa: F401

        ALEXNET.default()
    except (ImportError, ConfigError):
        return False
    return True


def load_lpips(weights: str | Path | None = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The reference LPIPS network (AlexNet, v0.1) with the backbone read from ``weights``.

    Its forward takes two ``[N, 3, H, W]`` batches in [-1, 1] and returns ``[N, 1, 1, 1]``.
    """
    try:
        import lpips
    except ImportError:
        raise ConfigError("lpips needs the 'lpips' package: pip install lpips (or ganforge[translation])") from None
    state = ALEXNET.read(weights)
    with warnings.catch_warnings():  # the package calls torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    # The package splits ``alexnet().features`` into slices that keep the layers' indices.
    backbone = {name: param for name, param in model.net.named_parameters()}
    renamed = {f"{name.split('.', 1)[1]}": name for name in backbone}  # "3.weight" -> "slice2.3.weight"
    missing = [k for k in renamed if k not in state or state[k].shape != backbone[renamed[k]].shape]
    if missing:
        raise ConfigError(f"not an AlexNet features state dict: missing or misshapen {', '.join(missing[:4])}")
    with torch.no_grad():
        for key, name in renamed.items():
            backbone[name].copy_(state[key])
    return model.eval().requires_grad_(False).to(device)


def to_model_range(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (``[H, W]``, ``[H, W, 3]``, ``[N, H, W, 3]`` arrays or ``[N, 3, H, W]`` tensors) -> float [-1, 1] NCHW."""
    if isinstance(images, np.ndarray):  # channels last: [H, W], [H, W, C] or [N, H, W, C]
        x = torch.from_numpy(np.ascontiguousarray(images))
        x = x[..., None] if x.dim() == 2 else x
        images = (x[None] if x.dim() == 3 else x).permute(0, 3, 1, 2)
    tensor = from_uint8(images)
    if tensor.shape[1] == 1:
        tensor = tensor.expand(-1, 3, -1, -1)  # grey: the same plane in R, G and B
    return tensor


@torch.no_grad()
def lpips_distances(
    model: torch.nn.Module, a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, batch_size: int = 16
) -> torch.Tensor:
    """Per-image LPIPS between two uint8 image batches of equal shape (see :func:`to_model_range`)."""
    x, y = to_model_range(a), to_model_range(b)
    if x.shape != y.shape:
        raise ValueError(f"lpips compares images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    device = next(model.parameters()).device
    out = [model(x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)).flatten().cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).double()
