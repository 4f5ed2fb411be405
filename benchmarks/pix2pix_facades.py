"""pix2pix vs the L1-only U-Net on CMP Facades (labels -> photo): issue 7's acceptance study.

Trains the ``pix2pix-facades`` preset and ``pix2pix-facades-l1`` (the same U-Net, the same
data, steps, batch and seed, no discriminator) side by side, then scores both generators
on the 106 test pairs with :func:`ganforge.evaluation.translation.evaluate_translation`:

* ``l1``: mean |output - target| per pixel and channel, [0, 1] scale (lower is better);
* ``fid``: FID-106, the Fréchet Inception distance between the 106 outputs and the 106
  real test photos (the FID Inception network at 299x299). With 106 samples for 2,048-d
  features it is biased upwards and noisy: only the comparison between rows means
  something, and the bootstrap interval of the difference says how much.

Reference rows put FID-106 in context: ``inputs`` (the label maps themselves) and
``training photos`` (106 real training photos against the test photos: the floor a
perfect generator would reach on this test set). Intervals: 1,000 paired bootstrap
resamples of the test pairs for the L1 and the FID differences.

    python benchmarks/pix2pix_facades.py [--root ../shared/data/facades] [--out runs/pix2pix-facades-study]
        [--steps N] [--jobs 2] [--set KEY=VALUE ...] [--json benchmarks/results/pix2pix_facades.json]

Both runs keep their run directories (``comparison.png``: training pairs at the last step;
``comparison-test.png``: the first 8 test pairs); ``benchmarks/results/pix2pix_facades.png``
shows input | L1-only | pix2pix | target for the first 8 test pairs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"pix2pix": "pix2pix-facades", "l1": "pix2pix-facades-l1"}
GRID_PAIRS = 8


def train_one(variant: str, preset: str, out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Train one variant (in its own process) and return its timing."""
    import ganforge
    from ganforge.runtime import tune_allocator

    tune_allocator()
    start = time.perf_counter()
    run = ganforge.train(preset, out=out / variant, overrides=overrides)
    seconds = time.perf_counter() - start
    return {"variant": variant, "preset": preset, "run_dir": str(run.dir), "steps": run.step,
            "train_seconds": round(seconds, 1)}


def logged_train_seconds(run_dir: Path) -> float:
    """Training time from ``metrics.jsonl``: the sum over log lines of steps x seconds per step."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    seconds, last = 0.0, 0
    for r in records:
        if "sec_per_step" in r:
            seconds += (r["step"] - last) * r["sec_per_step"]
            last = r["step"]
    return round(seconds, 1)


def gram_fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID from few samples without a D x D matrix square root (for the bootstrap).

    With centred features ``X1 [n1, D]``, ``X2 [n2, D]`` and ``S_i = X_i^T X_i / (n_i - 1)``,
    the non-zero eigenvalues of ``S1 S2`` are the squared singular values of
    ``X1 X2^T / sqrt((n1 - 1)(n2 - 1))``, so ``Tr (S1 S2)^{1/2}`` is that small matrix's
    nuclear norm: exact, and an ``n x n`` SVD instead of a 2,048 x 2,048 ``sqrtm``.
    """
    x1, x2 = real.double(), fake.double()
    c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
    n1, n2 = len(x1), len(x2)
    cross = torch.linalg.svdvals(c1 @ c2.T).sum() / ((n1 - 1) * (n2 - 1)) ** 0.5
    traces = (c1 * c1).sum() / (n1 - 1) + (c2 * c2).sum() / (n2 - 1)
    return float((x1.mean(0) - x2.mean(0)).pow(2).sum() + traces - 2 * cross)


def bootstrap(values: np.ndarray, resamples: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of ``values`` over ``resamples`` resamples."""
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(resamples)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "facades"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "pix2pix-facades-study"))
    parser.add_argument("--steps", type=int, help="train.steps for both (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (1 thread each when > 1)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for both runs")
    parser.add_argument("--skip-training", action="store_true", help="score existing runs in --out")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "pix2pix_facades.json"))
    args = parser.parse_args()

    import ganforge
    from ganforge.config import parse_override
    from ganforge.data import create
    from ganforge.evaluation import Evaluator, Source, dataset_source, run_config
    from ganforge.evaluation.translation import evaluate_translation, to_uint8_batches
    from ganforge.metrics import fid_from_features
    from ganforge.sampling import provenance
    from ganforge.viz import comparison_grid, save_png

    out = Path(args.out)
    overrides: dict[str, Any] = {"data.root": args.root, "train.seed": args.seed, "train.progress": False,
                                 **dict(parse_override(s) for s in args.set)}
    if args.steps:
        overrides["train.steps"] = args.steps
    if args.jobs > 1:
        overrides["train.threads"] = 1
    runs: list[dict[str, Any]] = []
    if not args.skip_training:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(train_one, v, p, out, overrides) for v, p in VARIANTS.items()]
            for future in futures:
                runs.append(future.result())
                print(f"trained {runs[-1]['variant']}: {runs[-1]['train_seconds']:.0f} s", flush=True)
    else:
        runs = [{"variant": v, "preset": p, "run_dir": str(out / v)} for v, p in VARIANTS.items()]
    for r in runs:  # the step time alone, without start-up and sample/checkpoint writing
        r["logged_train_seconds"] = logged_train_seconds(Path(r["run_dir"]))

    torch.set_num_threads(2)
    results: dict[str, Any] = {}
    for r in runs:
        run_dir = Path(r["run_dir"])
        scores = evaluate_translation(run_dir, metrics=["fid"], extractor="inception",
                                      comparison=run_dir / "comparison-test.png")
        results[r["variant"]] = {**r, **scores}
        print(f"{r['variant']}: L1 {scores['l1']:.4f}  FID-106 {scores['fid']:.2f}", flush=True)

    # Per-image figures, reference rows and bootstrap intervals from the same test pairs.
    cfg = run_config(out / "pix2pix")
    size = cfg.data.crop or cfg.data.resolution
    test_cfg = dataclasses.replace(cfg.data, split="test", resolution=size, crop=None, hflip=False, max_samples=None)
    test = create(test_cfg)
    outputs = {v: to_uint8_batches(ganforge.load(out / v), test.to_model(test.sources), 64) for v in VARIANTS}
    per_image = {v: (o.double() - test.data.double()).abs().mean(dim=(1, 2, 3)).numpy() / 255 for v, o in outputs.items()}
    evaluator = Evaluator(dataset_source(test, test_cfg), ["fid"], extractor="inception")
    real = evaluator.features(evaluator.real, "real").features
    feats = {v: evaluator.features(Source(o, v), "fake").features for v, o in outputs.items()}
    train = create(dataclasses.replace(test_cfg, split="train"))
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: len(test)]
    references = {
        "inputs": (test.sources, evaluator.features(Source(test.sources, "inputs"), "fake").features),
        "training photos": (None, evaluator.features(Source(train.data[pick], "train"), "fake").features),
    }
    for name, (images, f) in references.items():
        row = {"fid": fid_from_features(real, f)}
        if images is not None:
            row["l1"] = float((images.double() - test.data.double()).abs().mean() / 255)
        results[f"reference: {name}"] = row

    diff_l1 = per_image["pix2pix"] - per_image["l1"]
    rng = np.random.default_rng(0)
    fid_diffs = []
    for _ in range(1000):
        idx = torch.from_numpy(rng.integers(0, len(test), len(test)))
        fid_diffs.append(gram_fid(real[idx], feats["pix2pix"][idx]) - gram_fid(real[idx], feats["l1"][idx]))
    # the fast formula is the same FID (checked here on the full sets)
    check = {v: gram_fid(real, feats[v]) - results[v]["fid"] for v in VARIANTS}
    comparison = {
        "l1_difference": float(diff_l1.mean()),
        "l1_difference_ci95": bootstrap(diff_l1, 1000),
        "pix2pix_better_l1_share": float((diff_l1 < 0).mean()),
        "fid_difference": results["pix2pix"]["fid"] - results["l1"]["fid"],
        "fid_difference_ci95": (float(np.percentile(fid_diffs, 2.5)), float(np.percentile(fid_diffs, 97.5))),
        "gram_fid_minus_fid": check,
    }

    grid = comparison_grid([test.sources[:GRID_PAIRS], outputs["l1"][:GRID_PAIRS], outputs["pix2pix"][:GRID_PAIRS],
                            test.data[:GRID_PAIRS]])
    grid_path = Path(args.json).with_suffix(".png")
    metadata = provenance(seed="test:first8", run="pix2pix_facades study",
                          columns="input | L1-only U-Net | pix2pix | target",
                          generator=",".join(ganforge.load(out / v).meta.get("weights_id", "") for v in ("l1", "pix2pix")))
    save_png(grid, grid_path, metadata)

    record = {
        "results": results,
        "comparison": comparison,
        "overrides": {k: v for k, v in overrides.items() if k != "data.root"},
        "command": "python benchmarks/pix2pix_facades.py " + " ".join(
            ([f"--steps {args.steps}"] if args.steps else []) + [f"--jobs {args.jobs}"] + [f"--set {s}" for s in args.set]),
        "grid": str(grid_path.relative_to(ROOT)) if grid_path.is_relative_to(ROOT) else str(grid_path),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "torch": torch.__version__, "load_average_at_end": os.getloadavg()},
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(json.dumps(comparison, indent=1))
    print(f"wrote {args.json} and {grid_path}")


if __name__ == "__main__":
    main()
