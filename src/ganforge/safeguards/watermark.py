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


def _resize(y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of a 2-D float64 array."""
    return F.interpolate(y[None, None], size=size, mode="bilinear", antialias=True, align_corners=False)[0, 0]


def _luma(image: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(image, dtype=np.float64))
    if x.dim() == 2:
        return x
    if x.shape[2] == 1:
        return x[..., 0]
    return x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2]


def _projections(y: torch.Tensor, key: str) -> torch.Tensor:
    """``p_k`` of every bit: the band's DCT coefficients of the canonical luma on the key's directions."""
    c = _dct()
    spectrum = c @ _resize(y, (CANONICAL, CANONICAL)) @ c.T
    return spectrum.flatten()[_band()] @ _secrets(key)[0]


def _offsets(p: torch.Tensor, dither: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Signed distance from ``p`` to the nearest point of bit ``bits``' lattice (in ``[-STEP/2, STEP/2)``)."""
    shift = dither + bits * STEP / 2
    return torch.remainder(p - shift + STEP / 2, STEP) - STEP / 2


def embed(image: np.ndarray, bits: np.ndarray, key: str = DEFAULT_KEY, passes: int = 4) -> np.ndarray:
    """``image`` (uint8 ``[H, W]`` or ``[H, W, C]``, C = 1, 3 or 4; alpha untouched) with ``bits`` written in.

    Deterministic: the same image, bits and key give the same bytes.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"watermark.embed takes uint8 [H, W] or [H, W, C] images, got {image.dtype} {image.shape}")
    directions, dither = _secrets(key)
    target_bits = torch.from_numpy(np.asarray(bits, dtype=np.float64))
    colour = image[..., :3] if image.ndim == 3 and image.shape[2] == 4 else image
    work = torch.from_numpy(colour.astype(np.float64))
    height, width = work.shape[:2]
    c = _dct()
    for _ in range(passes):  # each pass corrects what rounding, clipping and resampling left
        rounded = torch.round(work).clamp(0, 255)
        move = -_offsets(_projections(_luma(rounded.numpy()), key), dither, target_bits)
        if move.abs().max() < 0.05 * STEP:
            break
        change = torch.zeros(CANONICAL * CANONICAL, dtype=torch.float64)
        change[_band()] = directions @ move
        delta = c.T @ change.view(CANONICAL, CANONICAL) @ c  # the wanted change of the canonical luma
        full = _resize(delta, (height, width))
        for _ in range(2):  # so that resizing ``full`` back gives ``delta``
            full = full + _resize(delta - _resize(full, (CANONICAL, CANONICAL)), (height, width))
        work = (work + (full[..., None] if work.dim() == 3 else full)).clamp(0, 255)
    out = torch.round(work).clamp(0, 255).numpy().astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        out = np.concatenate([out, image[..., 3:]], axis=2)
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
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    _, dither = _secrets(key)
    p = _projections(_luma(image), key)
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


def mark(image: "Image.Image", metadata: dict[str, Any] | None) -> tuple["Image.Image", dict[str, Any]]:
    """``image`` watermarked when ``metadata`` says it is generated (``synthetic=true``), and the metadata to
    write with it (``watermark``: the method, ``watermark_key_id``). ``watermark=off`` in the metadata (an explicit
    ``--no-watermark``) leaves the image as it is and is written as such; other images pass unchanged."""
    from PIL import Image

    metadata = dict(metadata or {})
    if str(metadata.get("synthetic", "")).lower() != "true" or metadata.get("watermark") == "off":
        return image, metadata
    if not _ENABLED.get():
        metadata["watermark"] = "off"  # the opt-out is explicit and recorded
        return image, metadata
    key = active_key()
    mode = image.mode
    pixels = np.asarray(image.convert("RGBA" if "A" in mode else ("L" if mode in ("L", "1", "I", "F") else "RGB")))
    marked = Image.fromarray(embed(pixels, payload(key, str(metadata.get("generator", ""))), key))
    metadata.update(watermark=METHOD, watermark_key_id=f"{key_id(key):04x}")
    return marked, metadata


__all__ = ["BITS", "DEFAULT_KEY", "METHOD", "Reading", "active_key", "embed", "key_id", "mark", "payload", "read", "settings"]
