"""Pictures of samples: image grids and 2-D scatter plots, written as PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, PngImagePlugin

from .core import to_uint8
from .safeguards import is_generated, manifest, watermark


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """Tile ``[N, C, H, W]`` images (float in [-1, 1] or uint8) into one picture, ``nrow`` per row."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    grid = torch.zeros((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    array = grid.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if c == 1 else array, mode="L" if c == 1 else "RGB")


def scatter_plot(
    points: torch.Tensor,
    reference: torch.Tensor | None = None,
    size: int = 384,
    extent: float | None = None,
) -> Image.Image:
    """Plot 2-D ``points`` (red) over optional ``reference`` points (grey) on a square canvas."""
    pts = points.detach().float().cpu().numpy()
    ref = None if reference is None else reference.detach().float().cpu().numpy()
    if extent is None:
        both = pts if ref is None else np.concatenate([pts, ref])
        finite = both[np.isfinite(both).all(axis=1)]
        extent = float(np.abs(finite).max()) * 1.15 if len(finite) else 1.0
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    to_px = lambda xy: (size / 2 + xy[:, 0] / extent * size / 2, size / 2 - xy[:, 1] / extent * size / 2)  # noqa: E731
    draw.line([(0, size / 2), (size, size / 2)], fill=(230, 230, 230))
    draw.line([(size / 2, 0), (size / 2, size)], fill=(230, 230, 230))
    for data, colour, radius in ((ref, (170, 170, 170), 1), (pts, (214, 39, 40), 1.5)):
        if data is None:
            continue
        xs, ys = to_px(data)
        for x, y in zip(xs, ys):
            if np.isfinite(x) and np.isfinite(y):
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    return image


def png_bytes(image: Image.Image, metadata: dict[str, object] | None = None, scale: int = 1) -> bytes:
    """PNG bytes of ``image`` (enlarged ``scale`` times, nearest neighbour) with text metadata; deterministic.
    Generated images (``synthetic=true`` in the metadata) are watermarked (:func:`ganforge.safeguards.watermark.mark`)."""
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    image, metadata = watermark.mark(image, metadata)
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(str(key), str(value))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return _signed(buffer.getvalue(), metadata)


def _signed(data: bytes, metadata: dict[str, object] | None) -> bytes:
    """A generated PNG with a signed C2PA manifest when signing keys are active (``--sign-cert``/``--sign-key``)."""
    if not manifest.active() or not is_generated(metadata):
        return data
    return manifest.sign(data, dict(metadata or {}))


def save_png(image: Image.Image, path: str | Path, metadata: dict[str, object] | None = None) -> Path:
    """Save :func:`png_bytes` of ``image`` (text metadata; generated images watermarked and, with signing keys
    active, signed); deterministic bytes unless signed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(image, metadata))  # the same bytes, marked and (with keys active) signed
    return path


def render_samples(samples: torch.Tensor, nrow: int | None = None, reference: torch.Tensor | None = None) -> Image.Image:
    """A grid for images ``[N, C, H, W]``, a scatter plot for vectors ``[N, 2]``."""
    if samples.dim() == 4:
        return image_grid(samples, nrow)
    if samples.dim() == 2 and samples.shape[1] == 2:
        return scatter_plot(samples, reference)
    raise ValueError(f"cannot draw samples of shape {tuple(samples.shape)}")


def comparison_grid(columns: list[torch.Tensor], max_rows: int = 8, padding: int = 2) -> Image.Image:
    """Examples side by side: row ``i`` shows ``columns[0][i], columns[1][i], ...`` (e.g. input | output | target).

    Columns are images ``[N, C, H, W]`` (float in [-1, 1] or uint8) of possibly different
    sizes (a super-resolution input is smaller) and channels: each is brought to the
    largest size (nearest-neighbour, so input pixels stay visible) and to RGB when any
    column is RGB. More than ``max_rows`` examples wrap into several groups per grid row.
    """
    columns = [c if c.dtype == torch.uint8 else to_uint8(c) for c in columns]
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError(f"columns hold different numbers of images: {[len(c) for c in columns]}")
    height = max(c.shape[-2] for c in columns)
    width = max(c.shape[-1] for c in columns)
    channels = max(c.shape[1] for c in columns)
    fitted = []
    for c in columns:
        if c.shape[-2:] != (height, width):
            c = torch.nn.functional.interpolate(c.float(), size=(height, width), mode="nearest").to(torch.uint8)
        fitted.append(c.expand(-1, channels, -1, -1) if c.shape[1] != channels else c)
    groups = max(1, math.ceil(n / max_rows))
    rows = math.ceil(n / groups)
    tiles = torch.zeros((rows * groups, len(columns), channels, height, width), dtype=torch.uint8)
    # example i goes to grid row i % rows, group i // rows: reading down the first group first
    order = torch.arange(n)
    slot = (order % rows) * groups + order // rows
    tiles[slot] = torch.stack(fitted, dim=1).cpu()
    return image_grid(tiles.reshape(-1, channels, height, width), nrow=groups * len(columns), padding=padding)
