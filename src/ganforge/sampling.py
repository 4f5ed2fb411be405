"""Using a trained generator: provenance metadata and latent interpolation.

Shared by the CLI (``sample``, ``interpolate``, ``synthesize``), the HTTP API and the
trainer's sample grids, so every generated file says where it came from in the same words.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from . import modality as modalities
from .errors import UserError, shorten
from .models.base import Generator, generate, truncated_normal

INTERPOLATIONS = ("slerp", "linear")


def label_out_of_range(label: int | str, num_classes: int) -> UserError:
    return UserError(f"label {shorten(label)} is out of range: this generator has classes 0..{num_classes - 1}")


def parse_label(label: int | str | None, class_names: Sequence[str] | None, num_classes: int) -> int | None:
    """A label given as a class index or a class name (``--label``, the API's ``label``) as an index.

    Names win over digits (folder names may be digits); only ASCII digits count as a number
    (``"²".isdigit()`` is true, but ``int("²")`` fails). The range is the caller's check.

    Raises:
        UserError: an unknown name, or a number too long to be any class.
    """
    if label is None or isinstance(label, int):
        return label
    if class_names and label in class_names:
        return list(class_names).index(label)
    text = label.strip()
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        known = f" (classes: {', '.join(map(str, class_names))})" if class_names else ""
        raise UserError(f"unknown label '{shorten(label)}'{known}")
    if len(digits) > 18:
        raise label_out_of_range(text, num_classes)
    return int(text)


def provenance(
    model: Generator | None = None,
    *,
    seed: int | str = "",
    label: int | str | None = None,
    truncation: float | None = None,
    **extra: Any,
) -> dict[str, str]:
    """PNG text metadata for a generated image: generator id, run, seed, label, truncation.

    ``synthetic=true`` marks the file as generated, so a synthetic image mixed into a data
    set can always be told from a real one. ``extra`` adds fields or overrides the ones read
    from ``model.meta`` (``generator=``, ``run=``).
    """
    meta = getattr(model, "meta", {}) or {}
    fields: dict[str, Any] = {
        "generator": meta.get("weights_id", ""),
        "run": meta.get("run", ""),
        "seed": seed,
        "label": "" if label is None else label,
        "truncation": "" if truncation is None else truncation,
        "synthetic": "true",
        **_modality_fields(model, meta),
        **extra,
    }
    return {key: str(value) for key, value in fields.items()}


def _modality_fields(model: Generator | None, meta: dict[str, Any]) -> dict[str, Any]:
    """The fields the model's modality repeats in every output's provenance (audio: ``sample_rate``)."""
    if model is None or not meta.get("modality"):
        return {}
    try:
        return modalities.get(str(meta["modality"])).output_fields(meta)
    except UserError:  # a modality this process has not registered
        return {}


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation ``[T, D]`` between latents ``z0, z1 [D]`` at fractions ``t [T]``.

    Gaussian latents concentrate on a shell of radius ~sqrt(D); a straight line between two of
    them passes through the low-norm interior the generator rarely saw, while the great-circle
    path ``sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1`` (w the angle between them) stays on it.
    """
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # (nearly) parallel: the arc is a line
        return lerp(z0, z1, t)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation ``[T, D]`` between ``z0`` and ``z1`` at fractions ``t [T]``."""
    t = t[:, None]
    return (1 - t) * z0 + t * z1


def latent_walk(
    latent_dim: int,
    seeds: Sequence[int],
    frames: int,
    mode: str = "slerp",
    truncation: float | None = None,
) -> torch.Tensor:
    """Latents ``[(len(seeds)-1) * frames + 1, latent_dim]`` through the seeds' latents in order.

    Each seed's latent is the first one ``Generator.sample(1, seed)`` would draw, so a frame at
    a seed shows exactly that seed's sample. Segments share their end points (no repeated frame).
    """
    if len(seeds) < 2:
        raise UserError(f"give at least two seeds to interpolate between, got {len(seeds)}")
    if frames < 1:
        raise UserError(f"frames must be >= 1, got {frames}")
    if mode not in INTERPOLATIONS:
        raise UserError(f"unknown interpolation '{mode}' (choose from: {', '.join(INTERPOLATIONS)})")
    points = [
        truncated_normal((1, latent_dim), truncation, torch.Generator().manual_seed(int(s)))[0] for s in seeds
    ]
    step = lerp if mode == "linear" else slerp
    t = torch.arange(frames, dtype=torch.float32) / frames  # [0, 1): the end is the next segment's start
    path = [step(a, b, t) for a, b in zip(points, points[1:])]
    return torch.cat([*path, points[-1][None]])


@torch.no_grad()
def generate_from_latents(
    generator: Generator, z: torch.Tensor, label: int | None = None, batch_size: int = 256
) -> torch.Tensor:
    """Samples ``[N, ...]`` on the CPU for latents ``z [N, D]`` (one label for all, if conditional)."""
    labels = generator.check_labels(None if label is None else torch.tensor(label), len(z))
    return generate(generator, z, labels, batch_size=batch_size)
