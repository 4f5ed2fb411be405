"""Apply an image-to-image generator to image files of any size: ``ganforge upscale`` / ``translate``.

One code path for super-resolution (``scale`` 2 or 4) and translation (``scale`` 1):

1. read the file (:func:`read_input`: grey, RGB or RGBA; a one-line error for a missing or
   corrupt file);
2. bring its colour channels to the generator's ``in_channels`` (grey replicated to RGB, RGB
   to luma for grey models) and set an alpha channel aside;
3. run the network tile by tile (:func:`ganforge.tiling.apply_tiled`: memory bounded by the
   tile, seam-free with a margin at least the receptive-field radius), each tile padded by
   edge replication to the network's ``size_multiple`` and cropped back;
4. restore the input's mode where asked (``keep_grey``: a grey image comes back grey, as
   the luma ``0.299 R + 0.587 G + 0.114 B`` of the output); the alpha channel is resized
   bicubically and re-attached;
5. write a PNG with provenance metadata (:func:`ganforge.sampling.provenance`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .core import eval_mode
from .errors import DataError, UserError
from .models import Translator, weights_hash
from .safeguards import watermark
from .sampling import provenance
from .tiling import apply_tiled
from .viz import save_png

LUMA = np.array([0.299, 0.587, 0.114])


def read_input(path: str | Path) -> np.ndarray:
    """An image file as ``uint8 [H, W]`` (grey), ``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA).

    Raises:
        DataError: a missing or unreadable file, or one larger than PIL's decompression-bomb
            limit (``Image.MAX_IMAGE_PIXELS * 2``, about 179 MP), which is refused unread.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"input image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = "A" in im.getbands() or (im.mode == "P" and "transparency" in im.info)
            grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
            mode = ("LA" if grey else "RGBA") if has_alpha else ("L" if grey else "RGB")
            if mode == "LA":  # PIL cannot hand numpy an LA image with alpha kept apart cleanly
                mode = "RGBA"
            return np.asarray(im.convert(mode))
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise DataError(f"image '{path}' has over {limit / 1e6:.0f} megapixels: refused unread (PIL's decompression-bomb limit)") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"cannot read image '{path}': {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def padded(network: Callable[[torch.Tensor], torch.Tensor], multiple: int, scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``network`` on inputs of any size: edge-pad ``[1, C, h, w]`` to multiples of ``multiple``, crop the output."""
    if multiple == 1:
        return network

    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % multiple, -w % multiple
        y = network(F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x)
        return y[..., : h * scale, : w * scale]

    return run


def to_luma(image: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3] -> [H, W]``: ITU-R BT.601 luma (MATLAB's ``rgb2gray``), rounded."""
    return np.clip(np.round(image[..., :3].astype(np.float64) @ LUMA), 0, 255).astype(np.uint8)


@torch.no_grad()
def apply_generator(
    generator: Translator,
    image: np.ndarray,
    *,
    tile: int | None = 128,
    margin: int = 16,
    keep_grey: bool = True,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """``generator`` applied to ``image`` (``uint8 [H, W]``, ``[H, W, 3]`` or ``[H, W, 4]``).

    Returns ``uint8 [sH, sW(, C')]``: grey stays grey when ``keep_grey``; RGBA keeps its
    (bicubically resized) alpha. ``tile=None`` runs the whole image at once.
    """
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise UserError(f"expected a uint8 grey, RGB or RGBA image, got {image.dtype} {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    alpha = image[..., 3] if image.ndim == 3 and image.shape[2] == 4 else None
    colour = image[..., :3] if alpha is not None else image
    was_grey = colour.ndim == 2
    if generator.in_channels == 1 and not was_grey:
        colour = to_luma(colour)
    elif generator.in_channels == 3 and was_grey:
        colour = np.repeat(colour[..., None], 3, axis=2)
    elif generator.in_channels not in (1, 3):
        raise UserError(f"this generator takes {generator.in_channels}-channel images; image files have 1 or 3 colour channels")
    if not colour.flags.writeable:  # torch.from_numpy warns about read-only arrays (PIL's np.asarray)
        colour = colour.copy()
    scale = int(getattr(generator, "scale", 1))
    device = device if device is not None else generator.device
    with eval_mode(generator):
        out = apply_tiled(padded(generator, generator.size_multiple, scale), colour, scale, tile=tile, margin=margin,
                          out_channels=generator.out_channels, device=device)
    if keep_grey and was_grey and out.ndim == 3:
        out = to_luma(out)
    if alpha is not None:
        h, w = out.shape[:2]
        resized = np.asarray(Image.fromarray(alpha).resize((w, h), Image.BICUBIC))
        rgb = out if out.ndim == 3 else np.repeat(out[..., None], 3, axis=2)
        out = np.concatenate([rgb, resized[..., None]], axis=2)
    return out


def output_path(input_path: Path, out_dir: Path, taken: set[Path]) -> Path:
    """``out_dir/<stem>.png``; ``<stem>-2.png``, ... when two inputs share a stem."""
    path, k = out_dir / f"{input_path.stem}.png", 1
    while path in taken:
        k += 1
        path = out_dir / f"{input_path.stem}-{k}.png"
    taken.add(path)
    return path


def process_files(
    generator: Translator,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    tile: int | None = 128,
    margin: int = 16,
    keep_grey: bool = True,
    device: torch.device | str | None = None,
    run: str = "",
    on_written: Callable[[Path, Path, tuple[int, ...], tuple[int, ...]], None] | None = None,
) -> list[Path]:
    """Apply ``generator`` to every input file and write ``out_dir/<stem>.png`` (with provenance).

    Every input is checked (exists, decodes) before any work, so a typo fails fast.
    """
    from PIL import Image

    if not inputs:
        raise UserError("give at least one input image")
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.is_file():
            raise UserError(f"input image not found: {p}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out must be a folder, '{out}' is a file")
    out.mkdir(parents=True, exist_ok=True)
    gid = getattr(generator, "meta", {}).get("weights_id") or weights_hash(generator)
    written, taken = [], set()
    for p in paths:
        image = read_input(p)
        result = apply_generator(generator, image, tile=tile, margin=margin, keep_grey=keep_grey, device=device)
        target = output_path(p, out, taken)
        meta = provenance(generator, seed="", source=p.name, scale=int(getattr(generator, "scale", 1)),
                          generator=gid, **({"run": run} if run else {}))
        meta = watermark.mark_pixels(result, meta)  # in place: no second copy of a large output
        save_png(Image.fromarray(result), target, meta)
        written.append(target)
        if on_written is not None:
            on_written(p, target, image.shape, result.shape)
    return written
