"""Scores of super-resolution runs: PSNR/SSIM on benchmark folders (Set5, Set14), beside bicubic.

The protocol is :mod:`ganforge.metrics.sr`'s, the field's: each high-resolution image is
cropped to a multiple of the scale, its low-resolution input made with MATLAB's ``imresize``
(:func:`~ganforge.metrics.sr.bicubic_upscale`), the *whole* input upscaled by the generator
(tiled with :func:`~ganforge.inference.apply_generator`, so any size fits in memory), and
PSNR/SSIM computed on luma Y with ``scale`` pixels shaved off every border. Grey images
(Set14's ``bridge``) are upscaled as grey (the output's luma) and scored on their own values,
as the bicubic baseline is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import UserError
from .sr import bicubic_upscale, psnr, read_image, ssim

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")

Upscaler = Callable[[np.ndarray], np.ndarray]


def image_files(folder: str | Path) -> list[Path]:
    """The images of a benchmark folder, in name order (a one-line error if there are none)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"super-resolution test folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no images in super-resolution test folder {folder}")
    return files


def score_folder(
    folder: str | Path, scale: int, upscale: Upscaler | None = None, n: int | None = None,
    lpips_model: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Mean PSNR/SSIM (Y, border ``scale``) of ``upscale`` and of bicubic on the images of ``folder``.

    With ``lpips_model`` (:func:`ganforge.metrics.lpips.load_lpips`) also LPIPS on the RGB
    images, the same border shaved. Returns ``{"psnr", "ssim", "lpips", "bicubic_psnr",
    "bicubic_ssim", "bicubic_lpips", "images", "per_image": {...}}`` (model keys only when
    ``upscale`` is given, lpips keys only with ``lpips_model``).
    """

    def perceptual(image: np.ndarray, hr: np.ndarray) -> float:
        from .lpips import lpips_distances

        crop = (slice(scale, -scale), slice(scale, -scale))
        return float(lpips_distances(lpips_model, image[crop], hr[crop])[0])

    rows: dict[str, dict[str, float]] = {}
    for path in image_files(folder)[:n]:
        hr, lr, bicubic = bicubic_upscale(read_image(path), scale)
        row = {"bicubic_psnr": psnr(bicubic, hr, scale), "bicubic_ssim": ssim(bicubic, hr, scale)}
        if lpips_model is not None:
            row["bicubic_lpips"] = perceptual(bicubic, hr)
        if upscale is not None:
            sr = upscale(lr)
            if sr.shape != hr.shape:
                raise UserError(f"the generator made {sr.shape} from {lr.shape} for {path.name}, expected {hr.shape}")
            row.update(psnr=psnr(sr, hr, scale), ssim=ssim(sr, hr, scale))
            if lpips_model is not None:
                row["lpips"] = perceptual(sr, hr)
        rows[path.stem] = row
    keys = list(next(iter(rows.values())))
    means = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    order = ["psnr", "ssim", "lpips", "bicubic_psnr", "bicubic_ssim", "bicubic_lpips"]
    return {**{k: means[k] for k in order if k in means}, "images": len(rows), "per_image": rows}


def set_name(folder: str | Path) -> str:
    return Path(folder).name.lower() or "set"


def evaluate_sr(
    run_dir: str | Path,
    metrics: str | Sequence[str] | None = None,
    n: int | None = None,
    extractor: str | None = None,
    extractor_weights: str | None = None,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    progress: bool = False,
    *,
    real: Any = None,
    seed: int = 0,
    kid_subset_size: int | None = None,
    sets: Sequence[str | Path] | None = None,
    tile: int | None = None,
    margin: int | None = None,
) -> dict[str, Any]:
    """Score a super-resolution run on its benchmark folders (``ganforge eval RUN_DIR``).

    Args:
        run_dir: the run directory.
        metrics: None, or a subset of ``psnr, ssim, lpips`` (PSNR and SSIM are always
            computed; LPIPS when asked for, or by default when :func:`ganforge.metrics.lpips.available`).
        n: at most the first ``n`` images of each folder.
        real: folders of high-resolution images, as a list or a comma-separated string
            (``--real``); default: the run's ``recipe_options.eval_sets``.
        device: where the generator runs.
        sets, tile, margin: folders and tiling (default: the run's ``eval_sets``,
            ``eval_tile``, ``eval_margin`` options).
        extractor, extractor_weights, batch_size, progress, seed, kid_subset_size: unused
            (accepted for :func:`~ganforge.evaluation.evaluate_run`'s signature).

    Returns:
        ``{"<set>_psnr", "<set>_ssim", "<set>_bicubic_psnr", "<set>_bicubic_ssim", "<set>_images", ...,
        "scale", "sets"}``.
    """
    from ..evaluation import metric_names, resolve_device, run_config
    from ..inference import apply_generator
    from ..models import is_translator
    from ..rundir import load_generator
    from ..training.recipes import RECIPES

    del extractor, extractor_weights, batch_size, progress, seed, kid_subset_size
    wanted = metric_names(metrics or [])
    unknown = [m for m in wanted if m not in ("psnr", "ssim", "lpips")]
    if unknown:
        raise UserError(f"super-resolution runs are scored with psnr, ssim and lpips, not {', '.join(unknown)}")
    cfg = run_config(run_dir)
    options = RECIPES.get(cfg.recipe).check_options(cfg.recipe_options)
    if real is not None:
        sets = [s for s in (real.split(",") if isinstance(real, str) else real) if str(s).strip()]
    folders = list(sets if sets is not None else options.eval_sets)
    if not folders:
        raise UserError("no super-resolution test folders: set recipe_options.eval_sets or give --real DIR[,DIR]")
    generator = load_generator(run_dir, resolve_device(device))
    if not is_translator(generator) or int(getattr(generator, "scale", 1)) < 2:
        raise UserError(f"'{run_dir}' does not hold a super-resolution generator")
    scale = int(generator.scale)
    tile = tile if tile is not None else options.eval_tile
    margin = margin if margin is not None else options.eval_margin

    def upscale(lr: np.ndarray) -> np.ndarray:
        return apply_generator(generator, lr, tile=tile, margin=margin, keep_grey=True)

    from . import lpips

    lpips_model = lpips.load_lpips() if "lpips" in wanted or (not wanted and lpips.available()) else None
    results: dict[str, Any] = {}
    for folder in folders:
        name = set_name(folder)
        scores = score_folder(folder, scale, upscale, n, lpips_model)
        for key in ("psnr", "ssim", "lpips", "bicubic_psnr", "bicubic_ssim", "bicubic_lpips", "images"):
            if key in scores:
                results[f"{name}_{key}"] = scores[key]
    results.update(scale=scale, sets=",".join(str(f) for f in folders))
    return results
