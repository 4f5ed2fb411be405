"""Synthetic data for augmentation: MNIST with 6,000 labels, CAS, real-only and real + synthetic accuracy.

Protocol (one command, every number measured here):

1. **Labelled data**: 600 images per class (6,000, a fixed-seed class-balanced choice). With
   the MNIST train split under ``--mnist`` that is 10% of the 60,000 training images, tested
   on the 10,000 test images. With only the test split (``../shared/data/mnist``, what the
   machine of record has), the 6,000 come from the 10,000 test images and the other 4,000
   are the test set. Either way the subset is written as IDX files (``train-*`` = the 6,000,
   ``t10k-*`` = the test set) into ``WORK/mnist-subset``, so the GAN trains with the plain
   ``mnist`` data set (``data.root``) and ``ganforge eval RUN --metrics cas`` finds the test set.
2. **GAN**: the ``cdcgan-digits`` preset (conditional DCGAN, projection discriminator) on that
   subset at 32x32, ``--gan-steps`` steps of 64, one run per ``--gan-seeds``.
3. **Synthetic data**: ``ganforge.synthesize`` writes 1,200 images per class (class folders,
   provenance metadata) from the run's EMA generator; they are read back as an image folder.
4. **Classifier**: the ``cas`` metric's CNN and recipe (``ganforge.metrics.cas``), the same
   steps for every training set, ``--clf-seeds`` seeds each:
   ``real`` (6,000), ``synthetic`` (6,000 generated: the CAS), ``real+synthetic`` (6,000 + 6,000),
   ``real+2x synthetic`` (6,000 + 12,000). Accuracy on the real test set.

    python benchmarks/synthetic_augmentation.py [--gan-seeds 0,1] [--clf-seeds 0,1,2] [--gan-steps 2500]
        [--threads 1] [--jobs 2] [--work runs/synthetic-augmentation]
        [--json benchmarks/results/synthetic_augmentation.json]

``--jobs N`` runs N trainings at once (each with ``--threads`` threads): on a busy 2-core
machine two one-thread jobs beat one two-thread job by far.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _parallel import run_all

import ganforge
from ganforge.config import DataConfig
from ganforge.data import create as create_data
from ganforge.data.images import load_folder
from ganforge.errors import DataError
from ganforge.metrics import cas
from ganforge.synthesize import plan_per_class, synthesize

ROOT = Path(__file__).resolve().parents[1]
PRESET = "cdcgan-digits"
RESOLUTION = 32
CONDITIONS = ("real", "synthetic", "real+synthetic", "real+2x synthetic")


# --------------------------------------------------------------------------- data


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an (uncompressed) IDX file, the format the ``mnist`` data set reads."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _mnist(root: Path, split: str) -> Any:
    try:
        return create_data(DataConfig(name="mnist", root=str(root), split=split, download=False))
    except DataError:
        return None


def prepare_data(mnist: Path, folder: Path, per_class: int, seed: int) -> dict[str, Any]:
    """Write the labelled subset (``train-*``) and the test set (``t10k-*``) as IDX files into ``folder``."""
    train, test = _mnist(mnist, "train"), _mnist(mnist, "test")
    if test is None:
        raise SystemExit(f"no MNIST test split in '{mnist}' (t10k-images-idx3-ubyte[.gz]); pass --mnist DIR")
    if train is not None:
        picked = cas.balanced_subset(train.labels, per_class, seed)
        sub_x, sub_y, test_x, test_y = train.data[picked], train.labels[picked], test.data, test.labels
        source = f"MNIST train set: {len(picked):,} of {len(train):,} ({per_class} per class, seed {seed}); test: the 10,000 test images"
    else:
        picked = cas.balanced_subset(test.labels, per_class, seed)
        rest = torch.ones(len(test), dtype=torch.bool)
        rest[picked] = False
        sub_x, sub_y, test_x, test_y = test.data[picked], test.labels[picked], test.data[rest], test.labels[rest]
        source = (f"MNIST test set only (no train split in '{mnist}'): {len(picked):,} of its 10,000 images "
                  f"({per_class} per class, seed {seed}) to train on, the other {int(rest.sum()):,} to test on")
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", sub_x[:, 0].numpy())
    write_idx(folder / "train-labels-idx1-ubyte", sub_y.numpy().astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", test_x[:, 0].numpy())
    write_idx(folder / "t10k-labels-idx1-ubyte", test_y.numpy().astype(np.uint8))
    return {"data": source, "n_train": len(sub_x), "n_test": len(test_x), "per_class": per_class, "subset_seed": seed}


def labelled(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The subset (``train``) or the test set (``test``) at the GAN's 32x32."""
    ds = create_data(DataConfig(name="mnist", root=str(folder), split=split, resolution=RESOLUTION, download=False))
    return ds.data, ds.labels


# --------------------------------------------------------------------------- jobs


def gan_job(seed: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Train the conditional GAN on the subset, then synthesize 2 x per_class images per class."""
    torch.set_num_threads(args.threads)
    overrides = {
        "data.name": "mnist", "data.root": str(args.work / "mnist-subset"), "data.resolution": RESOLUTION,
        "data.download": False, "train.steps": args.gan_steps, "train.seed": seed, "train.threads": args.threads,
        "train.progress": False, "train.checkpoint_every": 100_000, "train.sample_every": 500, "eval.every": 0,
        "eval.extractor": "mnist", "eval.n": args.per_class * 10,
    }
    start = time.perf_counter()
    run = ganforge.train(PRESET, out=args.work / f"gan-seed{seed}", overrides=overrides)
    train_seconds = time.perf_counter() - start
    generator = ganforge.load(run.dir)
    start = time.perf_counter()
    synthesize(generator, plan_per_class(generator, 2 * args.per_class), args.work / f"synthetic-seed{seed}",
               seed=0, overwrite=True, source=str(run.dir))
    return {"gan_seed": seed, "steps": run.step, "batch_size": run.config.train.batch_size,
            "train_seconds": train_seconds, "synthesize_seconds": time.perf_counter() - start, "run": str(run.dir)}


def label_fidelity(folder: Path) -> dict[str, Any]:
    """Share of a synthetic folder's images that the shipped ``mnist`` classifier reads as their label, per class."""
    from ganforge.extractors.classifier import load_classifier

    x, y, names = load_folder(folder, RESOLUTION, 1, labels_from_subfolders=True, cache=False)
    predicted = load_classifier("mnist").predict(x)
    per_class = {name: float((predicted[y == k] == k).double().mean()) for k, name in enumerate(names)}
    return {"overall": float((predicted == y).double().mean()), "per_class": per_class}


def training_set(condition: str, gan_seed: int | None, args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of one training condition (synthetic images read back from their PNG folder)."""
    real_x, real_y = labelled(args.work / "mnist-subset", "train")
    if condition == "real":
        return real_x, real_y
    syn_x, syn_y, names = load_folder(args.work / f"synthetic-seed{gan_seed}", RESOLUTION, 1,
                                      labels_from_subfolders=True, cache=False)
    assert names == [str(d) for d in range(10)], names
    if condition != "real+2x synthetic":
        keep = cas.balanced_subset(syn_y, args.per_class, seed=0)  # 1x: per_class of the 2 x per_class
        syn_x, syn_y = syn_x[keep], syn_y[keep]
    if condition == "synthetic":
        return syn_x, syn_y
    return torch.cat([real_x, syn_x]), torch.cat([real_y, syn_y])


def classifier_job(condition: str, gan_seed: int | None, clf_seed: int, args: argparse.Namespace,
                   tmp: Path) -> dict[str, Any]:
    """Train the CAS classifier on one condition and test it on the real test set."""
    torch.set_num_threads(args.threads)
    x, y = training_set(condition, gan_seed, args)
    test_x, test_y = labelled(args.work / "mnist-subset", "test")
    start = time.perf_counter()
    acc = cas.train_and_test(x, y, test_x, test_y, 10, recipe=recipe(args), seed=clf_seed, threads=args.threads)
    return {"condition": condition, "gan_seed": gan_seed, "clf_seed": clf_seed, "n_train": len(x),
            "n_test": len(test_x), "accuracy": acc, "seconds": time.perf_counter() - start}


def recipe(args: argparse.Namespace) -> cas.ClassifierRecipe:
    return dataclasses.replace(cas.DEFAULT_RECIPE, steps=args.clf_steps)


# --------------------------------------------------------------------------- report


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (condition, GAN seed): accuracies per classifier seed, mean, std, gain over real-only."""
    real = {r["clf_seed"]: r["accuracy"] for r in results if r["condition"] == "real"}
    rows = []
    for condition in CONDITIONS:
        for gan_seed in sorted({r["gan_seed"] for r in results if r["condition"] == condition}, key=lambda s: (s is None, s)):
            rs = sorted((r for r in results if r["condition"] == condition and r["gan_seed"] == gan_seed),
                        key=lambda r: r["clf_seed"])
            accs = [r["accuracy"] for r in rs]
            gains = [r["accuracy"] - real[r["clf_seed"]] for r in rs if r["clf_seed"] in real]
            rows.append({
                "condition": condition, "gan_seed": gan_seed, "n_train": rs[0]["n_train"],
                "accuracy": accs, "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "gain_vs_real": statistics.mean(gains) if gains and condition != "real" else None,
            })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| training set | GAN seed | images | accuracy per classifier seed | mean ± std | vs real only (paired) |",
             "|---|---:|---:|---|---:|---:|"]
    for r in rows:
        gain = "" if r["gain_vs_real"] is None else f"{100 * r['gain_vs_real']:+.2f} pts"
        lines.append(
            f"| {r['condition']} | {'-' if r['gan_seed'] is None else r['gan_seed']} | {r['n_train']:,} | "
            f"{', '.join(f'{100 * a:.2f}' for a in r['accuracy'])} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} | {gain} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}


def write(path: Path | None, report: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist",
                        help="folder with the MNIST IDX files (train split optional)")
    parser.add_argument("--per-class", type=int, default=600, help="labelled images per class (default 600: 6,000)")
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--gan-seeds", default="0,1")
    parser.add_argument("--clf-seeds", default="0,1,2")
    parser.add_argument("--gan-steps", type=int, default=2500)
    parser.add_argument("--clf-steps", type=int, default=cas.DEFAULT_RECIPE.steps)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once, each in its own process")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "synthetic-augmentation",
                        help="subset, GAN runs and synthetic folders (kept)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "synthetic_augmentation.json")
    args = parser.parse_args()
    args.work = args.work.resolve()
    gan_seeds = [int(s) for s in args.gan_seeds.split(",")]
    clf_seeds = [int(s) for s in args.clf_seeds.split(",")]
    torch.set_num_threads(args.threads)

    report: dict[str, Any] = {
        "protocol": {**prepare_data(args.mnist, args.work / "mnist-subset", args.per_class, args.subset_seed),
                     "gan": f"{PRESET} (data.name=mnist, {RESOLUTION}x{RESOLUTION}), {args.gan_steps} steps",
                     "synthetic": f"{2 * args.per_class} per class via ganforge.synthesize (seed 0), PNG round trip",
                     "classifier": {**dataclasses.asdict(recipe(args)), "network": "ganforge.metrics.cas (shipped mnist architecture)"},
                     "threads": args.threads, "jobs": args.jobs},
        "machine": machine(), "gan_runs": [], "classifier_runs": [],
    }
    print(report["protocol"]["data"], flush=True)
    started = time.perf_counter()
    report["gan_runs"] = sorted(run_all(
        gan_job, [(s, args) for s in gan_seeds], args.jobs, None,
        lambda r: f"GAN seed {r['gan_seed']}: {r['steps']} steps in {r['train_seconds'] / 60:.1f} min",
    ), key=lambda r: r["gan_seed"])
    for r in report["gan_runs"]:
        r["label_fidelity"] = label_fidelity(args.work / f"synthetic-seed{r['gan_seed']}")
    write(args.json, report)
    jobs = [("real", None, c, args) for c in clf_seeds]
    jobs += [(cond, g, c, args) for g in gan_seeds for cond in CONDITIONS[1:] for c in clf_seeds]

    def describe(r: dict[str, Any]) -> str:
        report["classifier_runs"].append(r)
        write(args.json, report)  # a study cut short keeps what it measured
        return (f"{r['condition']:18} GAN {'-' if r['gan_seed'] is None else r['gan_seed']} classifier seed "
                f"{r['clf_seed']}: {100 * r['accuracy']:.2f}% ({r['n_train']:,} images, {r['seconds']:.0f} s)")

    run_all(classifier_job, jobs, args.jobs, None, describe)
    report["classifier_runs"].sort(key=lambda r: (CONDITIONS.index(r["condition"]), r["gan_seed"] or 0, r["clf_seed"]))
    report["summary"] = summarise(report["classifier_runs"])
    report["total_minutes"] = (time.perf_counter() - started) / 60
    write(args.json, report)
    print()
    print(table(report["summary"]))


if __name__ == "__main__":
    main()
