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
from ..safeguards import watermark

#: Frames per second of written clips (Moving MNIST's clips are usually shown at about this rate).
FPS = 8


def frames_to_pil(frames: np.ndarray, scale: int = 1) -> list[Image.Image]:
    """uint8 frames ``[T, H, W, C]`` (C = 1 or 3) -> PIL images (grey or RGB), enlarged ``scale`` times (nearest)."""
    images = [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f, mode="L" if f.shape[2] == 1 else "RGB") for f in frames]
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    return images


def provenance_comment(metadata: dict[str, Any] | None) -> str:
    """Provenance fields as the JSON text a GIF comment or an MP4 ``comment`` tag holds (values as strings)."""
    return json.dumps({str(k): str(v) for k, v in (metadata or {}).items()}, sort_keys=True)


def encode_gif(images: list[Image.Image], fps: float, comment: str) -> bytes:
    """An endlessly looping GIF of ``images`` with ``comment`` (256 colours a frame; grey stays exact); deterministic.

    Pillow merges consecutive identical frames into one of their summed duration, so a clip
    that stands still for a frame plays as it should but reads back with fewer frames.
    """
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   comment=comment.encode(), optimize=False)
    return buffer.getvalue()


def gif_bytes(frames: np.ndarray, metadata: dict[str, Any] | None = None, fps: float = FPS, scale: int = 1) -> bytes:
    """:func:`encode_gif` of uint8 frames ``[T, H, W, C]`` with ``metadata`` as the comment's provenance (generated
    frames watermarked, :func:`ganforge.safeguards.watermark.mark_frames`)."""
    frames, metadata = watermark.mark_frames(frames, metadata)
    return encode_gif(frames_to_pil(frames, scale), fps, provenance_comment(metadata))


def write_gif(path: Path, frames: np.ndarray, metadata: dict[str, Any] | None = None, fps: float = FPS) -> Path:
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


def encode_mp4(images: list[Image.Image], path: Path, fps: float, comment: str) -> Path:
    """An H.264 MP4 (yuv420p) of ``images`` through imageio-ffmpeg (the ``video`` extra); ``comment`` goes to its comment tag."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary)
    except ImportError:
        raise UserError("MP4 output needs imageio and imageio-ffmpeg: pip install 'ganforge[video]' (or write a .gif)") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio.get_writer(
        str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2,
        output_params=["-metadata", f"comment={comment}"], ffmpeg_log_level="error",
    )
    try:
        for image in images:
            writer.append_data(np.asarray(image.convert("RGB")))
    finally:
        writer.close()
    return path


def write_mp4(path: Path, frames: np.ndarray, metadata: dict[str, Any] | None = None, fps: float = FPS) -> Path:
    """:func:`encode_mp4` of uint8 frames ``[T, H, W, C]``, provenance in its comment tag and in ``NAME.mp4.json`` beside it."""
    frames, metadata = watermark.mark_frames(frames, metadata)
    comment = provenance_comment(metadata)
    encode_mp4(frames_to_pil(frames), path, fps, comment)
    path.with_name(path.name + ".json").write_text(json.dumps(json.loads(comment), indent=1, sort_keys=True) + "\n")
    return path


def to_frames(clip: torch.Tensor) -> np.ndarray:
    """A stored clip ``uint8 [T, C, H, W]`` -> ``[T, H, W, C]`` for the writers."""
    return clip.permute(0, 2, 3, 1).contiguous().numpy()


__all__ = ["FPS", "encode_gif", "encode_mp4", "frames_to_pil", "gif_bytes", "provenance_comment", "read_gif", "read_provenance",
           "to_frames", "write_gif", "write_mp4"]
