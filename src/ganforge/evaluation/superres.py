"""Scores of super-resolution runs: PSNR/SSIM on benchmark folders (Set5, Set14), beside bicubic.

The protocol is :mod:`ganforge.metrics.psnr_ssim`'s, the field's: each high-resolution image
is cropped to a multiple of the scale, its low-resolution input made with MATLAB's ``imresize``
(:func:`~ganforge.metrics.psnr_ssim.bicubic_upscale`), the *whole* input upscaled by the
generator (tiled with :func:`~ganforge.inference.apply_generator`, so any size fits in memory),
and PSNR/SSIM computed on luma Y with ``scale`` pixels shaved off every border. Grey images
(Set14's ``bridge``) are upscaled as grey (the output's luma) and scored on their own values,
as the bicubic baseline is.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..config import MAX_SIDE, build_dataclass, ranged
from ..core import IMAGE_SUFFIXES, resolve_device
from ..errors import UserError
from ..inference import apply_generator
from ..metrics import lpips
from ..metrics.psnr_ssim import bicubic_upscale, psnr, read_image, ssim
from ..models import is_translator
from ..rundir import load_generator
from .api import EvalRequest, RunLike, register_run_evaluator
from .registry import metric_names

#: Default benchmark folders: none. Set5 and Set14 do not ship with ganforge, so a run is scored
#: on the folders given (``--real DIR[,DIR]`` or ``recipe_options.eval_sets``), or not at all.
DEFAULT_EVAL_SETS: list[str] = []

#: The one-line error when no folder is given.
NO_SETS = (
    "no super-resolution test folders: give --real DIR[,DIR] (folders of high-resolution images, e.g. the "
    "Set5 and Set14 benchmarks) or set recipe_options.eval_sets=[DIR, ...] when training"
)

#: What :func:`evaluate_sr` reports per folder, in this order (``<set>_<key>``).
SET_KEYS = ("psnr", "ssim", "lpips", "bicubic_psnr", "bicubic_ssim", "bicubic_lpips")

Upscaler = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass
class SREvalOptions:
    """The ``recipe_options`` of a super-resolution run that its evaluation reads.

    The ``srgan`` recipe's options extend these (:class:`ganforge.training.srgan.SRGANRecipe.Options`).
    """

    eval_sets: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_EVAL_SETS))
    eval_tile: int = ranged(128, 1, MAX_SIDE)  # LR tile side for evaluation on whole images
    eval_margin: int = ranged(16, 0, MAX_SIDE)  # LR context pixels around each tile

    @classmethod
    def of(cls, recipe_options: dict[str, Any] | None) -> SREvalOptions:
        """The evaluation options among a run's ``recipe_options`` (the others are the recipe's)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return build_dataclass(cls, {k: v for k, v in (recipe_options or {}).items() if k in names}, "recipe_options")


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
        crop = (slice(scale, -scale), slice(scale, -scale))
        return float(lpips.lpips_distances(lpips_model, image[crop], hr[crop])[0])

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
    return {**{k: means[k] for k in SET_KEYS if k in means}, "images": len(rows), "per_image": rows}


def set_name(folder: str | Path) -> str:
    """The name a benchmark folder's scores go under (``set5`` for ``.../Set5``)."""
    return Path(folder).name.lower() or "set"


def folder_list(folders: str | Sequence[str | Path]) -> list[str | Path]:
    """Folders given as a list or a comma-separated string (``--real DIR[,DIR]``)."""
    return [f for f in (folders.split(",") if isinstance(folders, str) else folders) if str(f).strip()]


@register_run_evaluator("srgan")
def evaluate_sr(
    run: RunLike, *, sets: Sequence[str | Path] | None = None, tile: int | None = None, margin: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Score a super-resolution run on its benchmark folders (``ganforge eval RUN_DIR``).

    Args:
        run: the run directory, or an :class:`~ganforge.evaluation.api.EvalRequest`. Of the
            request's fields (``fields`` sets them), these are read:

            * ``metrics``: None, or a subset of ``psnr, ssim, lpips`` (PSNR and SSIM are always
              computed; LPIPS when asked for, or by default when :func:`ganforge.metrics.lpips.available`);
            * ``n``: at most the first ``n`` images of each folder;
            * ``real``: folders of high-resolution images, as a list or a comma-separated string
              (``--real``);
            * ``device``: where the generator runs.

            Super-resolution has no feature extractor, batches or latents: the other fields
            are not read.
        sets, tile, margin: folders (when ``real`` is not given) and tiling; default: the
            run's ``eval_sets``, ``eval_tile``, ``eval_margin`` options (:class:`SREvalOptions`).

    Returns:
        ``{"<set>_psnr", "<set>_ssim", "<set>_bicubic_psnr", "<set>_bicubic_ssim", "<set>_images", ...,
        "scale", "sets"}``.
    """
    request = EvalRequest.of(run, **fields)
    wanted = metric_names(request.metrics or [])
    unknown = [m for m in wanted if m not in ("psnr", "ssim", "lpips")]
    if unknown:
        raise UserError(f"super-resolution runs are scored with psnr, ssim and lpips, not {', '.join(unknown)}")
    options = SREvalOptions.of(request.config.recipe_options)
    if request.real is not None:
        sets = folder_list(request.real)
    folders = list(sets if sets is not None else options.eval_sets)
    if not folders:
        raise UserError(NO_SETS)
    generator = load_generator(request.run_dir, resolve_device(request.device))
    if not is_translator(generator) or int(getattr(generator, "scale", 1)) < 2:
        raise UserError(f"'{request.run_dir}' does not hold a super-resolution generator")
    scale = int(generator.scale)
    tile = tile if tile is not None else options.eval_tile
    margin = margin if margin is not None else options.eval_margin

    def upscale(lr: np.ndarray) -> np.ndarray:
        return apply_generator(generator, lr, tile=tile, margin=margin, keep_grey=True)

    lpips_model = lpips.load_lpips() if "lpips" in wanted or (not wanted and lpips.available()) else None
    results: dict[str, Any] = {}
    for folder in folders:
        name = set_name(folder)
        scores = score_folder(folder, scale, upscale, request.n, lpips_model)
        for key in (*SET_KEYS, "images"):
            if key in scores:
                results[f"{name}_{key}"] = scores[key]
    results.update(scale=scale, sets=",".join(str(f) for f in folders))
    return results


__all__ = [
    "DEFAULT_EVAL_SETS",
    "SREvalOptions",
    "evaluate_sr",
    "folder_list",
    "image_files",
    "score_folder",
    "set_name",
]
