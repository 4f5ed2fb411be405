"""The ``video`` modality: clips ``[T, C, H, W]`` (uint8 stored, [-1, 1] in the model), watched as GIFs and MP4s.

A clip is a sequence of ``T`` frames, each an image ``[C, H, W]``; models see the same layout
(frames first), so every image operation applies to ``clips.flatten(0, 1)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..core import from_uint8, to_uint8
from ..errors import UserError
from ..modality import Media, Modality, register, write_npy, write_png
from ..viz import image_grid
from .gif import gif_bytes, to_frames, write_gif, write_mp4

#: One clip, and a batch of clips tiled and animated together: a looping GIF (browsers play it in <img>).
GIF = Media("image/gif", ".gif")
#: Clips a preview picture shows (one row of frames each).
PREVIEW_CLIPS = 8
#: The suffixes of clip files that ``video-folder`` reads.
VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".avi", ".mov", ".mkv")


def grid_frames(clips: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """Clips ``uint8 [N, T, C, H, W]`` -> frames ``uint8 [T, H', W', C]`` of every clip tiled together."""
    frames = [np.asarray(image_grid(clips[:, t], nrow)) for t in range(clips.shape[1])]
    return torch.from_numpy(np.stack([f[:, :, None] if f.ndim == 2 else f for f in frames]))


def write_gif_grid(modality: "VideoModality", samples: torch.Tensor, path: Path, *, nrow: int | None = None,
                   metadata: dict[str, Any] | None = None, **_: Any) -> Path:
    """All clips tiled into one animated GIF (frame ``t`` of every clip together)."""
    return write_gif(path, grid_frames(modality.to_stored(samples), nrow).numpy(), {**(metadata or {}), "clips": len(samples)})


def write_mp4_grid(modality: "VideoModality", samples: torch.Tensor, path: Path, *, nrow: int | None = None,
                   metadata: dict[str, Any] | None = None, **_: Any) -> Path:
    """All clips tiled into one MP4 (needs imageio-ffmpeg), provenance in its comment and ``NAME.mp4.json``."""
    return write_mp4(path, grid_frames(modality.to_stored(samples), nrow).numpy(), {**(metadata or {}), "clips": len(samples)})


def write_clip_folder(modality: "VideoModality", samples: torch.Tensor, path: Path, *, nrow: int | None = None,
                      metadata: dict[str, Any] | None = None, **_: Any) -> Path:
    """``DIR/000.gif``, ``DIR/001.gif``, ... one clip each with the batch's provenance and its index, and ``DIR/frames.png``."""
    path.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(samples) - 1)))
    for i, clip in enumerate(modality.to_stored(samples)):
        write_gif(path / f"{i:0{width}d}.gif", to_frames(clip), {**(metadata or {}), "index": i})
    modality.write_preview(samples, path / "frames.png", metadata=metadata)
    return path


class VideoModality(Modality):
    """Clips ``[T, C, H, W]``: uint8 stored, [-1, 1] in the model; scored by the ``moving-digits`` video classifier."""

    name = "video"
    rank = 4  # [T, C, H, W]
    plural = "clips"
    description = "video clips [T, C, H, W] (uint8 on disk, [-1, 1] in the model; GIF and MP4 files)"
    default_metrics = ("fvd", "is")
    extractor = "moving-digits"
    writers = {".gif": write_gif_grid, ".mp4": write_mp4_grid, "": write_clip_folder, ".png": write_png, ".npy": write_npy}
    preview_caption = "clips (one row of frames each)"
    media = GIF
    playable = GIF
    data_suffixes = VIDEO_SUFFIXES
    scalable = True

    def check(self, data: torch.Tensor, what: str) -> None:
        if data.dim() != 5 or data.dtype != torch.uint8 or data.shape[2] not in (1, 3):
            raise UserError(f"{what}: video must be uint8 clips [N, T, C, H, W] with C = 1 or 3, got {data.dtype} "
                            f"{tuple(data.shape)}")

    def to_model(self, stored: torch.Tensor) -> torch.Tensor:
        return from_uint8(stored)

    def to_stored(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs if outputs.dtype == torch.uint8 else to_uint8(outputs)

    def preview(self, samples: torch.Tensor, *, nrow: int | None = None, reference: torch.Tensor | None = None) -> Image.Image:
        """The first clips, one row of frames each (a film strip per clip)."""
        clips = self.to_stored(samples[:PREVIEW_CLIPS])
        return image_grid(clips.flatten(0, 1), nrow=clips.shape[1])

    def encode(self, stored: torch.Tensor, metadata: dict[str, Any], *, scale: int = 1) -> bytes:
        """One clip ``[T, C, H, W]`` as a looping GIF (enlarged ``scale`` times)."""
        return gif_bytes(to_frames(self.to_stored(stored)), metadata, scale=scale)

    def encode_playable(self, samples: torch.Tensor, metadata: dict[str, Any]) -> bytes:
        """The clips tiled and animated together (as ``--out FILE.gif``)."""
        return gif_bytes(grid_frames(self.to_stored(samples)).numpy(), {**metadata, "clips": len(samples)})

    def encode_batch(self, samples: torch.Tensor, metadata: dict[str, Any], *, nrow: int | None = None,
                     scale: int = 1) -> bytes:
        return gif_bytes(grid_frames(self.to_stored(samples), nrow).numpy(), {**metadata, "clips": len(samples)}, scale=scale)

    def size(self, shape: tuple[int, ...], count: int, scale: int = 1) -> tuple[int, str]:
        frames, _, height, width = (int(s) for s in shape)
        values = count * frames * height * scale * width * scale
        return values, f"{count} clips of {frames} frames of {width * scale}x{height * scale} pixels ({values} pixels in all)"


VIDEO = register(VideoModality())

__all__ = ["GIF", "VIDEO", "VIDEO_SUFFIXES", "VideoModality", "grid_frames", "write_clip_folder", "write_gif_grid",
           "write_mp4_grid"]
