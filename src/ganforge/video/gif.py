"""Animated GIF and MP4 files of clips, with ganforge's provenance in the container's metadata.

A GIF carries the provenance as JSON in its comment extension (read back by
:func:`read_provenance`); an MP4 (through imageio's ffmpeg, the ``video`` extra) in its
``comment`` tag, with the same JSON beside it in ``NAME.mp4.json`` because not every player
or library reads MP4 tags back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..core import atomic_write_bytes
from ..errors import UserError

#: Frames per second of written clips (Moving MNIST's clips are usually shown at about this rate).
FPS = 8


def frames_to_pil(frames: np.ndarray) -> list[Image.Image]:
    """uint8 frames ``[T, H, W, C]`` (C = 1 or 3) -> PIL images (grey or RGB)."""
    return [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f, mode="L" if f.shape[2] == 1 else "RGB") for f in frames]


def gif_bytes(frames: np.ndarray, metadata: dict[str, Any] | None = None, fps: int = FPS, scale: int = 1) -> bytes:
    """An endlessly looping GIF of uint8 frames ``[T, H, W, C]`` with ``metadata`` as JSON in its comment; deterministic."""
    images = frames_to_pil(frames)
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    buffer = io.BytesIO()
    comment = json.dumps({str(k): str(v) for k, v in (metadata or {}).items()}, sort_keys=True)
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   comment=comment.encode(), optimize=False, disposal=1)
    return buffer.getvalue()


def write_gif(path: Path, frames: np.ndarray, metadata: dict[str, Any] | None = None, fps: int = FPS) -> Path:
    """:func:`gif_bytes` written atomically to ``path``."""
    atomic_write_bytes(path, gif_bytes(frames, metadata, fps))
    return path


def read_gif(path: str | Path) -> np.ndarray:
    """Every frame of a GIF as uint8 ``[T, H, W, 3]``."""
    try:
        with Image.open(path) as im:
            frames = []
            for index in range(getattr(im, "n_frames", 1)):
                im.seek(index)
                frames.append(np.asarray(im.convert("RGB")))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read GIF '{path}': {err}") from None
    return np.stack(frames)


def read_provenance(path: str | Path) -> dict[str, str]:
    """The provenance ganforge wrote into a GIF's comment or beside an MP4 ({} if there is none)."""
    path = Path(path)
    if path.suffix.lower() == ".mp4":
        sidecar = path.with_name(path.name + ".json")
        return json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    try:
        with Image.open(path) as im:
            comment = im.info.get("comment", b"")
    except OSError as err:
        raise UserError(f"cannot read '{path}': {err}") from None
    try:
        fields = json.loads(comment.decode() if isinstance(comment, bytes) else comment) if comment else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}


def write_mp4(path: Path, frames: np.ndarray, metadata: dict[str, Any] | None = None, fps: int = FPS) -> Path:
    """An H.264 MP4 of uint8 frames ``[T, H, W, C]`` (sides padded to even sizes), provenance in its comment and a sidecar JSON."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise UserError("writing MP4 needs imageio and imageio-ffmpeg: pip install 'ganforge[video]' (or write .gif)") from None
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2  # yuv420p needs even sides
    frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    fields = {str(k): str(v) for k, v in (metadata or {}).items()}
    comment = json.dumps(fields, sort_keys=True)
    try:
        writer = imageio.get_writer(str(path), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1,
                                    pixelformat="yuv420p", output_params=["-metadata", f"comment={comment}"])
    except Exception as err:  # imageio raises several types when ffmpeg is missing
        raise UserError(f"cannot write MP4 '{path}': {err} (pip install imageio-ffmpeg, or write .gif)") from None
    with writer:
        for frame in frames:
            writer.append_data(frame)
    path.with_name(path.name + ".json").write_text(json.dumps(fields, indent=1, sort_keys=True) + "\n")
    return path


def to_frames(clip: torch.Tensor) -> np.ndarray:
    """A stored clip ``uint8 [T, C, H, W]`` -> ``[T, H, W, C]`` for the writers."""
    return clip.permute(0, 2, 3, 1).contiguous().numpy()


__all__ = ["FPS", "frames_to_pil", "gif_bytes", "read_gif", "read_provenance", "to_frames", "write_gif", "write_mp4"]
