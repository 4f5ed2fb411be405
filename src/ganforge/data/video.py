"""Video data sets: procedural moving digits (whose truth is known) and folders of clips.

``moving-digits`` draws clips like Moving MNIST (Srivastava et al. 2015): one or two digits
glide inside a square frame in one of 8 compass directions and bounce off its walls. The
generator of the data keeps, for every clip, each digit's class, its first direction and its
centre in every frame, so metrics can check a generated clip against the truth. Clips are a
pure function of the split and ``data.frames``/``resolution``/``num_digits``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..video import VIDEO_SUFFIXES, read_gif
from .base import DATASETS, Dataset
from .images import check_split, class_labels, relative_files, resize_batch, to_channels, warn_skipped

#: Compass directions of motion, counter-clockwise from "right" (the image's y axis points down).
DIRECTIONS = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")
#: Clips in each split of moving-digits (train clips use the digit images of the train split only).
CLIPS = {"train": 8000, "test": 1000}
#: Seed of each split's clip stream.
SPLIT_SEEDS = {"train": 0, "test": 1}
#: Frames per second a clip represents (what written GIFs and MP4s play at).
FPS = 8


def digit_sprites(split: str, size: int, mnist_root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey digit images ``uint8 [M, size, size]`` and their labels: scikit-learn's digits (train: the first
    80%, test: the last 20%), or MNIST's split when ``mnist_root`` is given."""
    if mnist_root is None:
        digits = DATASETS.get("digits")(root=None, split="all", resolution=size, channels=1, download=False)
        start = round(0.8 * len(digits.data))
        part = slice(0, start) if split == "train" else slice(start, None)
        return digits.data[part, 0], digits.labels[part]  # type: ignore[index]
    mnist = DATASETS.get("mnist")(root=mnist_root, split=split, resolution=size, channels=1, download=False)
    return mnist.data[:, 0], mnist.labels  # type: ignore[return-value]


def bounce(count: int, frames: int, span: float, rng: np.random.Generator, directions: np.ndarray) -> np.ndarray:
    """Top-left corners ``[count, frames, 2]`` (x, y) of sprites moving at ``span / 8`` pixels a frame, reflected
    off the walls ``0`` and ``span``, heading in ``DIRECTIONS[directions]``.

    Starts are uniform over the places from which the first move hits no wall, so the first
    two frames always show the recorded direction."""
    angle = directions * (math.pi / 4)
    velocity = (span / 8) * np.stack([np.cos(angle), -np.sin(angle)], axis=-1)  # image y grows downwards
    low, high = np.maximum(0.0, -velocity), np.minimum(span, span - velocity)
    position = low + rng.uniform(0, 1, (count, 2)) * (high - low)
    track = np.empty((count, frames, 2))
    for t in range(frames):
        track[:, t] = position
        position = position + velocity
        for low_or_high in (position < 0, position > span):  # reflect: the overshoot goes back inside
            position = np.where(low_or_high, np.where(position < 0, -position, 2 * span - position), position)
            velocity = np.where(low_or_high, -velocity, velocity)
    return track


def moving_digit_clips(sprites: torch.Tensor, sprite_labels: torch.Tensor, count: int, frames: int, resolution: int,
                       num_digits: int, seed: int) -> dict[str, Any]:
    """``count`` clips ``uint8 [count, frames, 1, resolution, resolution]`` and their truth.

    Returns ``{"clips", "digits" [count, num_digits], "directions" [count, num_digits],
    "centres" [count, frames, num_digits, 2]}``. Overlapping digits combine by maximum.
    """
    rng = np.random.default_rng(seed)
    size = sprites.shape[-1]
    span = resolution - size
    which = rng.integers(0, len(sprites), (count, num_digits))
    directions = rng.integers(0, len(DIRECTIONS), (count, num_digits))
    tracks = np.stack([bounce(count, frames, span, rng, directions[:, k]) for k in range(num_digits)], axis=2)
    corners = np.rint(tracks).astype(np.int64)  # [count, frames, num_digits, 2]
    clips = np.zeros((count, frames, resolution, resolution), dtype=np.uint8)
    images = sprites.numpy()
    for i in range(count):
        for k in range(num_digits):
            sprite = images[which[i, k]]
            for t in range(frames):
                x, y = corners[i, t, k]
                window = clips[i, t, y : y + size, x : x + size]
                np.maximum(window, sprite, out=window)
    return {
        "clips": torch.from_numpy(clips)[:, :, None],
        "digits": torch.from_numpy(sprite_labels.numpy()[which]),
        "directions": torch.from_numpy(directions),
        "centres": torch.from_numpy((corners + size / 2).astype(np.float32)),
    }


@DATASETS.register("moving-digits", help="procedural clips of 1-2 digits moving and bouncing (offline; truth recorded), 10 classes")
def moving_digits(*, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
                  frames: int | None = None, num_digits: int | None = None) -> Dataset:
    """Clips of ``num_digits`` digits (default 1) gliding and bouncing in a ``resolution``-pixel square (default 32).

    Digits are scikit-learn's (offline; train clips draw the first 80% of its images, test clips
    the rest), or MNIST's with ``data.root`` = an MNIST folder. Each digit is ``resolution / 2``
    pixels, moves ``resolution / 16`` pixels a frame in one of 8 directions (``DIRECTIONS``)
    and bounces off the walls. Labels are the first digit's class; ``info`` keeps the truth
    (``digits``, ``directions``, ``centres``). Train: 8,000 clips (seed 0), test: 1,000 (seed 1).
    """
    check_split("moving-digits", split, ("train", "test"))
    resolution = resolution or 32
    frames = frames or 16
    num_digits = num_digits or 1
    if resolution < 16 or resolution % 8:
        raise DataError(f"moving-digits: data.resolution must be a multiple of 8 and at least 16, got {resolution}")
    if not 1 <= num_digits <= 2:
        raise DataError(f"moving-digits: data.num_digits must be 1 or 2, got {num_digits}")
    sprites, labels = digit_sprites(split, resolution // 2, root)
    made = moving_digit_clips(sprites, labels, CLIPS[split], frames, resolution, num_digits, SPLIT_SEEDS[split])
    clips = made.pop("clips")
    if channels == 3:
        clips = clips.expand(-1, -1, 3, -1, -1).contiguous()
    elif channels not in (None, 1):
        raise DataError(f"moving-digits: data.channels must be 1 or 3, got {channels}")
    info = {"source": "mnist" if root else "sklearn.datasets.load_digits", "split": split, "fps": FPS,
            "directions": made["directions"], "digits": made["digits"], "centres": made["centres"],
            "direction_names": list(DIRECTIONS), "num_digits": num_digits}
    return Dataset("moving-digits", clips, made["digits"][:, 0].clone(), [str(d) for d in range(10)], info, modality="video")


# --------------------------------------------------------------------------- folders of clips


def read_clip(path: Path) -> tuple[np.ndarray, float]:
    """Every frame of a clip file as uint8 ``[T, H, W, 3]``, and its frame rate (GIFs through Pillow, the rest through imageio)."""
    if path.suffix.lower() == ".gif":
        return read_gif(path), float(FPS)
    try:
        import imageio.v3 as iio
    except ImportError:
        raise DataError(f"reading '{path.name}' needs imageio and imageio-ffmpeg: pip install 'ganforge[video]'") from None
    frames = np.asarray(iio.imread(path, plugin="pyav") if _has_pyav() else iio.imread(path))
    try:
        fps = float((iio.immeta(path) or {}).get("fps") or FPS)
    except Exception:  # metadata is optional; the frames are what matters
        fps = float(FPS)
    if frames.ndim == 3:  # one grey frame sequence without a channel axis
        frames = frames[..., None]
    return np.ascontiguousarray(frames[..., :3] if frames.shape[-1] >= 3 else np.repeat(frames, 3, axis=-1)), fps


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def clip_window(frames: np.ndarray, count: int, stride: int) -> np.ndarray:
    """``count`` frames taken every ``stride`` from the middle of ``frames`` (the last frame repeated when too short)."""
    needed = (count - 1) * stride + 1
    start = max(0, (len(frames) - needed) // 2)
    index = np.minimum(start + stride * np.arange(count), len(frames) - 1)
    return frames[index]


@DATASETS.register("video-folder", help="a folder of MP4/GIF/WebM clips (class sub-folders give labels)")
def video_folder(*, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
                 frames: int | None = None, frame_stride: int | None = None) -> Dataset:
    """Every clip under ``root`` (``data.frames`` frames, default 16, one every ``data.frame_stride``,
    default 1, from the middle of the clip), centre-cropped and resized to ``resolution`` (default 64).

    Class sub-folders give labels when every clip lies in one. An unreadable clip is skipped with
    one warning naming it; a folder without clips, or none readable, is a one-line error.
    """
    from tqdm.auto import tqdm

    if root is None:
        raise DataError("data set 'video-folder' needs data.root=DIR (a folder of clips, class sub-folders for labels)")
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"video folder '{root}' {'is not a folder' if folder.exists() else 'does not exist'}")
    check_split("video-folder", split, ("train", "all"))
    frames, stride, resolution = frames or 16, frame_stride or 1, resolution or 64
    rel = relative_files(folder, VIDEO_SUFFIXES)
    if not rel:
        raise DataError(f"no clips ({', '.join(VIDEO_SUFFIXES)}) under '{root}'")
    clips, kept, skipped = [], [], []
    for parts in tqdm(rel, desc=f"decoding {folder.name}", unit="clip", leave=False, disable=len(rel) < 200):
        path = Path(folder, *parts)
        try:
            array, _ = read_clip(path)
        except Exception as err:  # a corrupt file: any decoder error
            skipped.append([str(path), _one_line(err)])
            continue
        window = torch.from_numpy(clip_window(array, frames, stride)).permute(0, 3, 1, 2)  # [T, 3, H, W]
        clips.append(to_channels(resize_batch(window.contiguous(), resolution), channels))
        kept.append(parts)
    warn_skipped(folder, skipped, stacklevel=3, what="clip")
    if not clips:
        raise DataError(f"none of the {len(rel)} clips under '{root}' could be read, e.g. {skipped[0][0]} ({skipped[0][1]})")
    labels = class_names = None
    if all(len(parts) > 1 for parts in kept):
        class_names, index = class_labels([parts[0] for parts in kept])
        labels = torch.tensor([index[parts[0]] for parts in kept], dtype=torch.int64)
    return Dataset("video-folder", torch.stack(clips), labels, class_names,
                   {"source": str(folder), "fps": FPS, "skipped": len(skipped)}, modality="video")


def _one_line(err: Exception) -> str:
    return re.sub(r"\s+", " ", str(err)).strip()[:200] or type(err).__name__


__all__ = ["CLIPS", "DIRECTIONS", "bounce", "clip_window", "digit_sprites", "moving_digit_clips", "moving_digits", "read_clip",
           "video_folder"]
