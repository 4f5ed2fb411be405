"""A real-vs-synthetic image detector for images that carry no provenance.

After Wang et al. (2020), "CNN-generated images are surprisingly easy to spot... for now": a
binary classifier trained on real photos against one generator's images, with blur and JPEG
augmentation so that it keys on traces that survive re-encoding rather than on the file
format, generalises to generators it never saw. Up-sampling layers (transposed convolutions,
nearest or bilinear up-sampling followed by convolutions) leave periodic traces that are easiest
to see in the Fourier domain (Durall et al. 2020, Frank et al. 2020): peaks at fractions of the
sampling rate and a distorted high-frequency fall-off. The network therefore reads each image
twice, through two small ResNet branches:

* the pixels, scaled to [-1, 1];
* their log-magnitude spectrum ``log(1 + |FFT2(x)|)`` per colour channel, shifted so the
  zero frequency sits in the middle and standardised per image (the spectrum's overall level
  says more about brightness than about origin).

The pooled features of both branches are concatenated into one logit: ``P(synthetic)``.

Images of any size are read as ``size``-pixel square crops taken *without resizing* (resizing
would blur the very traces the detector looks for): training takes random crops; scoring
averages the logits of up to ``max_crops`` crops spread over the image. Images smaller than
``size`` are enlarged (bilinear), which the report flags.

A detector file is one safetensors file: the weights, the config (JSON) and the training record
(folders, image counts, steps, validation AUC). Loading never unpickles anything.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from torch import nn

from ..core import atomic_write_bytes, eval_mode
from ..data.images import list_images
from ..errors import UserError
from ..extractors.base import file_sha256
from ..extractors.classifier import canonical_safetensors
from .verify import read_image

#: The ``kind`` a detector file's metadata names (files of other kinds are refused).
KIND = "ganforge-detector-1"


@dataclass(frozen=True)
class DetectorConfig:
    """Architecture and input of a detector (stored in its file).

    Attributes:
        size: side of the square crops the network reads, in pixels.
        widths: channels of each ResNet stage; every stage after the first halves the resolution.
        blocks: residual blocks per stage.
    """

    size: int = 32
    widths: tuple[int, ...] = (16, 32, 64)
    blocks: int = 1

    def __post_init__(self) -> None:
        if self.size < 8 or not self.widths or min(self.widths) < 1 or self.blocks < 1:
            raise ValueError(f"invalid detector config {self}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DetectorConfig:
        fields = json.loads(text)
        return cls(size=int(fields["size"]), widths=tuple(int(w) for w in fields["widths"]), blocks=int(fields["blocks"]))


def log_spectrum(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` images -> their centred log-magnitude spectra, standardised per image."""
    magnitude = torch.fft.fftshift(torch.fft.fft2(x.float(), norm="ortho"), dim=(-2, -1)).abs()
    spectrum = torch.log1p(magnitude)
    mean = spectrum.mean(dim=(1, 2, 3), keepdim=True)
    std = spectrum.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (spectrum - mean) / std


class ResidualBlock(nn.Module):
    """Two 3x3 convs with batch norm and a skip connection (1x1 projection where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


class Branch(nn.Module):
    """A small ResNet: a full-resolution stem (no early down-sampling: the traces are a pixel or
    two wide), then the stages, then global average pooling."""

    def __init__(self, channels: int, widths: Sequence[int], blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
        cin = widths[0]
        for i, width in enumerate(widths):
            for j in range(blocks):
                layers.append(ResidualBlock(cin, width, stride=2 if i > 0 and j == 0 else 1))
                cin = width
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


class DetectorNet(nn.Module):
    """Pixels and log spectrum through their own branches; one logit of ``P(synthetic)``."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        self.pixels = Branch(3, config.widths, config.blocks)
        self.spectrum = Branch(3, config.widths, config.blocks)
        self.head = nn.Linear(2 * config.widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, 3, size, size]`` in [-1, 1] -> logits ``[N]``."""
        features = torch.cat([self.pixels(x), self.spectrum(log_spectrum(x))], dim=1)
        return self.head(features).squeeze(1)


# ---------------------------------------------------------------------------------------------
# images -> crops


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W]``, ``[H, W, 1|3|4]`` -> ``[H, W, 3]`` (grey repeated, alpha dropped)."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3])


def fit(pixels: np.ndarray, size: int) -> np.ndarray:
    """An image at least ``size`` on each side: smaller ones are enlarged (bilinear), others kept."""
    h, w = pixels.shape[:2]
    if min(h, w) >= size:
        return pixels
    scale = size / min(h, w)
    shape = (max(size, round(w * scale)), max(size, round(h * scale)))
    return np.asarray(Image.fromarray(pixels).resize(shape, Image.Resampling.BILINEAR))


def crop_origins(h: int, w: int, size: int, max_crops: int) -> list[tuple[int, int]]:
    """Top-left corners of up to ``max_crops`` ``size`` crops spread evenly over an ``h x w`` image
    (one centred crop when ``max_crops`` is 1 or the image is ``size`` wide)."""
    per_side = max(1, math.isqrt(max_crops))
    rows = sorted({round(t) for t in np.linspace(0, h - size, min(per_side, h - size + 1))}) if per_side > 1 else [(h - size) // 2]
    cols = sorted({round(t) for t in np.linspace(0, w - size, min(per_side, w - size + 1))}) if per_side > 1 else [(w - size) // 2]
    return [(r, c) for r in rows for c in cols]


def to_tensor(crops: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 ``[size, size, 3]`` crops -> ``[N, 3, size, size]`` in [-1, 1]."""
    stacked = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    return stacked / 127.5 - 1


def augment(pixels: np.ndarray, rng: random.Random, prob: float) -> np.ndarray:
    """Wang et al.'s training augmentation: Gaussian blur (sigma ~ U[0, 3], scaled to the image:
    sigma relative to a 256-pixel side) and JPEG re-encoding (quality ~ U[30, 100]), each with
    probability ``prob``."""
    image = Image.fromarray(pixels)
    if rng.random() < prob:
        sigma = rng.uniform(0, 3) * min(image.size) / 256
        image = image.filter(ImageFilter.GaussianBlur(max(sigma, 0.25)))
    if rng.random() < prob:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(30, 100))
        image = Image.open(buffer).convert("RGB")
    return np.asarray(image)


def random_crop(pixels: np.ndarray, size: int, rng: random.Random) -> np.ndarray:
    h, w = pixels.shape[:2]
    top, left = rng.randint(0, h - size), rng.randint(0, w - size)
    crop = pixels[top:top + size, left:left + size]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


# ---------------------------------------------------------------------------------------------
# loading images and detector files


def read_pixels(path: Path, max_side: int | None = None) -> np.ndarray:
    """An image file as uint8 RGB ``[H, W, 3]`` (centre-cropped to ``max_side`` where larger: pixels are
    never resized); a one-line error for anything unreadable (:func:`~ganforge.safeguards.verify.read_image`'s)."""
    pixels = as_rgb(read_image(Path(path))[0])
    if max_side is not None:
        h, w = pixels.shape[:2]
        ch, cw = min(h, max_side), min(w, max_side)
        pixels = np.ascontiguousarray(pixels[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw])
    return pixels


def folder_images(folder: str | Path, what: str, limit: int | None = None) -> list[Path]:
    """The image files under ``folder`` (recursive), at most ``limit`` of them spread evenly."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"{what} folder not found: '{folder}'")
    files = list_images(folder)
    if not files:
        raise UserError(f"no images in the {what} folder '{folder}'")
    if limit is not None and len(files) > limit:
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return files


class Detector:
    """A trained detector: :meth:`probability` of images being synthetic."""

    def __init__(self, net: DetectorNet, record: dict[str, Any] | None = None, weights_id: str = "") -> None:
        self.net = net.eval()
        self.config = net.config
        self.record = record or {}
        self.weights_id = weights_id

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        """A detector file written by :func:`train_detector` (a one-line error for anything else)."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = Path(path).expanduser()
        if path.is_dir():
            path = path / "detector.safetensors"
        if not path.is_file():
            raise UserError(f"no detector at '{path}' (train one with: ganforge detect train --real DIR --fake DIR --out FILE)")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = dict(handle.metadata() or {})
            if metadata.get("kind") != KIND:
                raise ValueError(f"not a ganforge detector (kind {metadata.get('kind')!r})")
            net = DetectorNet(DetectorConfig.from_json(metadata["config"]))
            net.load_state_dict(load_file(str(path)))
        except (SafetensorError, OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise UserError(f"cannot read '{path}' as a detector ({reason})") from None
        return cls(net, json.loads(metadata.get("record", "{}")), file_sha256(path)[:8])

    def save(self, path: str | Path) -> Path:
        """Write the weights, config and training record to ``path`` (atomically)."""
        from safetensors.torch import save

        path = Path(path).expanduser()
        if path.is_dir():
            path = path / "detector.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.contiguous() for k, v in self.net.state_dict().items() if not k.endswith("num_batches_tracked")}
        metadata = {"kind": KIND, "config": self.config.to_json(), "record": json.dumps(self.record)}
        atomic_write_bytes(path, canonical_safetensors(save(tensors, metadata=metadata)))
        return path

    @torch.no_grad()
    def logits(self, images: Iterable[np.ndarray], max_crops: int = 9, batch_size: int = 256) -> np.ndarray:
        """The mean logit over up to ``max_crops`` crops of each uint8 image."""
        size = self.config.size
        crops: list[np.ndarray] = []
        owners: list[int] = []
        count = 0
        for index, image in enumerate(images):
            pixels = fit(as_rgb(image), size)
            for top, left in crop_origins(*pixels.shape[:2], size, max_crops):
                crops.append(pixels[top:top + size, left:left + size])
                owners.append(index)
            count = index + 1
        if not crops:
            return np.zeros(0)
        with eval_mode(self.net):
            out = torch.cat([self.net(to_tensor(crops[i:i + batch_size])) for i in range(0, len(crops), batch_size)])
        sums = np.bincount(owners, weights=out.double().numpy(), minlength=count)
        return sums / np.bincount(owners, minlength=count)

    def probability(self, images: Iterable[np.ndarray], max_crops: int = 9) -> np.ndarray:
        """``P(synthetic)`` of each uint8 image (``[H, W]`` or ``[H, W, C]``)."""
        return 1 / (1 + np.exp(-self.logits(images, max_crops)))

    def report(self, pixels: np.ndarray) -> dict[str, Any]:
        """What the detector says of one image: its probability, the verdict at 0.5, whether the image had to
        be enlarged, and which detector said it (``ganforge detect`` and ``ganforge verify --detector``)."""
        probability = float(self.probability([pixels])[0])
        return {"probability": probability, "synthetic": probability >= 0.5,
                "enlarged": min(pixels.shape[:2]) < self.config.size, "weights_id": self.weights_id}

    def score_file(self, path: str | Path) -> dict[str, Any]:
        """:meth:`report` of one image file, with its name."""
        return {"file": str(path), **self.report(read_pixels(Path(path)))}


# ---------------------------------------------------------------------------------------------
# training


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the chance a random synthetic image outscores a random real one)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores))


def train_detector(
    real: str | Path, fake: str | Path, *, steps: int = 2000, batch_size: int = 64, size: int | None = None,
    lr: float = 1e-3, augment_prob: float = 0.5, holdout: float = 0.1, max_images: int = 20_000, seed: int = 0,
    config: DetectorConfig | None = None, progress: bool = False,
) -> Detector:
    """Train a detector on the images under ``real`` against those under ``fake``.

    Every batch holds as many real as synthetic crops (so unequal folders need no weighting);
    ``holdout`` of each folder is kept aside and scored at the end (``record["val_auc"]``).
    ``size`` defaults to the smallest side among the images, at most 64. Images are held in memory,
    centre-cropped to ``max(256, 4 size)`` pixels a side where larger (their pixels never resized).
    """
    if not 0 <= augment_prob <= 1 or not 0 < holdout < 0.5 or steps < 1 or batch_size < 2:
        raise UserError("need steps >= 1, batch size >= 2, augment probability in [0, 1] and holdout in (0, 0.5)")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    sets = {}
    keep = max(256, 4 * (config.size if config else size or 64))
    for name, folder in (("real", real), ("fake", fake)):
        files = folder_images(folder, name, max_images)
        if len(files) < 10:
            raise UserError(f"the {name} folder '{folder}' holds {len(files)} images: give at least 10")
        sets[name] = [read_pixels(p, keep) for p in files]
    side = min(min(p.shape[:2]) for images in sets.values() for p in images)
    config = config or DetectorConfig(size=size or min(side, 64))
    split = {name: _split(images, holdout, rng) for name, images in sets.items()}
    train_sets = {name: [fit(p, config.size) for p in parts[0]] for name, parts in split.items()}
    net = DetectorNet(config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    half = batch_size // 2
    labels = torch.cat([torch.zeros(half), torch.ones(half)])
    bar = _progress(steps, progress)
    start, losses = time.perf_counter(), []
    net.train()
    for _ in range(steps):
        crops = [random_crop(augment(p, rng, augment_prob), config.size, rng)
                 for name in ("real", "fake") for p in rng.choices(train_sets[name], k=half)]
        loss = F.binary_cross_entropy_with_logits(net(to_tensor(crops)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    if bar is not None:
        bar.close()
    detector = Detector(net)
    val_real, val_fake = split["real"][1], split["fake"][1]
    scores = detector.logits(val_real + val_fake)
    truth = np.r_[np.zeros(len(val_real)), np.ones(len(val_fake))]
    detector.record = {
        "real": str(real), "fake": str(fake), "images": {k: len(v) for k, v in sets.items()},
        "holdout": {"real": len(val_real), "fake": len(val_fake)}, "steps": steps, "batch_size": batch_size,
        "lr": lr, "augment_prob": augment_prob, "seed": seed, "train_seconds": round(time.perf_counter() - start, 1),
        "final_loss": float(np.mean(losses[-50:])), "val_auc": roc_auc(truth, scores),
        "val_accuracy": float(((scores >= 0) == truth).mean()),
    }
    return detector


def _split(images: list[np.ndarray], holdout: float, rng: random.Random) -> tuple[list[np.ndarray], list[np.ndarray]]:
    order = list(range(len(images)))
    rng.shuffle(order)
    cut = max(1, round(len(images) * holdout))
    return [images[i] for i in order[cut:]], [images[i] for i in order[:cut]]


def _progress(steps: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc="detector", unit="step", dynamic_ncols=True)
