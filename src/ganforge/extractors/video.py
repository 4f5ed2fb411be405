"""The video classifier ``moving-digits``: a small 3-D CNN that tells a clip's digit and its direction of motion.

The video analogue of the ``digits`` and ``fsdd`` classifiers (I3D, whose features define the
published FVD, has no weights offline): its penultimate embedding gives the Fréchet video
distance and KID of video GANs, its digit logits the Inception Score and the per-label accuracy
of conditional runs, and its second head reads the direction of motion, so a metric in its
features sees motion as well as frames.

Input: uint8 clips ``[N, T, C, H, W]``. Preprocessing (:func:`preprocess_video`), the same in
training and evaluation: frames averaged to grey, resized to ``resolution`` (antialiased
bilinear), ``frames`` of them taken evenly over the clip (nearest index), scaled to [0, 1] and
normalised with the training clips' ``mean``/``std``; the network reads ``[N, 1, frames, R, R]``.

Network (:class:`VideoClassifierNet`): stages of 3x3x3 conv-BN-ReLU, 2x max-pooling in time and
space between them (space only once time is down to 1), global average pooling, an
``embed_dim`` embedding (the features), and one linear layer giving the digit logits followed by
the direction logits. Weights ship as ``weights/moving-digits.safetensors``
(``scripts/train_extractors.py moving-digits``), with both accuracies on fresh clips in its metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core import eval_mode
from ..data.video import DIRECTIONS
from .base import EXTRACTORS, INPUT_MODALITY, OWN_DATA, WEIGHT_CHECKS
from .classifier import CLASSIFIER_TYPES, ClassifierConfig, ClassifierExtractor, ClassifierNet, load_classifier, weights_path

#: Directions of motion the second head reads, in the moving-digits data set's order.
DIRECTION_NAMES = DIRECTIONS


@dataclass(frozen=True)
class VideoClassifierConfig(ClassifierConfig):
    """A :class:`ClassifierConfig` of a classifier of clips: ``frames`` read per clip, and a second head of directions."""

    frames: int = 16
    direction_names: tuple[str, ...] = DIRECTION_NAMES

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channels != 1:
            raise ValueError(f"the video classifier reads grey frames, got channels={self.channels}")

    @property
    def num_directions(self) -> int:
        return len(self.direction_names)


def _conv3d_bn_relu(c_in: int, c_out: int, stride: tuple[int, int, int]) -> list[nn.Module]:
    return [nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]


class VideoClassifierNet(ClassifierNet):
    """3-D CNN: ``[N, 1, T, R, R]`` -> embedding ``[N, embed_dim]`` and logits ``[N, num_classes + num_directions]``."""

    def __init__(self, config: VideoClassifierConfig) -> None:  # type: ignore[override]
        nn.Module.__init__(self)
        self.config = config
        layers: list[nn.Module] = []
        c_in, t = config.channels, config.frames
        for stage, (width, depth) in enumerate(zip(config.widths, config.depths)):
            if stage > 0:
                layers.append(nn.MaxPool3d((2 if t >= 2 else 1, 2, 2)))
                t = t // 2 if t >= 2 else t
            for _ in range(depth):
                stride = (1, config.stem_stride, config.stem_stride) if not layers else (1, 1, 1)
                layers += _conv3d_bn_relu(c_in, width, stride)
                c_in = width
        self.body = nn.Sequential(*layers)
        self.fused = False
        self.embed = nn.Linear(c_in, config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.embed_dim, config.num_classes + config.num_directions)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x).mean(dim=(2, 3, 4))  # global average pool over time and space
        embedding = F.relu(self.embed(h))
        return embedding, self.head(self.dropout(embedding))


def check_clips(clips: torch.Tensor, name: str = "video") -> None:
    """Raise ValueError unless ``clips`` are uint8 clips ``[N, T, 1|3, H, W]``."""
    if clips.dtype != torch.uint8 or clips.dim() != 5 or clips.shape[2] not in (1, 3):
        raise ValueError(f"{name} extractor expects uint8 clips [N, T, 1 or 3, H, W], got {clips.dtype} {tuple(clips.shape)}")


def preprocess_video(clips: torch.Tensor, config: VideoClassifierConfig) -> torch.Tensor:
    """uint8 clips ``[N, T, C, H, W]`` -> normalised float ``[N, 1, frames, R, R]`` (see the module docstring)."""
    n, t = clips.shape[:2]
    index = torch.linspace(0, t - 1, config.frames).round().long()
    x = clips[:, index].float().div_(255.0).mean(dim=2, keepdim=True)  # grey [N, F, 1, H, W]
    if tuple(x.shape[-2:]) != (config.resolution, config.resolution):
        x = F.interpolate(x.flatten(0, 1), size=(config.resolution, config.resolution), mode="bilinear",
                          align_corners=False, antialias=True).view(n, config.frames, 1, config.resolution, config.resolution)
    return ((x - config.mean[0]) / config.std[0]).transpose(1, 2).contiguous()


class VideoClassifierExtractor(ClassifierExtractor):
    """A :class:`VideoClassifierNet` as a feature extractor: uint8 clips in, embedding and digit logits out."""

    config_type = VideoClassifierConfig
    net_type = VideoClassifierNet
    memory_format = torch.contiguous_format
    config: VideoClassifierConfig

    def check_input(self, clips: torch.Tensor) -> None:
        check_clips(clips, self.name)

    def preprocess(self, clips: torch.Tensor) -> torch.Tensor:
        """See :func:`preprocess_video`."""
        return preprocess_video(clips, self.config)

    def head_logits(self, clips: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """Digit logits ``[N, 10]`` and direction logits ``[N, 8]`` of uint8 clips (batched, eval mode)."""
        check_clips(clips, self.name)
        parts = []
        with eval_mode(self), torch.inference_mode():
            for start in range(0, len(clips), batch_size):
                parts.append(self.net(self.preprocess(clips[start : start + batch_size].to(self.device)))[1].float().cpu())
        logits = torch.cat(parts) if parts else torch.zeros(0, self.num_logits + self.config.num_directions)
        return logits[:, : self.num_logits], logits[:, self.num_logits :]

    def predict_directions(self, clips: torch.Tensor) -> torch.Tensor:
        """The direction index ``int64 [N]`` (into :data:`DIRECTION_NAMES`) each clip is read to move in."""
        return self.head_logits(clips)[1].argmax(dim=1)


#: The ``moving-digits`` classifier: 16 frames of 32x32, four stages (16 -> 8 -> 4 -> 2 frames).
#: ``mean``/``std`` are filled in from the training clips by the training script.
MOVING_DIGITS_ARCHITECTURE = VideoClassifierConfig(
    name="moving-digits", channels=1, resolution=32, widths=(16, 32, 64, 128), depth=1, stem_stride=1, embed_dim=128,
    dropout=0.2, frames=16,
)

CLASSIFIER_TYPES["moving-digits"] = VideoClassifierExtractor
OWN_DATA["moving-digits"] = ("moving-digits",)
INPUT_MODALITY["moving-digits"] = "video"
WEIGHT_CHECKS["moving-digits"] = lambda weights: weights_path("moving-digits", weights)


@EXTRACTORS.register("moving-digits", help="3-D CNN classifier of moving digits (digit and direction; 128-d features, 10 logits)")
def moving_digits_classifier(weights: str | None = None) -> VideoClassifierExtractor:
    """Clip classifier for the ``moving-digits`` data set (grey, 16 frames read at 32x32)."""
    return load_classifier("moving-digits", weights)  # type: ignore[return-value]


__all__ = ["DIRECTION_NAMES", "MOVING_DIGITS_ARCHITECTURE", "VideoClassifierConfig", "VideoClassifierExtractor",
           "VideoClassifierNet", "preprocess_video"]
