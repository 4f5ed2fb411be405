"""VGG-19 features for perceptual (content) losses: SRGAN's and ESRGAN's feature space.

The network is torchvision's ``vgg19().features`` (same layer indices, so torchvision's
published state dict loads unchanged) cut after the chosen convolution, *before* its ReLU
as in ESRGAN (``conv5_4``; SRGAN used the activation after it). Inputs in the model range
[-1, 1] are mapped to [0, 1] and normalised with the ImageNet mean and std.

Weights are never downloaded by the library: they are read from (first that exists)

1. an explicit path (``recipe_options.content_weights``, ``--extractor-weights``);
2. ``$GANFORGE_VGG19_WEIGHTS``;
3. ``$GANFORGE_CACHE/weights/vgg19-dcbb9e9d.pth`` (default cache ``~/.cache/ganforge``),

as a PyTorch state dict (loaded with ``weights_only=True``) or safetensors; the keys may
carry the ``features.`` prefix of the full torchvision model. The published file is
:data:`WEIGHTS_URL` (its name carries the first 8 hex digits of its SHA-256, checked when
the file has that name). Without one, :func:`default_weights` raises a one-line
:class:`~ganforge.errors.ConfigError` saying how to get it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core import from_uint8
from ..errors import ConfigError, UserError
from .base import EXTRACTORS, FeatureExtractor, Features, WeightsFile, file_sha256

WEIGHTS_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
ENV_VAR = "GANFORGE_VGG19_WEIGHTS"

#: torchvision's VGG-19 configuration ("E"): channels of each 3x3 conv, "M" = 2x2 max pool.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_indices() -> dict[str, int]:
    """``{"conv1_1": 0, ..., "conv5_4": 34}``: names of the convolutions -> indices in ``features``."""
    names, index, block, conv = {}, 0, 1, 1
    for item in VGG19_LAYOUT:
        if item == "M":
            block, conv = block + 1, 1
            index += 1
        else:
            names[f"conv{block}_{conv}"] = index
            conv += 1
            index += 2  # conv + ReLU
    return names


def vgg19_features(layer: str = "conv5_4") -> nn.Sequential:
    """torchvision's ``vgg19().features`` up to and including convolution ``layer`` (no final ReLU)."""
    indices = conv_indices()
    if layer not in indices:
        raise ConfigError(f"unknown VGG-19 layer '{layer}' (available: {', '.join(indices)})")
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*layers[: indices[layer] + 1])


WEIGHTS = WeightsFile(
    "VGG-19", WEIGHTS_URL, ENV_VAR, option="recipe_options.content_weights=PATH",
    without="or train without the content loss (recipe_options.content_extractor=null)",
)


def cache_path() -> Path:
    return WEIGHTS.cache_path()


def default_weights() -> Path:
    """The VGG-19 weights file to use, or a one-line ConfigError telling how to get one."""
    return WEIGHTS.default()


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A VGG-19 ``features`` state dict from a ``.pth`` (weights only) or ``.safetensors`` file."""
    return WEIGHTS.read(path)


class VGG19Features(FeatureExtractor):
    """VGG-19 up to ``layer``: :meth:`feature_maps` for content losses, :meth:`extract` (pooled) for metrics.

    Args:
        weights: a weights file (see the module docstring); None: the default file.
        layer: the last convolution (``conv5_4``: ESRGAN's, before activation).
        random_init: keep torchvision's random initialisation instead (tests, plumbing).
    """

    name = "vgg19"

    def __init__(self, weights: str | Path | None = None, layer: str = "conv5_4", random_init: bool = False) -> None:
        super().__init__()
        self.features = vgg19_features(layer)
        self.layer = layer
        self.feature_dim = [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if random_init:
            self.weights_id = "random"
            return
        path = Path(weights).expanduser() if weights is not None else default_weights()
        state = read_weights(path)
        own = self.features.state_dict()
        missing = [k for k in own if k not in state or state[k].shape != own[k].shape]
        if missing:
            raise UserError(f"{path} is not a VGG-19 state dict: missing or misshapen {', '.join(missing[:4])}")
        self.features.load_state_dict({k: state[k] for k in own})
        self.weights_id = file_sha256(path)[:8]

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable features ``[N, c, H/16, W/16]`` (conv5_4) of images ``x`` in [-1, 1]."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((x + 1.0) * 0.5 - self.mean) / self.std
        return self.features(x)

    def extract(self, images: torch.Tensor) -> Features:
        """Pooled features ``[N, c]`` of uint8 images (at their own size)."""
        x = from_uint8(images)
        return Features(F.adaptive_avg_pool2d(self.feature_maps(x), 1).flatten(1))


@EXTRACTORS.register("vgg19", help="VGG-19 features to conv5_4 (content losses); weights file required, see ganforge.extractors.vgg")
def create_vgg19(weights: str | None = None) -> VGG19Features:
    return VGG19Features(weights)
