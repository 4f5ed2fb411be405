"""Apply an image-to-image network to an image of any size in tiles, with bounded memory.

A convolutional network's output pixel depends only on the input pixels within its
receptive field. Each tile is therefore run with ``margin`` extra input pixels of context on
every side (clipped at the image border, where the network pads exactly as it would on the
whole image) and only the tile's own part of the output is kept. With a margin at least the
receptive-field radius the result equals the untiled output; smaller margins leave
differences that fade with distance (checked in the tests). Memory is one tile's
activations plus the ``uint8`` output, whatever the image size.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from .core import from_uint8, to_uint8
from .errors import UserError

Network = Callable[[torch.Tensor], torch.Tensor]


def tile_boxes(height: int, width: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """``(top, left, bottom, right)`` of the tiles covering a ``height x width`` image, row by row."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            yield top, left, min(top + tile, height), min(left + tile, width)


def to_model_range(image: np.ndarray) -> torch.Tensor:
    """``uint8 [H, W, C]`` (or ``[H, W]``) -> ``float32 [1, C, H, W]`` in [-1, 1]."""
    array = image[..., None] if image.ndim == 2 else image
    return from_uint8(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None])


@torch.no_grad()
def apply_tiled(
    network: Network,
    image: np.ndarray,
    scale: int = 1,
    *,
    tile: int | None = 256,
    margin: int = 32,
    out_channels: int | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``network`` applied to ``image`` (``uint8 [H, W, C]``), returned as ``uint8 [sH, sW, C']``.

    Args:
        network: maps ``[1, C, h, w]`` in [-1, 1] to ``[1, C', s*h, s*w]`` in [-1, 1].
        image: the input image.
        scale: the network's upscaling factor ``s`` (1 for translation).
        tile: tile side in input pixels; None runs the whole image at once.
        margin: input pixels of context around each tile.
        out_channels: ``C'`` (default: the input's channel count).
        device: where the network runs; tiles move there one at a time.
        progress: called with 1 after each tile (a progress bar's ``update``).
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise UserError(f"expected a uint8 [H, W] or [H, W, C] image, got {image.dtype} {image.shape}")
    if tile is not None and tile < 1 or margin < 0 or scale < 1:
        raise UserError(f"tile must be >= 1, margin >= 0 and scale >= 1 (got {tile}, {margin}, {scale})")
    height, width = image.shape[:2]
    channels = out_channels or (1 if image.ndim == 2 else image.shape[2])
    out = np.empty((height * scale, width * scale, channels), dtype=np.uint8)
    for top, left, bottom, right in tile_boxes(height, width, tile or max(height, width)):
        # The tile plus its context, clipped to the image.
        t, lf = max(top - margin, 0), max(left - margin, 0)
        b, r = min(bottom + margin, height), min(right + margin, width)
        x = to_model_range(image[t:b, lf:r]).to(device)
        y = network(x).float()  # [1, C', s(b-t), s(r-lf)]
        y = y[0, :, (top - t) * scale : (bottom - t) * scale, (left - lf) * scale : (right - lf) * scale]
        out[top * scale : bottom * scale, left * scale : right * scale] = to_uint8(y).permute(1, 2, 0).cpu().numpy()
        if progress is not None:
            progress(1)
    return out[..., 0] if image.ndim == 2 and channels == 1 else out
