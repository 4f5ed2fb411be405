"""An invisible, keyed watermark for generated images: spread-transform dither modulation on a canonical grid.

Every image ganforge writes carries 64 bits: a 16-bit key id, the first 32 bits of the
generator's weights id and a CRC-16 of the two. Where they live, and why it survives:

* **A canonical grid.** The luma ``Y = 0.299 R + 0.587 G + 0.114 B`` is resized (bilinear,
  antialiased) to ``32 x 32`` whatever the image's size, and the bits are written into the
  low frequencies of its orthonormal 2-D DCT (``1 <= u + v <= 16``). Resizing the image,
  up or down, leaves those frequencies where they were, so the reader finds them at any size;
  JPEG's quantization acts mostly on the higher frequencies of its 8x8 blocks.
* **Spread transform** (Chen & Wornell 2001). Bit ``k`` is carried by the projection
  ``p_k = <c, u_k>`` of the band's coefficients ``c`` on a keyed direction ``u_k`` (the 64
  directions are orthonormal: a QR of a Gaussian matrix seeded by the key), so each bit is
  spread over every coefficient of the band and a change of one coefficient moves all of
  them a little.
* **Dither modulation** (quantization index modulation). ``p_k`` is moved to the nearest
  point of the lattice ``STEP Z + d_k + b_k STEP / 2`` (``d_k`` a keyed dither, ``b_k`` the
  bit). The reader decides each bit by which of the two interleaved lattices ``p_k`` lies
  nearer, so the image itself does not interfere (unlike additive spread spectrum, where
  the picture's own projection is noise); a bit flips only when an attack moves ``p_k`` by
  more than ``STEP / 4``. The change per bit is at most ``STEP / 2`` along ``u_k`` (mean
  square ``STEP^2 / 12``), which sets the distortion: ``STEP = 32`` gives about 40 dB PSNR on 64x64 images.

The change is computed on the canonical grid, brought to the image's size (bilinear, a few
corrections so that the canonical resize of the result carries exactly the intended change,
also where pixels clip at 0 or 255) and added to every colour channel alike (so the luma
changes by it and the hue does not). What it does not survive: crops and rotations (the grid
moves), strong blur, and anyone who knows the key (or tries the default one) and writes
other bits. See docs/safeguards.md for the measured figures.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from . import is_generated

if TYPE_CHECKING:
    from PIL import Image

#: Side of the canonical grid the bits are written in (any image is resized to it to read them).
CANONICAL = 32
#: The DCT band that carries them: ``BAND[0] <= u + v <= BAND[1]`` on the canonical grid.
BAND = (1, 16)
#: Lattice step of the dither modulation (luma units of the orthonormal DCT; 0-255 pixels).
STEP = 32.0
#: Payload layout: key id, generator id (weights id prefix), CRC-16 of both.
KEY_BITS, ID_BITS, CRC_BITS = 16, 32, 16
BITS = KEY_BITS + ID_BITS + CRC_BITS
#: The key every ganforge install shares: anyone can read (and verify) default watermarks.
DEFAULT_KEY = "ganforge-default-watermark-key"
#: Fewest of the key id's 16 bits that must match for an image to count as watermarked: a random
#: image passes with probability 17 / 65,536 = 0.026% (at most one of 16 fair coins wrong).
KEY_MATCH = KEY_BITS - 1
LUMA = (0.299, 0.587, 0.114)
#: Rows of an image handled at once (float64 work is one strip, not the image).
STRIP = 64


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def key_id(key: str) -> int:
    """The 16-bit public id of a key (written in every mark it makes; the key itself never is)."""
    return int.from_bytes(_digest("id:" + key)[:2], "big")


def crc16(bits: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT (polynomial 0x1021, initial 0xFFFF) of a bit array, as 16 bits."""
    reg = 0xFFFF
    for bit in bits.astype(int).tolist():
        top = (reg >> 15) & 1
        reg = ((reg << 1) & 0xFFFF) ^ (0x1021 if top ^ bit else 0)
    return _bits(reg, 16)


def _bits(value: int, count: int) -> np.ndarray:
    return np.array([(value >> (count - 1 - i)) & 1 for i in range(count)], dtype=np.uint8)


def _value(bits: np.ndarray) -> int:
    return int("".join(str(int(b)) for b in bits), 2) if len(bits) else 0


def payload(key: str, generator_id: str) -> np.ndarray:
    """The 64 bits for ``generator_id`` (a hex weights id; its first 8 digits are kept) under ``key``."""
    hexa = "".join(c for c in str(generator_id).lower() if c in "0123456789abcdef")[: ID_BITS // 4]
    body = np.concatenate([_bits(key_id(key), KEY_BITS), _bits(int(hexa or "0", 16), ID_BITS)])
    return np.concatenate([body, crc16(body)])


@functools.lru_cache(maxsize=1)
def _dct() -> torch.Tensor:
    """Orthonormal DCT-II matrix ``[CANONICAL, CANONICAL]``: ``X = C x C^T`` is the 2-D transform."""
    n = CANONICAL
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    c = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    c[0] /= math.sqrt(2)
    return c


@functools.lru_cache(maxsize=1)
def _band() -> torch.Tensor:
    u, v = torch.meshgrid(torch.arange(CANONICAL), torch.arange(CANONICAL), indexing="ij")
    return ((u + v >= BAND[0]) & (u + v <= BAND[1])).flatten().nonzero().flatten()


@functools.lru_cache(maxsize=8)
def _secrets(key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The key's orthonormal directions ``[band, BITS]`` and dithers ``[BITS]`` in ``[0, STEP)``."""
    g = torch.Generator().manual_seed(int.from_bytes(_digest("directions:" + key)[:8], "big") % 2**63)
    directions = torch.linalg.qr(torch.randn(len(_band()), BITS, generator=g, dtype=torch.float64))[0]
    dither = torch.rand(BITS, generator=g, dtype=torch.float64) * STEP
    return directions, dither


@functools.lru_cache(maxsize=32)
def _resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``[n_out, n_in]``: torch's bilinear resize of a 1-D signal (antialiased when shrinking) as a matrix.

    The 2-D resize is separable, so an image ``Y [H, W]`` resizes to ``R_H Y R_W^T``: the watermark
    works with these small matrices and never holds a float copy of a large image.
    """
    columns = []
    for start in range(0, n_in, 1024):
        width = min(n_in, start + 1024) - start
        eye = torch.zeros(n_in, width, dtype=torch.float64)
        eye[torch.arange(start, start + width), torch.arange(width)] = 1
        columns.append(F.interpolate(eye[None, None], size=(n_out, width), mode="bilinear", antialias=True,
                                     align_corners=False)[0, 0])
    return torch.cat(columns, dim=1)


def _luma(pixels: np.ndarray) -> torch.Tensor:
    """Luma ``[H, W]`` (float64) of uint8 ``[H, W]`` or ``[H, W, C]`` pixels (alpha ignored)."""
    x = torch.from_numpy(np.asarray(pixels, dtype=np.float64))
    if x.dim() == 2 or x.shape[2] < 3:
        return x if x.dim() == 2 else x[..., 0]
    return x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2]


def _strips(height: int) -> Iterator[slice]:
    """Row blocks of an image, so that float work never spans a whole large image."""
    for start in range(0, height, STRIP):
        yield slice(start, min(height, start + STRIP))


def _canonical(pixels: np.ndarray) -> torch.Tensor:
    """The luma resized to ``CANONICAL x CANONICAL``: ``R_H Y R_W^T``, summed over row strips."""
    rows, cols = _resize_matrix(pixels.shape[0], CANONICAL), _resize_matrix(pixels.shape[1], CANONICAL)
    return sum((rows[:, s] @ _luma(pixels[s]) @ cols.T for s in _strips(pixels.shape[0])),
               torch.zeros(CANONICAL, CANONICAL, dtype=torch.float64))


def _projections(pixels: np.ndarray, key: str) -> torch.Tensor:
    """``p_k`` of every bit: the band's DCT coefficients of the canonical luma on the key's directions."""
    c = _dct()
    return (c @ _canonical(pixels) @ c.T).flatten()[_band()] @ _secrets(key)[0]


@functools.lru_cache(maxsize=16)
def _writer(height: int, width: int, key: str) -> torch.Tensor:
    """``[CANONICAL^2, BITS]``: the smallest change ``X`` (canonical grid) that moves the bits' projections by
    ``m``, as ``X = W m``, for images of this size.

    A change ``X`` becomes the pixel change ``E = U_H X U_W^T`` (bilinear, canonical -> image size), which
    the reader sees as ``A X B^T`` with ``A = R_H U_H``, ``B = R_W U_W`` (image -> canonical): linear, so the
    projections move by ``L vec(X)``, ``L = D^T S ((C A) kron (C B))`` (``S`` the band's rows, ``D`` the
    directions). ``W`` is ``L``'s pseudo-inverse: exact for images at least as large as the grid, the
    least-squares best where the image holds fewer pixels than the grid (then the passes of :func:`embed`
    make up the rest).
    """
    c = _dct()
    a = _resize_matrix(height, CANONICAL) @ _resize_matrix(CANONICAL, height)
    b = _resize_matrix(width, CANONICAL) @ _resize_matrix(CANONICAL, width)
    lift = torch.kron(c @ a, c @ b)[_band()]  # [band, CANONICAL^2]: vec(X) -> the band's coefficients
    return torch.linalg.pinv(_secrets(key)[0].T @ lift, rtol=1e-6)


def _offsets(p: torch.Tensor, dither: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Signed distance from ``p`` to the nearest point of bit ``bits``' lattice (in ``[-STEP/2, STEP/2)``)."""
    shift = dither + bits * STEP / 2
    return torch.remainder(p - shift + STEP / 2, STEP) - STEP / 2


def embed(image: np.ndarray, bits: np.ndarray, key: str = DEFAULT_KEY, passes: int = 4, *,
          inplace: bool = False) -> np.ndarray:
    """``image`` (uint8 ``[H, W]`` or ``[H, W, C]``, C = 1, 3 or 4; alpha untouched) with ``bits`` written in.

    Each pass measures the projections of the image so far and adds (rounded, clipped to 0..255) the
    smallest change that puts them on their lattices (:func:`_writer`); the first does nearly all, the
    others correct for rounding and for clipped pixels. Deterministic: the same image, bits and key give
    the same bytes. Memory: the output (``image`` itself with ``inplace``) and one strip of rows in float64.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"watermark.embed takes uint8 [H, W] or [H, W, C] images, got {image.dtype} {image.shape}")
    if inplace and not image.flags.writeable:
        raise ValueError("watermark.embed(inplace=True) needs a writable array")
    height, width = image.shape[:2]
    _, dither = _secrets(key)
    target = torch.from_numpy(np.asarray(bits, dtype=np.float64))
    writer = _writer(height, width, key)
    up_rows, up_cols = _resize_matrix(CANONICAL, height), _resize_matrix(CANONICAL, width)
    out = image if inplace else image.copy()
    colour = slice(0, 3) if image.ndim == 3 and image.shape[2] == 4 else slice(None)
    for _ in range(passes):
        move = -_offsets(_projections(out, key), dither, target)
        if move.abs().max() < 0.05 * STEP:
            break
        change = (writer @ move).view(CANONICAL, CANONICAL)
        for s in _strips(height):  # out += U_H X U_W^T, rounded and clipped, a strip at a time
            delta = up_rows[s] @ change @ up_cols.T
            rows = torch.from_numpy(out[s][..., colour].astype(np.float64))
            rows += delta[..., None] if rows.dim() == 3 else delta
            out[s, ..., colour] = rows.round_().clamp_(0, 255).numpy().astype(np.uint8)
    return out


@dataclasses.dataclass
class Reading:
    """What :func:`read` finds in an image."""

    bits: np.ndarray  #: the 64 bits read
    found: bool  #: the key id matches (at most one of its 16 bits wrong): the image carries this key's mark
    intact: bool  #: the CRC matches too: the generator id is exactly as written
    generator_id: str  #: the 32-bit generator id read (8 hex digits; a prefix of the weights id)
    confidence: float  #: mean margin of the bits, 1 = on the lattice, about 0.5 for an unmarked image

    def as_dict(self) -> dict[str, object]:
        return {"found": self.found, "intact": self.intact, "generator_id": self.generator_id,
                "confidence": round(self.confidence, 4), "bits": "".join(str(int(b)) for b in self.bits)}


def read(image: np.ndarray, key: str = DEFAULT_KEY) -> Reading:
    """Read the 64 bits of ``image`` (uint8 ``[H, W]`` or ``[H, W, C]``) under ``key``."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"watermark.read takes uint8 [H, W] or [H, W, C] images, got {image.dtype} {image.shape}")
    _, dither = _secrets(key)
    p = _projections(image, key)
    zero = _offsets(p, dither, torch.zeros(BITS, dtype=torch.float64)).abs()
    one = _offsets(p, dither, torch.ones(BITS, dtype=torch.float64)).abs()
    bits = (one < zero).numpy().astype(np.uint8)
    margin = 1 - 4 * torch.minimum(zero, one) / STEP  # 1 on a lattice point, 0 half-way between the two
    matched = int((bits[:KEY_BITS] == _bits(key_id(key), KEY_BITS)).sum())
    body = bits[: KEY_BITS + ID_BITS]
    return Reading(bits=bits, found=matched >= KEY_MATCH, intact=matched == KEY_BITS and bool((crc16(body) == bits[-CRC_BITS:]).all()),
                   generator_id=f"{_value(bits[KEY_BITS:KEY_BITS + ID_BITS]):08x}", confidence=float(margin.mean()))


# --------------------------------------------------------------------------- marking what ganforge writes

#: Name of the method, written in the ``watermark`` metadata field of every marked file.
METHOD = "ganforge-stdm-1"
_KEY: contextvars.ContextVar[str] = contextvars.ContextVar("ganforge_watermark_key", default=DEFAULT_KEY)
_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("ganforge_watermark_enabled", default=True)


@contextlib.contextmanager
def settings(key: str | None = None, enabled: bool = True) -> Iterator[None]:
    """Inside the block, mark with ``key`` (``--watermark-key``; None: the default key), or not at all with
    ``enabled=False`` (``--no-watermark``: the files then say ``watermark=off``)."""
    tokens = _KEY.set(key or DEFAULT_KEY), _ENABLED.set(enabled)
    try:
        yield
    finally:
        _KEY.reset(tokens[0])
        _ENABLED.reset(tokens[1])


def active_key() -> str:
    return _KEY.get()


def _plan(metadata: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    """The metadata to write with an image, and whether to mark its pixels.

    Marked: images that say they are generated (``synthetic=true``). Left alone: the others, images
    already marked (``watermark`` is the method) and an explicit opt-out (``watermark=off`` in the
    metadata, or :func:`settings` with ``enabled=False``, which is then written as ``watermark=off``).
    """
    metadata = dict(metadata or {})
    if not is_generated(metadata) or metadata.get("watermark") in ("off", METHOD):
        return metadata, False
    if not _ENABLED.get():
        metadata["watermark"] = "off"  # the opt-out is explicit and recorded
        return metadata, False
    metadata.update(watermark=METHOD, watermark_key_id=f"{key_id(active_key()):04x}")
    return metadata, True


def _embed_for(pixels: np.ndarray, metadata: dict[str, Any]) -> None:
    key = active_key()
    embed(pixels, payload(key, str(metadata.get("generator", ""))), key, inplace=True)


def mark_pixels(pixels: np.ndarray, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Watermark writable uint8 ``pixels`` in place if their ``metadata`` asks for it (see :func:`_plan`);
    return the metadata to write with them. Large outputs use this to avoid a second copy."""
    metadata, needed = _plan(metadata)
    if needed:
        _embed_for(pixels, metadata)
    return metadata


def mark_frames(frames: np.ndarray, metadata: dict[str, Any] | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Every frame of uint8 clips ``[T, H, W, C]`` marked (a copy) if ``metadata`` asks for it, and the metadata."""
    metadata, needed = _plan(metadata)
    if not needed:
        return frames, metadata
    frames = np.array(frames)
    for frame in frames:
        _embed_for(frame, metadata)
    return frames, metadata


def mark(image: "Image.Image", metadata: dict[str, Any] | None) -> tuple["Image.Image", dict[str, Any]]:
    """:func:`mark_pixels` for a PIL image: the image to write (a new one when marked) and its metadata."""
    from PIL import Image

    metadata, needed = _plan(metadata)
    if not needed:
        return image, metadata
    if image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode else ("L" if image.mode in ("1", "I", "F") else "RGB"))
    pixels = np.array(image)  # the one copy: marked in place, then the new image
    _embed_for(pixels, metadata)
    return Image.fromarray(pixels), metadata


__all__ = ["BITS", "DEFAULT_KEY", "METHOD", "Reading", "active_key", "embed", "key_id", "mark", "mark_frames",
           "mark_pixels", "payload", "read", "settings"]
