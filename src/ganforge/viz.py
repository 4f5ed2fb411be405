"""Pictures of samples: image grids and 2-D scatter plots, written as PNG; bar charts as inline SVG."""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
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


#: Colours of a chart's series, in order (``report.html``'s curves, :func:`svg_bars`).
CHART_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def svg_bars(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], *, overlay: bool = False,
             ends: tuple[str, str] | None = None, width: int = 300, height: int = 210) -> str:
    """An inline SVG bar chart (``report.html``'s classes): ``series`` maps a name to one height per label.

    ``overlay`` draws the series over each other, see-through (histograms on shared bins), else side by side
    (category shares). The series' key is under the title, a line each; the x axis shows ``ends`` at its ends (a histogram's
    range), else the labels under their bars; every bar's tooltip names its label, series and height.
    """
    left, right, top = 44, 8, 26 + 13 * len(series)
    bottom = 24 if ends else 64
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((float(v) for values in series.values() for v in values), default=0.0) or 1.0
    slot = plot_w / max(len(labels), 1)
    bar = slot if overlay else slot / max(len(series), 1)
    opacity = ' fill-opacity="0.5"' if overlay else ""
    parts = [
        f'<svg class="chart bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="14" class="title">{html.escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>',
        f'<text x="{left - 4}" y="{top + 4}" class="ylab">{peak:.3g}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" class="ylab">0</text>',
    ]
    for s, (name, values) in enumerate(series.items()):
        colour, y = CHART_COLOURS[s % len(CHART_COLOURS)], 30 + 13 * s
        parts.append(f'<rect x="{left}" y="{y - 9}" width="9" height="9" fill="{colour}"{opacity}/>'
                     f'<text x="{left + 13}" y="{y}" class="key">{html.escape(name)}</text>')
        for i, (label, value) in enumerate(zip(labels, values)):
            h = float(value) / peak * plot_h
            x = left + i * slot + (0 if overlay else s * bar)
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar - 1, 0.5):.1f}" height="{h:.1f}" '
                         f'fill="{colour}"{opacity}><title>{html.escape(f"{label}: {name} {float(value):.3g}")}</title></rect>')
    if ends:
        parts.append(f'<text x="{left}" y="{height - 8}" class="xlab">{html.escape(ends[0])}</text>')
        parts.append(f'<text x="{width - right}" y="{height - 8}" class="xlab end">{html.escape(ends[1])}</text>')
    else:
        for i, label in enumerate(labels):
            x, y = left + (i + 0.5) * slot, top + plot_h + 10
            short = label if len(label) <= 11 else label[:10] + "\u2026"
            parts.append(f'<text x="{x:.1f}" y="{y}" class="xlab" text-anchor="end" transform="rotate(-40 {x:.1f} {y})">'
                         f'{html.escape(short)}</text>')
    parts.append("</svg>")
    return "".join(parts)
