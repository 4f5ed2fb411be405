"""Latent-walk videos: frames between seeds as a GIF, an MP4 or numbered PNGs.

The latents come from :func:`ganforge.sampling.latent_walk`, so the frame at a seed is
exactly ``generator.sample(1, seed)`` (for StyleGAN generators the truncation is psi in
``w`` space, as in ``sample``). Small images are enlarged with nearest-neighbour
resampling so that a 16 or 32 px generator gives a viewable video.

A walk of a generator of other samples (video clips) is a batch of its samples, one a step,
written by its modality's writer of ``--out``'s suffix (a GIF of the clips side by side,
playing together). ``part`` walks one of the generator's :attr:`~Generator.latent_parts`
(MoCoGAN's ``content`` or ``motion``) and keeps the rest at the first seed's values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from . import modality as modalities
from .core import atomic_write_bytes, to_uint8
from .errors import UserError
from .models.base import Generator
from .safeguards import watermark
from .sampling import generate_from_latents, latent_walk, provenance
from .video.gif import encode_gif
from .video.gif import encode_mp4 as write_mp4
from .viz import save_png

#: Frames of small images are enlarged (by a whole factor) to at least this side by default.
DEFAULT_MIN_SIZE = 256
VIDEO_SUFFIXES = (".gif", ".mp4")


@dataclass
class Walk:
    """A rendered latent walk: frames ``[T, C, H, W]`` in [-1, 1] and each frame's provenance."""

    images: torch.Tensor
    provenance: list[dict[str, str]]
    summary: dict[str, str]  # provenance of the whole walk (seeds "A->B->C")
    modality: modalities.Modality | None = None  # of the generator's samples (None: images)


def _w_space_psi(generator: Generator) -> bool:
    """StyleGAN generators (and their exports) truncate with psi in ``w`` space, not by clipping ``z``."""
    return getattr(generator, "truncation_psi", None) is not None


def frame_seed(seeds: Sequence[int], frames: int, index: int) -> str:
    """``"A->B@t"``: the segment of frame ``index`` and its fraction ``t`` in [0, 1]."""
    segment = min(index // frames, len(seeds) - 2)
    t = (index - segment * frames) / frames
    return f"{seeds[segment]}->{seeds[segment + 1]}@{t:.4g}"


def render_walk(
    generator: Generator,
    seeds: Sequence[int],
    frames: int,
    mode: str = "slerp",
    label: int | None = None,
    truncation: float | None = None,
    part: str | None = None,
) -> Walk:
    """Frames through the seeds' latents: ``frames`` per segment, ``(len(seeds)-1) * frames + 1`` in all.

    ``part``: walk only that part of the latent (:attr:`Generator.latent_parts`), the rest fixed at the first seed's.
    """
    kind = modalities.of(generator)
    if not generator.is_image and (kind.rank <= 3 or ".gif" not in kind.writers):
        raise UserError(f"interpolate renders images or clips; this generator makes {kind.name} {kind.plural} of shape "
                        f"{tuple(generator.output_shape)} (use ganforge sample)")
    if generator.num_classes and label is None:
        label = 0  # what sample(1, seed) uses, so the seed frames match it
    psi = _w_space_psi(generator)
    if psi and truncation is not None and truncation < 0:
        raise UserError(f"truncation psi must be >= 0 (1 = none), got {truncation}")
    z = latent_walk(generator.latent_dim, seeds, frames, mode, None if psi else truncation)
    if part is not None:
        parts = getattr(generator, "latent_parts", {})
        if part not in parts:
            has = f"its parts are {', '.join(parts)}" if parts else "its latent has no named parts"
            raise UserError(f"--walk {part}: this generator cannot walk '{part}' alone ({has})")
        walked, z = z, z[:1].expand_as(z).clone()
        z[:, parts[part]] = walked[:, parts[part]]
    previous = generator.truncation_psi if psi else None
    if psi:
        generator.truncation_psi = 1.0 if truncation is None else float(truncation)
    try:
        images = generate_from_latents(generator, z, label)
    finally:
        if psi:
            generator.truncation_psi = previous
    last = len(images) - 1
    common = {"label": label, "truncation": truncation, "interpolation": mode,  # frame "i/last" as in ganforge serve
              **({"walk": part} if part else {})}
    per_frame = [
        provenance(generator, seed=frame_seed(seeds, frames, i), frame=f"{i}/{last}", **common) for i in range(last + 1)
    ]
    summary = provenance(generator, seed="->".join(map(str, seeds)), frames=last + 1, **common)
    return Walk(images, per_frame, summary, None if generator.is_image else kind)


def display_size(side: int, size: int | None = None) -> int:
    """``size``, or else ``side`` times the smallest whole factor reaching :data:`DEFAULT_MIN_SIZE`."""
    if size is not None:
        if size < 1:
            raise UserError(f"--size must be >= 1, got {size}")
        return size
    return side * max(1, math.ceil(DEFAULT_MIN_SIZE / side))


def to_pil_frames(images: torch.Tensor, size: int | None = None) -> list[Image.Image]:
    """Images ``[T, C, H, W]`` in [-1, 1] as PIL frames (L or RGB), enlarged with nearest neighbour."""
    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()  # [T, H, W, C]
    side = display_size(images.shape[-1], size)
    frames = []
    for array in pixels:
        frame = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array, mode="L" if array.shape[2] == 1 else "RGB")
        frames.append(frame if frame.size == (side, side) else frame.resize((side, side), Image.NEAREST))
    return frames


def write_gif(frames: list[Image.Image], path: Path, fps: float, comment: str) -> Path:
    """An endlessly looping GIF with a comment (:func:`ganforge.video.encode_gif`), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, encode_gif(frames, fps, comment))
    return path


def write_png_frames(frames: list[Image.Image], out: Path, metadata: list[dict[str, str]]) -> list[Path]:
    """One PNG per frame with its provenance: ``DIR/frame-0000.png`` or ``STEM-0000.png`` beside ``out.png``."""
    folder, stem = (out.parent, out.stem) if out.suffix.lower() == ".png" else (out, "frame")
    digits = max(4, len(str(len(frames) - 1)))
    return [save_png(frame, folder / f"{stem}-{i:0{digits}d}.png", meta) for i, (frame, meta) in enumerate(zip(frames, metadata))]


def output_kind(out: str | Path) -> str:
    """``gif``, ``mp4``, ``png`` (numbered frames beside it), ``npy`` (the raw outputs) or ``dir`` (frames inside)."""
    text = str(out)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (*VIDEO_SUFFIXES, ".png", ".npy"):
        return suffix[1:]
    if text.endswith(("/", "\\")) or path.is_dir() or not suffix:
        return "dir"
    raise UserError(f"--out must end in .gif, .mp4, .png or .npy, or name a folder (frames as PNGs), got '{path.name}'")


def save_walk(walk: Walk, out: str | Path, fps: float = 12.0, size: int | None = None) -> list[Path]:
    """Write ``walk`` to ``out`` (kind from :func:`output_kind`); returns the files written."""
    if not fps > 0:
        raise UserError(f"--fps must be > 0, got {fps}")
    kind = output_kind(out)
    path = Path(out)
    if walk.modality is not None:  # clips: one a step, side by side, by the modality's writer
        return [walk.modality.write(walk.images, out, nrow=len(walk.images), metadata=walk.summary)]
    if kind == "npy":
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, walk.images.float().numpy())  # [frames, C, H, W] in [-1, 1]
        return [path]
    frames = to_pil_frames(walk.images, size)
    if kind in ("png", "dir"):
        return write_png_frames(frames, path, walk.provenance)
    # every frame carries the watermark (a grey GIF keeps it exactly; colour palettes and H.264 blur it)
    marked = [watermark.mark(frame, meta) for frame, meta in zip(frames, walk.provenance)]
    frames = [frame for frame, _ in marked]
    summary = {**walk.summary, **{k: v for k, v in marked[0][1].items() if k.startswith("watermark")}} if marked else walk.summary
    comment = json.dumps(summary, separators=(",", ":"))
    writer = write_gif if kind == "gif" else write_mp4
    return [writer(frames, path, fps, comment)]


__all__ = [
    "DEFAULT_MIN_SIZE",
    "Walk",
    "display_size",
    "frame_seed",
    "output_kind",
    "render_walk",
    "save_walk",
    "to_pil_frames",
    "write_gif",
    "write_mp4",
    "write_png_frames",
]
