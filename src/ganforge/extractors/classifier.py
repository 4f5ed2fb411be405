"""Small CNN classifiers trained by the project, as feature extractors (``digits``, ``mnist``, ``cifar10``).

One network class, :class:`ClassifierNet`, configured per data set by a
:class:`ClassifierConfig`: a VGG-style stack of 3x3 conv + BatchNorm + ReLU stages with
max-pooling between them (optionally a stride-2 first conv), global average pooling, an
``embed_dim`` embedding (the *features*) and a linear class head (the *logits*).

Each extractor owns its preprocessing (:meth:`ClassifierExtractor.preprocess`): uint8 images
of any size with 1 or 3 channels are converted to the network's channels (RGB -> grey by
the channel mean, grey -> RGB by repetition), resized to its native resolution with
antialiased bilinear interpolation, and normalised with the training set's mean and std.
The training script (``scripts/train_extractors.py``) trains on exactly this function.

Weights ship in the package as ``weights/<name>.safetensors``. A file is self-describing:
its metadata holds the network config (``config``, JSON) and the training record
(accuracy, data, epochs, seed, command); ``weights_id`` is the first 8 hex digits of the
file's sha256, so cached reference statistics change when the weights do.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core import atomic_write_bytes, eval_mode
from ..errors import UserError
from .base import EXTRACTORS, OWN_DATA, FeatureExtractor, Features, file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and preprocessing of one classifier (stored in its weights file).

    Attributes:
        name: the extractor name (``digits``, ``mnist``, ``cifar10``).
        channels: channels the network reads: 1 (grey) or 3 (RGB).
        resolution: native square side; inputs are resized to it.
        num_classes: size of the class head.
        widths: channels of each stage; the resolution halves between stages.
        depth: 3x3 conv layers per stage (one number for all stages, or one per stage).
        stem_stride: stride of the very first conv (2 halves the resolution at once, which
            is much cheaper than a full-resolution conv followed by pooling).
        embed_dim: size of the penultimate embedding returned as ``features``.
        dropout: dropout before the class head (training only).
        mean: per-channel mean of the training images in [0, 1] (after channel conversion).
        std: per-channel std of the training images in [0, 1].
        class_names: a name per class index.
    """

    name: str
    channels: int
    resolution: int
    num_classes: int = 10
    widths: tuple[int, ...] = (32, 64, 128)
    depth: int | tuple[int, ...] = 2
    stem_stride: int = 1
    embed_dim: int = 128
    dropout: float = 0.0
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    class_names: tuple[str, ...] = tuple(str(d) for d in range(10))

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need {self.channels} values, got {self.mean} and {self.std}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        depths = self.depth if isinstance(self.depth, tuple) else (self.depth,) * len(self.widths)
        if not self.widths or len(depths) != len(self.widths) or min(depths) < 1:
            raise ValueError(f"bad stage widths {self.widths} / depths {self.depth}")

    @property
    def depths(self) -> tuple[int, ...]:
        """Conv layers of each stage."""
        return self.depth if isinstance(self.depth, tuple) else (self.depth,) * len(self.widths)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ClassifierConfig":
        raw = json.loads(text)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - fields
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()})  # JSON lists: tuples


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    # No conv bias: the BatchNorm shift that follows makes it redundant.
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class ClassifierNet(nn.Module):
    """VGG-style CNN: ``len(widths)`` stages of ``depth`` conv-BN-ReLU, 2x2 max-pool between.

    The first conv has stride ``stem_stride``; the last stage is averaged over space.

    ``forward`` takes normalised float images ``[N, channels, R, R]`` and returns the
    embedding ``[N, embed_dim]`` (after ReLU) and the logits ``[N, num_classes]``.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.channels
        for stage, (width, depth) in enumerate(zip(config.widths, config.depths)):
            if stage > 0:
                layers.append(nn.MaxPool2d(2))
            for _ in range(depth):
                layers += _conv_bn_relu(c_in, width, config.stem_stride if not layers else 1)
                c_in = width
        self.body = nn.Sequential(*layers)
        self.fused = False  # True once BatchNorm is folded into the convs (inference only)
        self.embed = nn.Linear(c_in, config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.embed_dim, config.num_classes)

    def fuse_batchnorm(self) -> "ClassifierNet":
        """Fold every eval-mode BatchNorm into the conv before it (inference only, in place).

        ``BN(conv(x)) = gamma * (W x - mu) / sqrt(var + eps) + beta`` is again a conv, with
        weights ``W * s`` and bias ``beta - mu * s`` where ``s = gamma / sqrt(var + eps)``:
        one pass over the activations less per layer, the same outputs up to rounding.
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        if self.training:
            raise RuntimeError("fuse_batchnorm needs eval mode (it uses the running statistics)")
        layers = list(self.body)
        for i in range(len(layers) - 1):
            if isinstance(layers[i], (nn.Conv2d, nn.Conv3d)) and isinstance(layers[i + 1], (nn.BatchNorm2d, nn.BatchNorm3d)):
                layers[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                layers[i + 1] = nn.Identity()
        self.body = nn.Sequential(*layers)
        self.fused = True
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x).mean(dim=(2, 3))  # global average pool: [N, widths[-1]]
        embedding = F.relu(self.embed(h))  # [N, embed_dim]
        return embedding, self.head(self.dropout(embedding))


def preprocess(images: torch.Tensor, config: ClassifierConfig) -> torch.Tensor:
    """uint8 ``[N, 1|3, H, W]`` -> normalised float ``[N, config.channels, R, R]``.

    Channel conversion: RGB -> grey is the plain mean of R, G, B (the grey classifiers were
    trained on grey digits, so any colour tint is ignored); grey -> RGB repeats the channel.
    Resizing is bilinear with an antialiasing kernel when shrinking (a box-like prefilter,
    as PIL does), plain bilinear when enlarging. Non-square inputs are stretched.
    """
    return normalise(images.float().div_(255.0), config)


def normalise(x: torch.Tensor, config: ClassifierConfig) -> torch.Tensor:
    """Float images ``[N, 1|3, H, W]`` in [0, 1] -> the network's input (as :func:`preprocess`; differentiable)."""
    have = x.shape[1]
    if have == 3 and config.channels == 1:
        x = x.mean(dim=1, keepdim=True)
    elif have == 1 and config.channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[-2:]) != (config.resolution, config.resolution):
        size = (config.resolution, config.resolution)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(config.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(config.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


class ClassifierExtractor(FeatureExtractor):
    """A trained :class:`ClassifierNet` as a :class:`FeatureExtractor` (embedding + logits).

    Subclasses for other inputs (:class:`~ganforge.extractors.audio.AudioClassifierExtractor`)
    set :attr:`config_type` and override :meth:`preprocess`, :meth:`check_input` and
    :meth:`background`; :func:`load_classifier` builds the class :data:`CLASSIFIER_TYPES` names.
    """

    #: The config class its weights files hold, and the network class it builds.
    config_type: type[ClassifierConfig] = ClassifierConfig
    net_type: type[ClassifierNet] = ClassifierNet
    #: The memory layout of the network's weights (channels-last for 2-D convolutions).
    memory_format: torch.memory_format = torch.channels_last

    def __init__(self, config: ClassifierConfig, weights_id: str = "random") -> None:
        super().__init__()
        self.config = config
        self.name = config.name
        self.feature_dim = config.embed_dim
        self.num_logits = config.num_classes
        self.class_names = tuple(config.class_names)
        self.weights_id = weights_id
        self.net = self.net_type(config).to(memory_format=self.memory_format)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """See :func:`preprocess`."""
        return preprocess(images, self.config)

    def background(self) -> float:
        """The network input of an empty sample (a black pixel, normalised): what shifted-in cells hold."""
        return -self.config.mean[0] / self.config.std[0]

    def extract(self, images: torch.Tensor) -> Features:
        with torch.inference_mode():
            embedding, logits = self.net(self.preprocess(images))
        return Features(embedding.float(), logits[:, : self.num_logits].float())

    def predict(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Predicted class index ``int64 [N]`` of ``images`` (what :meth:`forward` reads; batched, eval mode)."""
        with eval_mode(self):
            parts = [
                self(images[start : start + batch_size].to(self.device)).logits.argmax(dim=1).cpu()
                for start in range(0, len(images), batch_size)
            ]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


# --------------------------------------------------------------------------- weights files


#: Classifier name -> its extractor class, where that is not :class:`ClassifierExtractor` (the
#: ``fsdd`` classifier reads audio clips; :mod:`ganforge.extractors.audio` registers it).
CLASSIFIER_TYPES: dict[str, type[ClassifierExtractor]] = {}


def default_weights(name: str) -> Path:
    """Path of the weights shipped for classifier ``name``."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def save_classifier(
    path: str | Path, net: ClassifierNet, metadata: dict[str, Any], *, dtype: torch.dtype = torch.float32
) -> str:
    """Write ``net``'s weights (floating tensors as ``dtype``) with its config and ``metadata``.

    Metadata values that are not strings are stored as JSON. Returns the file's sha256.
    """
    from safetensors.torch import save

    if net.fused:
        raise ValueError("cannot save a network whose BatchNorm was fused; load it with fuse=False")
    tensors = {
        key: (value.to(dtype) if value.is_floating_point() else value).contiguous()
        for key, value in net.state_dict().items()
        if not key.endswith("num_batches_tracked")  # training bookkeeping, not weights
    }
    meta = {key: value if isinstance(value, str) else json.dumps(value) for key, value in metadata.items()}
    meta["config"] = net.config.to_json()
    atomic_write_bytes(path, canonical_safetensors(save(tensors, metadata=meta)))  # never half a file
    return file_sha256(path)


def canonical_safetensors(raw: bytes) -> bytes:
    """The same safetensors file with its JSON header keys sorted.

    safetensors writes the metadata in hash-map order, which changes from run to run; sorting
    makes identical weights and metadata give identical bytes (and so the same
    ``weights_id``). Layout: 8-byte little-endian header size, JSON header padded with
    spaces to a multiple of 8, then the tensor data, whose offsets the reordering keeps.
    """
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + raw[8 + size :]


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a classifier weights file (``config``, ``accuracy``, ...)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def weights_path(name: str, weights: str | Path | None = None) -> Path:
    """The weights file of classifier ``name`` (``weights``, else the shipped one), or a one-line UserError."""
    path = Path(weights).expanduser() if weights is not None else default_weights(name)
    if not path.is_file():
        hint = "" if weights is not None else " (the package was installed without its weights; reinstall ganforge)"
        raise UserError(f"weights file for the '{name}' classifier not found: '{path}'{hint}")
    return path


def load_classifier(name: str, weights: str | Path | None = None, *, fuse: bool = True) -> ClassifierExtractor:
    """Build classifier extractor ``name`` from ``weights`` (default: the shipped file).

    With ``fuse`` (the default) BatchNorm is folded into the convs for faster inference;
    ``fuse=False`` keeps the training-time modules (to fine-tune or re-save the network).

    Raises:
        UserError: the file is missing, is not a readable safetensors file, or holds weights
            of another classifier or architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = weights_path(name, weights)
    kind = CLASSIFIER_TYPES.get(name, ClassifierExtractor)
    try:
        metadata = read_metadata(path)
        state = load_file(str(path))
        config = kind.config_type.from_json(metadata["config"])
        if config.name == name:
            extractor = kind(config, weights_id=file_sha256(path)[:8])
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot read '{path}' as '{name}' classifier weights ({reason})") from None
    if config.name != name:
        raise UserError(f"'{path}' holds weights of the '{config.name}' classifier, not '{name}'")
    try:
        extractor.net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        missing, unexpected = _state_mismatch(extractor.net, state)
    except RuntimeError as err:  # shape mismatch
        reason = (str(err).strip().splitlines() or ["shape mismatch"])[-1].strip()
        raise UserError(f"'{path}' does not match the '{name}' classifier's architecture ({reason})") from None
    if missing or unexpected:
        raise UserError(
            f"'{path}' does not match the '{name}' classifier's architecture "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    extractor.eval().requires_grad_(False)
    if fuse:
        extractor.net.fuse_batchnorm()
    return extractor


def _state_mismatch(net: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    expected = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    return sorted(expected - set(state)), sorted(set(state) - expected)


# --------------------------------------------------------------------------- registered classifiers

# The architectures of the shipped classifiers. ``scripts/train_extractors.py`` trains them,
# filling in ``mean``/``std`` from the training data, and stores the final config in each
# weights file, which is what :func:`load_classifier` builds from.
ARCHITECTURES: dict[str, ClassifierConfig] = {
    "digits": ClassifierConfig(
        name="digits", channels=1, resolution=32, widths=(32, 64, 128), depth=1, stem_stride=2, embed_dim=128,
        dropout=0.2,
    ),
    "mnist": ClassifierConfig(
        name="mnist", channels=1, resolution=32, widths=(32, 64, 128), depth=1, stem_stride=2, embed_dim=128,
        dropout=0.2,
    ),
    "cifar10": ClassifierConfig(
        name="cifar10", channels=3, resolution=32, widths=(32, 64, 128), depth=(1, 2, 2), embed_dim=256, dropout=0.2,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    ),
}

# Each classifier scores only the data set it was trained on, which has its name.
OWN_DATA.update({name: (name,) for name in ARCHITECTURES})


@EXTRACTORS.register("digits", help="CNN classifier trained on scikit-learn's 8x8 digits (128-d features, 10 logits)")
def digits_classifier(weights: str | None = None) -> ClassifierExtractor:
    """Digit classifier for the ``digits`` data set (grey, read at 32x32)."""
    return load_classifier("digits", weights)


@EXTRACTORS.register("mnist", help="CNN classifier trained on MNIST (128-d features, 10 logits)")
def mnist_classifier(weights: str | None = None) -> ClassifierExtractor:
    """Digit classifier for MNIST (grey, read at 32x32); also counts Stacked MNIST modes."""
    return load_classifier("mnist", weights)


@EXTRACTORS.register("cifar10", help="CNN classifier trained on CIFAR-10 (256-d features, 10 logits)")
def cifar10_classifier(weights: str | None = None) -> ClassifierExtractor:
    """Object classifier for CIFAR-10 (RGB, read at 32x32)."""
    return load_classifier("cifar10", weights)


# --------------------------------------------------------------------------- Stacked MNIST


def stacked_mnist_labels(
    images: torch.Tensor, extractor: ClassifierExtractor | None = None, *, batch_size: int = 1000
) -> torch.Tensor:
    """Stacked MNIST class ``100 * d_R + 10 * d_G + d_B`` (0..999) of uint8 ``images [N, 3, H, W]``.

    Each channel is classified on its own as a grey digit by the ``mnist`` classifier
    (or ``extractor``).
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"Stacked MNIST images must be uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
    if extractor is None:
        extractor = load_classifier("mnist")
    n = images.shape[0]
    # [N, 3, H, W] -> [3N, 1, H, W]: row 3i + c is channel c of image i.
    digits = extractor.predict(images.reshape(n * 3, 1, *images.shape[-2:]), batch_size=batch_size * 3)
    digits = digits.view(n, 3)
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
