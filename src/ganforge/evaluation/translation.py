"""Scores of image-to-image runs (pix2pix, CycleGAN) on held-out pairs: mean L1 and feature metrics (FID, ...).

A translator is judged on a test split it never saw: every test input is translated (whole
images at the training size, in eval mode) and compared

* pixel by pixel with its own target: ``l1 = mean |output - target|`` over all pixels and
  channels of the uint8 images, divided by 255 (so in [0, 1]; the training loss is the same
  quantity on the [-1, 1] scale, i.e. twice as large);
* as a set with the set of real targets, through the run's ``eval.metrics`` (FID by
  default; ``fid``, ``kid``, ``pr``, ``dc`` accepted). Test sets are small (Facades: 106
  pairs), far below the 2,048 dimensions of Inception features: FID from so few samples is
  biased upwards and noisy, so it is only comparable between models scored on the same
  test set (call it FID-106), never with published FID-50k figures;
* pair by pair, perceptually: ``lpips``, the mean LPIPS between each output and its target
  (:mod:`ganforge.metrics.lpips`), when asked for, or by default when its package and
  weights are installed.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import torch

from .. import data as data_module
from ..core import resolve_device, to_uint8
from ..errors import UserError
from ..extractors import check_weights
from ..metrics import lpips
from ..models import Translator, is_translator, weights_hash
from ..models.base import generate
from ..rundir import load_generator
from ..sampling import provenance
from ..viz import comparison_grid, save_png
from .api import EvalRequest, Evaluator, RunLike, register_run_evaluator, uses_features
from .registry import metric_names, resolve_metrics
from .sources import Source, dataset_source

#: Test pairs shown in ``comparison-<split>.png`` by :func:`evaluate_translation`.
COMPARISON_COUNT = 8


def mean_l1(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """``mean |outputs - targets| / 255`` of uint8 images ``[N, C, H, W]`` (float64), in [0, 1]."""
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape")
    return float((outputs.double() - targets.double()).abs().mean() / 255.0)


@register_run_evaluator("pix2pix", "cyclegan")
def evaluate_translation(
    run: RunLike, *, split: str = "test", comparison: str | Path | None = None, **fields: Any
) -> dict[str, Any]:
    """Score an image-to-image run on the ``split`` pairs of its data set.

    The test data is the run's ``data`` section with ``split`` and no augmentation, read at
    the size the generator trained on (``data.crop`` when set, else ``data.resolution``),
    as pix2pix tests on whole 256x256 images after training on 256 crops of 286 ones.

    Args:
        run: the run directory, or an :class:`~ganforge.evaluation.api.EvalRequest`. Of the
            request's fields (``fields`` sets them), these are read:

            * ``metrics``: besides ``l1``, set metrics and ``lpips`` (default: the run's
              ``eval.metrics``, plus ``lpips`` where available; an empty list scores ``l1``
              alone, without a feature extractor);
            * ``n``: at most the first ``n`` test pairs (default: all);
            * ``extractor``, ``extractor_weights``, ``batch_size``: defaults from the run's ``eval``;
            * ``device``, ``progress``, ``kid_subset_size``;
            * ``real`` must be None (the references are the test targets); ``seed`` is not
              read (translation is deterministic).
        split: the held-out split (``test``; ``val`` where the data set has one).
        comparison: also write a grid ``input | output | target`` of the first
            :data:`COMPARISON_COUNT` pairs to this PNG (with provenance metadata).

    Returns:
        ``{"l1", <metric keys>, "split", "n_real", "n_fake", "extractor"}``.
    """
    request = EvalRequest.of(run, **fields)
    if request.real is not None:
        raise UserError("an image-to-image run is scored against its own test targets: give no --real")
    cfg, run_dir = request.config, request.run_dir
    e = cfg.eval
    wanted = metric_names(request.metrics if request.metrics is not None else e.metrics)
    with_lpips = "lpips" in wanted or (request.metrics is None and lpips.available())
    wanted = [m for m in wanted if m != "lpips"]
    names = resolve_metrics(wanted) if wanted else []
    choice = request.extractor_choice()
    if uses_features(names):
        check_weights(choice.name or "inception", choice.weights)  # before the test pairs are read and translated
    lpips_model = lpips.load_lpips() if with_lpips else None
    device = resolve_device(request.device)
    generator = load_generator(run_dir, device)
    if not is_translator(generator):
        raise UserError(f"'{run_dir}' holds a latent-variable generator, not an image-to-image one")
    size = cfg.data.crop or cfg.data.resolution
    data_cfg = dataclasses.replace(cfg.data, split=split, resolution=size, crop=None, hflip=False, max_samples=request.n,
                                   unpaired=False)  # scored on pairs even when trained unpaired
    dataset = data_module.create(data_cfg)
    if dataset.sources is None or not dataset.paired:
        raise UserError(f"data set '{dataset.name}' has no paired inputs to translate on split '{split}'")
    batch = request.batch_size or e.batch_size
    outputs = to_uint8_batches(generator, dataset.to_model(dataset.sources), batch)
    targets = dataset.data
    if outputs.shape != targets.shape:
        raise UserError(f"the generator made {tuple(outputs.shape[1:])} images for {tuple(targets.shape[1:])} targets")
    results: dict[str, Any] = {"l1": mean_l1(outputs, targets)}
    if lpips_model is not None:
        results["lpips"] = float(lpips.lpips_distances(lpips_model, outputs, targets, batch).mean())
    scores: dict[str, Any] = {}
    if names:
        evaluator = Evaluator(
            dataset_source(dataset, data_cfg), names, extractor=choice.name or "inception", extractor_weights=choice.weights,
            device=device, batch_size=batch, progress=request.progress, kid_subset_size=request.kid_subset_size,
        )
        with warnings.catch_warnings():  # the small-sample FID bias is stated in this module's docs
            warnings.filterwarnings("ignore", message="FID from .* biased upwards")
            scores = evaluator(Source(outputs, f"{run_dir} on {split}", {"generated": True, "data": dataset.name}))
    results.update({k: v for k, v in scores.items() if k not in ("n_real", "n_fake", "extractor")})
    results.update(split=split, n_real=len(targets), n_fake=len(outputs), extractor=scores.get("extractor"))
    if comparison is not None:
        write_comparison(comparison, generator, dataset.sources, outputs, targets, cfg.name, split)
    return results


def to_uint8_batches(generator: Translator, sources: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The translator's outputs for ``sources`` (model range) as uint8 images, batch by batch."""
    generator.check_input(sources)
    return generate(generator, sources, batch_size=batch_size, convert=to_uint8, forward=lambda x, _: generator(x))


def write_comparison(
    path: str | Path, generator: Translator, sources: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor,
    run: str, split: str, count: int = COMPARISON_COUNT,
) -> Path:
    """A PNG of rows ``input | output | target`` for the first ``count`` pairs, with provenance."""
    image = comparison_grid([sources[:count], outputs[:count], targets[:count]])
    metadata = provenance(generator, seed=f"{split}:first{count}", run=run, generator=weights_hash(generator))
    return save_png(image, path, metadata)


__all__ = ["COMPARISON_COUNT", "evaluate_translation", "mean_l1", "to_uint8_batches", "write_comparison"]
