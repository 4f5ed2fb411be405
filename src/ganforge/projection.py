"""Projection: the latent whose output best matches a real image (``ganforge project``).

For every target image ``x`` the latent ``v`` is found by gradient descent on

    L(v) = mean((G(v) - x)^2) + lambda_p * P(G(v), x) + lambda_z * prior(v) + lambda_n * R(noise)

* the space of ``v`` (``space``): ``z`` (any generator; ``prior`` keeps ``z`` near the shell
  ``|z|^2 = dim`` where the Gaussian's mass is), ``w`` (StyleGAN: one mapped latent for every
  layer, started from the mean ``w``) or ``w+`` (StyleGAN: one ``w`` per layer, the most
  expressive and the least faithful to the learnt distribution);
* ``P`` is a perceptual distance: LPIPS where its package and AlexNet weights are present, else
  the run's own digit/object classifier (channel-normalised activations of every stage of
  :mod:`ganforge.extractors.classifier`, LPIPS's recipe without the learnt weights), else none;
* StyleGAN's per-layer noise maps are optimised too, with the regulariser of Karras et al. 2020
  (``R``: squared autocorrelation at one-pixel shifts over a pyramid of the maps, which keeps them
  noise and stops them from painting the image), renormalised after every step.

``z`` starts from the best of :data:`Z_CANDIDATES` seeded draws per image, the learning rate ramps
down by a cosine, and the whole run is a function of ``seed``: the same images and seed give the
same latents. Conditional generators project with a given label, or with the class whose short
projection fits best.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .core import atomic_write_text, eval_mode, from_uint8, to_uint8
from .data.images import decode_image
from .editing import styled
from .errors import UserError
from .extractors.base import OWN_DATA
from .extractors.classifier import ClassifierExtractor, load_classifier, normalise
from .interpolation import to_pil_frames, write_gif
from .metrics import lpips as lpips_metric
from .models import Generator
from .models.base import seeded_latents
from .rundir import RunDir
from .safeguards import watermark
from .sampling import provenance
from .viz import save_png

SPACES = ("z", "w", "w+")
#: Random ``z`` drawn per image; projection starts from the one that fits best.
Z_CANDIDATES = 64
#: ``w`` samples whose mean starts ``w`` / ``w+`` projection.
W_SAMPLES = 1000
#: Side LPIPS reads images at, at least (AlexNet's first stages need room).
LPIPS_MIN_SIDE = 64

#: A perceptual distance: two image batches in [-1, 1] -> one value per image.
Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ProjectOptions:
    """How :func:`project` searches (see the module docstring)."""

    space: str = "z"
    steps: int = 300
    lr: float | None = None  # None: 0.05 for z, 0.1 for w / w+
    perceptual: str = "auto"  # auto | lpips | classifier:<name> | none
    perceptual_weight: float = 1.0
    prior_weight: float = 1e-3  # z only
    noise_weight: float = 1e5  # StyleGAN noise maps only
    seed: int = 0
    frames: int = 24  # reconstructions kept for the GIF of the optimisation
    label: int | None = None  # conditional generators: None = the best-fitting class
    encoder: nn.Module | None = None  # starts the search at encoder(image) instead of the best random latents


@dataclass
class Projection:
    """What :func:`project` found, per target image.

    Attributes:
        latents: ``[N, latent_dim]`` (z), ``[N, w_dim]`` (w) or ``[N, num_ws, w_dim]`` (w+).
        images: the reconstructions ``[N, C, H, W]`` in [-1, 1].
        losses: the objective per step and image ``[steps, N]``.
        frames: reconstructions along the way (``[N, C, H, W]`` each), for the GIF.
        labels: the class each image was projected with (conditional generators).
        noise: StyleGAN's optimised noise maps by module name (None for other generators).
        perceptual: the distance used (``lpips``, ``classifier:mnist``, ``none``).
    """

    latents: torch.Tensor
    space: str
    images: torch.Tensor
    losses: torch.Tensor
    frames: list[torch.Tensor] = field(default_factory=list)
    labels: torch.Tensor | None = None
    noise: dict[str, torch.Tensor] | None = None
    perceptual: str = "none"


# --------------------------------------------------------------------------- distances


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of two batches in [-1, 1] (peak-to-peak 2)."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


def classifier_distance(extractor: ClassifierExtractor) -> Distance:
    """LPIPS's recipe on a classifier's stages: channel-normalised activations after every ReLU, squared
    differences averaged over space, summed over stages (no learnt per-channel weights)."""
    net = extractor.net.eval().requires_grad_(False)

    def stages(x: torch.Tensor) -> list[torch.Tensor]:
        h, out = normalise((x.float() + 1) / 2, extractor.config), []
        for layer in net.body:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-8))
        return out

    def distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum((a - b).pow(2).sum(1).mean((1, 2)) for a, b in zip(stages(x), stages(y)))  # type: ignore[return-value]

    return distance


def lpips_distance(model: nn.Module) -> Distance:
    """LPIPS (AlexNet) on images in [-1, 1]: grey repeated to RGB, small images enlarged to :data:`LPIPS_MIN_SIDE`."""

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        side = x.shape[-1]
        return F.interpolate(x, scale_factor=math.ceil(LPIPS_MIN_SIDE / side), mode="bilinear") if side < LPIPS_MIN_SIDE else x

    return lambda x, y: model(prepare(x.float()), prepare(y.float())).flatten()


def perceptual_distance(choice: str, data: str | None, device: torch.device) -> tuple[str, Distance | None]:
    """The distance ``choice`` names (``auto``: LPIPS if present, else the classifier of ``data``, else none)."""
    if choice == "none":
        return "none", None
    if choice == "lpips" or (choice == "auto" and lpips_metric.available()):
        return "lpips", lpips_distance(lpips_metric.load_lpips(device=device))
    name = choice.split(":", 1)[1] if choice.startswith("classifier:") else None
    if name is None and choice == "auto":
        name = next((n for n, own in OWN_DATA.items() if data in own and n in ("digits", "mnist", "cifar10")), None)
        if name is None:
            return "none", None
    if name is None:
        raise UserError(f"--perceptual is auto, lpips, classifier:NAME (digits, mnist, cifar10) or none, got '{choice}'")
    return f"classifier:{name}", classifier_distance(load_classifier(name).to(device))


def noise_regularization(maps: list[torch.Tensor]) -> torch.Tensor:
    """Karras et al. 2020's noise regulariser: squared autocorrelation at one-pixel shifts (both axes) of each
    map, over a pyramid that halves it down to 8x8; 0 for white noise."""
    total = maps[0].new_zeros(())
    for noise in maps:
        n = noise
        while True:
            total = total + (n * torch.roll(n, 1, dims=3)).mean().pow(2) + (n * torch.roll(n, 1, dims=2)).mean().pow(2)
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return total


# --------------------------------------------------------------------------- projection


def learning_rate_ramp(t: float, up: float = 0.05, down: float = 0.25) -> float:
    """The rate's factor at fraction ``t`` of the steps: a linear ramp-up over the first ``up``, a cosine ramp-down
    over the last ``down`` (Karras et al. 2020's projector)."""
    ramp = min(1.0, (1.0 - t) / down)
    return (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / up)


def _noise_modules(generator: Generator) -> dict[str, nn.Module]:
    return {name: m for name, m in generator.named_modules() if hasattr(m, "fixed_noise")}


def project(generator: Generator, targets: torch.Tensor, options: ProjectOptions | None = None, *,
            data: str | None = None, progress: Callable[[int], None] | None = None) -> Projection:
    """Project ``targets`` (float ``[N, C, H, W]`` in [-1, 1], the generator's shape) into its latent space.

    Args:
        data: the data set the generator learnt (picks the classifier of ``perceptual="auto"``).
        progress: called with each finished step.

    Raises:
        UserError: an unknown space, a space the generator lacks, or targets of another shape.
    """
    o = options or ProjectOptions()
    if o.space not in SPACES:
        raise UserError(f"--space is one of {', '.join(SPACES)}, got '{o.space}'")
    if o.space != "z" and not styled(generator):
        raise UserError(f"--space {o.space} needs a StyleGAN run (a mapping network); this generator projects in z")
    shape = tuple(generator.output_shape) if hasattr(generator, "output_shape") else None
    if shape is not None and tuple(targets.shape[1:]) != shape:
        raise UserError(f"the images must be {shape} for this generator, got {tuple(targets.shape[1:])}")
    device = generator.device
    targets = targets.to(device).float()
    name, distance = perceptual_distance(o.perceptual, data, device)
    with eval_mode(generator):
        generator.requires_grad_(False)
        try:
            labels = _labels(generator, targets, o, distance)
            return _search(generator, targets, labels, o, name, distance, progress)
        finally:
            generator.requires_grad_(True)


def _labels(generator: Generator, targets: torch.Tensor, o: ProjectOptions, distance: Distance | None) -> torch.Tensor | None:
    """The class of each target: the given label, else the one whose short projection fits best."""
    if not generator.num_classes:
        if o.label is not None:
            raise UserError("this generator is unconditional: it projects without --label")
        return None
    n = len(targets)
    if o.label is not None:
        return generator.check_labels(torch.tensor(o.label), n)
    short = ProjectOptions(**{**o.__dict__, "steps": max(10, o.steps // 10), "frames": 0})
    fits = torch.stack([_search(generator, targets, torch.full((n,), k, dtype=torch.long, device=targets.device),
                                short, "", distance, None).losses[-1] for k in range(generator.num_classes)])
    return fits.argmin(dim=0)


def _search(generator: Generator, targets: torch.Tensor, labels: torch.Tensor | None, o: ProjectOptions, name: str,
            distance: Distance | None, progress: Callable[[int], None] | None) -> Projection:
    n, device = len(targets), targets.device
    rng = torch.Generator().manual_seed(o.seed)

    def objective(images: torch.Tensor) -> torch.Tensor:
        loss = (images.float() - targets).pow(2).flatten(1).mean(1)
        if distance is not None and o.perceptual_weight:
            loss = loss + o.perceptual_weight * distance(images, targets)
        return loss

    styled = o.space != "z"
    if o.encoder is not None:
        with torch.no_grad():
            start = o.encoder.to(device).eval()(targets)
        if o.space == "w+":
            start = start[:, None].expand(-1, generator.num_ws, -1)  # type: ignore[attr-defined]
        latent = start.clone().requires_grad_(True)
    elif styled:
        z = torch.randn(W_SAMPLES, generator.latent_dim, generator=rng).to(device)
        sample_labels = None if labels is None else labels.repeat(W_SAMPLES // n + 1)[:W_SAMPLES]
        with torch.no_grad():
            w_mean = generator.styles(z, sample_labels, 1.0)[:, 0].mean(0)  # type: ignore[operator]
        num_ws = generator.num_ws  # type: ignore[attr-defined]
        start = w_mean.expand(n, num_ws, -1) if o.space == "w+" else w_mean.expand(n, -1)
        latent = start.clone().requires_grad_(True)
    else:
        with torch.no_grad():  # the best of Z_CANDIDATES draws per image
            candidates = torch.randn(Z_CANDIDATES, n, generator.latent_dim, generator=rng).to(device)
            fits = torch.stack([objective(generator(c, labels)) for c in candidates])  # [K, N]
            latent = candidates[fits.argmin(0), torch.arange(n)].clone().requires_grad_(True)

    noises = _noise_modules(generator) if styled else {}
    originals = {k: m.fixed_noise for k, m in noises.items()}
    maps = {k: torch.randn(n, *m.fixed_noise.shape[1:], generator=rng).to(device).requires_grad_(True) for k, m in noises.items()}
    try:
        for k, m in noises.items():
            m.fixed_noise = maps[k]
        optimizer = torch.optim.Adam([latent, *maps.values()], lr=o.lr or (0.1 if styled else 0.05))
        base_lr = optimizer.param_groups[0]["lr"]

        def render() -> torch.Tensor:
            if not styled:
                return generator(latent, labels)
            ws = latent if o.space == "w+" else latent[:, None].expand(-1, generator.num_ws, -1)  # type: ignore[attr-defined]
            return generator.synthesize(ws)  # type: ignore[operator]

        losses, frames = [], []
        keep = set(torch.linspace(0, o.steps - 1, o.frames).round().long().tolist()) if o.frames and o.steps else set()
        for step in range(o.steps):
            for group in optimizer.param_groups:
                group["lr"] = base_lr * learning_rate_ramp((step + 1) / o.steps)
            images = render()
            loss = objective(images)
            total = loss.sum()
            if not styled and o.prior_weight:
                total = total + o.prior_weight * (latent.pow(2).mean(1) - 1).pow(2).sum() * generator.latent_dim
            if maps and o.noise_weight:
                total = total + o.noise_weight * noise_regularization(list(maps.values()))
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            with torch.no_grad():  # noise maps stay zero-mean, unit-variance
                for m in maps.values():
                    m.sub_(m.mean((1, 2, 3), keepdim=True)).div_(m.std((1, 2, 3), keepdim=True) + 1e-8)
            losses.append(loss.detach().cpu())
            if step in keep:
                frames.append(images.detach().cpu())
            if progress is not None:
                progress(step + 1)
        with torch.no_grad():
            final = render().detach().cpu()
            losses.append(objective(final.to(device)).detach().cpu())
        found = {k: v.detach().cpu() for k, v in maps.items()} or None
    finally:
        for k, m in noises.items():
            m.fixed_noise = originals[k]
    return Projection(latent.detach().cpu(), o.space, final, torch.stack(losses), frames,
                      None if labels is None else labels.cpu(), found, name)


# --------------------------------------------------------------------------- encoder (ganforge project --encoder)

#: Training of the encoder: steps, batch, Adam's rate.
ENCODER_STEPS, ENCODER_BATCH, ENCODER_LR = 1000, 64, 1e-3


class LatentEncoder(nn.Module):
    """Image -> latent (``z``, or ``w`` for StyleGAN): strided convolutions, then a linear layer (a rough inverse of G
    that starts projection near its answer)."""

    def __init__(self, channels: int, resolution: int, latent_dim: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size, c = resolution, channels
        while size > 4:
            layers += [nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2)]
            c, size, width = width, size // 2, min(width * 2, 256)
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(c * size * size, latent_dim)
        self.init_kwargs = {"channels": channels, "resolution": resolution, "latent_dim": latent_dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.float()))


def train_encoder(generator: Generator, space: str = "z", *, steps: int = ENCODER_STEPS, seed: int = 0,
                  progress: Callable[[int], None] | None = None) -> LatentEncoder:
    """An encoder trained on the generator's own samples to give back their latents (MSE in ``z`` or ``w``)."""
    channels, resolution = int(generator.output_shape[0]), int(generator.output_shape[-1])  # type: ignore[attr-defined]
    styled_space = space != "z"
    if styled_space and not styled(generator):
        raise UserError(f"--space {space} needs a StyleGAN run (a mapping network); this generator projects in z")
    rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the encoder's initial weights
    dim = generator.styles(torch.zeros(1, generator.latent_dim, device=generator.device))[0, 0].numel() \
        if styled_space else generator.latent_dim  # type: ignore[operator]
    encoder = LatentEncoder(channels, resolution, dim).to(generator.device)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=ENCODER_LR)
    with eval_mode(generator):
        for step in range(steps):
            z = torch.randn(ENCODER_BATCH, generator.latent_dim, generator=rng).to(generator.device)
            labels = (torch.randint(generator.num_classes, (ENCODER_BATCH,), generator=rng).to(generator.device)
                      if generator.num_classes else None)
            with torch.no_grad():
                target = generator.styles(z, labels, 1.0)[:, 0] if styled_space else z  # type: ignore[operator]
                images = generator.synthesize(target[:, None].expand(-1, generator.num_ws, -1)) if styled_space \
                    else generator(z, labels)  # type: ignore[attr-defined,operator]
            loss = (encoder(images) - target).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None:
                progress(step + 1)
    return encoder.eval()


def encoder_for(run: str | Path, generator: Generator, space: str, *, steps: int = ENCODER_STEPS) -> LatentEncoder:
    """The run's encoder for ``space`` (``RUN/encoder-SPACE/``, trained and saved on first use, for these weights)."""
    from safetensors.torch import load_file, save_file

    folder = RunDir(run).encoder_dir(space)
    weights_id = (getattr(generator, "meta", None) or {}).get("weights_id")
    info_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if info_path.is_file() and weights_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("weights_id") == weights_id and info.get("steps") == steps:
            encoder = LatentEncoder(**info["kwargs"])
            encoder.load_state_dict(load_file(str(weights_path)))
            return encoder.to(generator.device).eval()
    encoder = train_encoder(generator, space, steps=steps)
    if Path(run).is_dir():
        folder.mkdir(exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}, str(weights_path))
        atomic_write_text(info_path, json.dumps({"kwargs": encoder.init_kwargs, "weights_id": weights_id, "steps": steps}))
    return encoder


# --------------------------------------------------------------------------- files (ganforge project)


def read_targets(paths: list[str | Path], generator: Generator) -> torch.Tensor:
    """Image files as the generator's targets: float ``[N, C, R, R]`` in [-1, 1] (centre-cropped, resized, its channels)."""
    channels, side = int(generator.output_shape[0]), int(generator.output_shape[-1])  # type: ignore[attr-defined]
    images = []
    for path in paths:
        try:
            images.append(decode_image(path, side, channels))
        except FileNotFoundError:
            raise UserError(f"'{path}': no such image file") from None
        except (OSError, ValueError, SyntaxError) as err:
            reason = (str(err).splitlines() or [type(err).__name__])[0]
            raise UserError(f"'{path}': cannot read it as an image ({reason})") from None
    return from_uint8(torch.stack(images))


def project_files(generator: Generator, paths: list[str | Path], out: str | Path, options: ProjectOptions | None = None, *,
                  data: str | None = None, run: str = "", fps: float = 8.0) -> dict[str, Any]:
    """``ganforge project``: project image files, write ``OUT/STEM.npy`` (the latent), ``STEM.png`` (the
    reconstruction), ``STEM.gif`` (the optimisation) and ``projection.json`` (PSNR, LPIPS where present, the
    same against random latents); returns that summary."""
    o = options or ProjectOptions()
    if not isinstance(generator, Generator) or not generator.is_image:
        raise UserError("ganforge project needs an image generator")
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) != len(stems):
        raise UserError("the images need distinct file names (their outputs are named after them)")
    targets = read_targets(paths, generator)
    result = project(generator, targets, o, data=data)
    with torch.no_grad(), eval_mode(generator):
        random = generator(seeded_latents(len(targets), generator.latent_dim, o.seed + 1).to(generator.device),
                           result.labels).cpu().float()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    scores = {"psnr": psnr(result.images, targets), "psnr_random": psnr(random, targets)}
    if lpips_metric.available():
        model = lpips_metric.load_lpips()
        scores["lpips"] = lpips_metric.lpips_distances(model, to_uint8(result.images), to_uint8(targets))
        scores["lpips_random"] = lpips_metric.lpips_distances(model, to_uint8(random), to_uint8(targets))
    images = []
    for i, (path, stem) in enumerate(zip(paths, stems)):
        label = None if result.labels is None else int(result.labels[i])
        meta = provenance(generator, seed=o.seed, label=label, projected=str(path), space=o.space)
        np.save(folder / f"{stem}.npy", result.latents[i].numpy())
        save_png(to_pil_frames(result.images[i:i + 1], int(targets.shape[-1]))[0], folder / f"{stem}.png", meta)
        frames = [watermark.mark(frame, meta)[0] for frame in to_pil_frames(torch.stack([f[i] for f in result.frames]))] \
            if result.frames else []
        if frames:
            write_gif(frames, folder / f"{stem}.gif", fps, json.dumps(meta, separators=(",", ":")))
        images.append({"image": str(path), "latent": f"{stem}.npy", "label": label, "loss": float(result.losses[-1, i]),
                       **{k: float(v[i]) for k, v in scores.items()}})
    summary = {"run": run, "space": o.space, "steps": o.steps, "seed": o.seed, "perceptual": result.perceptual,
               **{f"mean_{k}": float(v.mean()) for k, v in scores.items()}, "images": images}
    atomic_write_text(folder / "projection.json", json.dumps(summary, indent=1) + "\n")
    return summary
