"""Super-resolution metrics with the field's conventions: PSNR and SSIM on the Y channel.

Published SR figures (SRCNN, SRGAN, ESRGAN, BasicSR) are computed the same way:

1. crop the high-resolution image to a multiple of the scale ("modcrop");
2. make the low-resolution input with MATLAB's ``imresize`` (bicubic, antialiased);
3. convert output and reference to luma Y (ITU-R BT.601, the ``[16, 235]`` range of
   MATLAB's ``rgb2ycbcr``), kept in floating point as BasicSR does;
4. shave ``scale`` pixels off every border, then PSNR and SSIM (Wang et al.'s Gaussian
   11x11 window, sigma 1.5, on the 0..255 range, only where the window fits).

:func:`imresize` reproduces MATLAB's resampler, so the bicubic baseline here matches the
published one (Set5 x4: 28.42 dB). Images are ``uint8`` or float arrays in ``[0, 255]``,
shaped ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2]."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``[out, P]`` and source indices ``[out, P]`` of MATLAB's 1-D resampling.

    Output pixel ``x`` (1-based) sits at input coordinate ``u = x / s + (1 - 1/s) / 2``.
    When shrinking (``s < 1``) the kernel is stretched by ``1/s`` (antialiasing), which
    low-pass filters before decimation. Out-of-range taps mirror the border (symmetric).
    """
    width = 4.0
    if scale < 1:
        width /= scale

        def kernel(x: torch.Tensor) -> torch.Tensor:
            return scale * _cubic(scale * x)
    else:
        kernel = _cubic
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None]  # 1-based
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(dim=1, keepdim=True)
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    indices = mirror[(indices.long() - 1) % (2 * in_len)]
    keep = weights.abs().sum(dim=0) > 0  # drop all-zero tap columns
    return weights[:, keep], indices[:, keep]


def _resize_dim(x: torch.Tensor, dim: int, out_len: int, scale: float) -> torch.Tensor:
    weights, indices = _contributions(x.shape[dim], out_len, scale)
    x = x.movedim(dim, -1)  # [..., in]
    gathered = x[..., indices]  # [..., out, P]
    return (gathered * weights).sum(-1).movedim(-1, dim)


def imresize(image: ArrayLike, scale: float) -> np.ndarray:
    """MATLAB ``imresize(image, scale)`` with its default bicubic kernel and antialiasing.

    Output size is ``ceil(size * scale)``; rows are resized first, then columns (MATLAB's
    order for equal factors). ``uint8`` input gives rounded ``uint8`` output, as MATLAB does;
    float input stays float64.
    """
    array = np.asarray(image)
    x = torch.from_numpy(array.astype(np.float64))
    h, w = array.shape[:2]
    out = _resize_dim(x, 0, math.ceil(h * scale), scale)
    out = _resize_dim(out, 1, math.ceil(w * scale), scale)
    result = out.numpy()
    if array.dtype == np.uint8:
        return np.clip(np.round(result), 0, 255).astype(np.uint8)
    return result


def modcrop(image: ArrayLike, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``."""
    h, w = image.shape[:2]
    return np.asarray(image)[: h - h % scale, : w - w % scale]


def rgb_to_y(image: ArrayLike) -> np.ndarray:
    """Luma in MATLAB's ``rgb2ycbcr`` convention: ``16 + (65.481 R + 128.553 G + 24.966 B)``.

    Input in ``[0, 255]`` (``[H, W, 3]``; a grey ``[H, W]`` image is its own luma and is
    returned unchanged); output float64 in ``[16, 235]``.
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        return x
    return 16.0 + x[..., :3] @ np.array([65.481, 128.553, 24.966]) / 255.0


def _prepare(output: ArrayLike, reference: ArrayLike, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    output, reference = np.asarray(output), np.asarray(reference)
    if output.shape != reference.shape:
        raise ValueError(f"images differ in shape: {output.shape} vs {reference.shape}")
    a, b = (rgb_to_y(output), rgb_to_y(reference)) if y_channel else (output.astype(np.float64), reference.astype(np.float64))
    if crop_border:
        a, b = a[crop_border:-crop_border, crop_border:-crop_border], b[crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def psnr(output: ArrayLike, reference: ArrayLike, crop_border: int = 0, y_channel: bool = True) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(255^2 / MSE)`` (inf for identical images)."""
    a, b = _prepare(output, reference, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # [1, 1, size, size]


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two 2-D planes in [0, 255] (Wang et al. 2004, 'valid' Gaussian windows).

    ``SSIM = (2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))``
    with local (Gaussian-weighted) means, variances and covariance, ``C1 = (0.01 L)^2``,
    ``C2 = (0.03 L)^2``, ``L = 255``.
    """
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = _gaussian_window()
    x = torch.from_numpy(np.ascontiguousarray(a))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(b))[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def ssim(output: ArrayLike, reference: ArrayLike, crop_border: int = 0, y_channel: bool = True) -> float:
    """Structural similarity; on Y by default, else the mean over channels."""
    a, b = _prepare(output, reference, crop_border, y_channel)
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., c], b[..., c]) for c in range(a.shape[-1])]))


def bicubic_upscale(hr: ArrayLike, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The standard SR test pair and bicubic baseline: ``(hr_cropped, lr, bicubic_sr)`` as uint8."""
    hr = modcrop(np.asarray(hr), scale)
    lr = imresize(hr, 1 / scale)
    return hr, lr, imresize(lr, scale)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as ``uint8 [H, W, 3]`` (RGB) or ``[H, W]`` (grey; alpha dropped)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if im.mode in ("L", "LA", "I", "I;16", "1") else "RGB")
        return np.asarray(im)
