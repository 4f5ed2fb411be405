"""Stacked MNIST study: modes covered (of 1,000) and KL to uniform, several seeds per recipe.

Each recipe is a shipped preset (``dcgan-stacked-mnist``, the baseline, and
``pacgan-stacked-mnist``, ...), trained from scratch with its own step count on Stacked
MNIST built from the MNIST digits in ``../shared/data/mnist`` (or ``--mnist DIR``); the
final EMA generator then draws 26,000 samples whose three channels are read by the shipped
``mnist`` classifier (the PacGAN protocol), giving the number of digit triples produced
and the KL divergence of their histogram to the uniform one.

    python benchmarks/stacked_mnist.py [--presets dcgan-stacked-mnist,pacgan-stacked-mnist]
        [--seeds 0,1,2] [--threads 2] [--jobs 1] [--device cpu|cuda] [--steps N]
        [--json benchmarks/results/stacked_mnist.json]

``--jobs N`` trains N runs at once in separate processes (on one GPU they share it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from _parallel import run_all

import ganforge

ROOT = Path(__file__).resolve().parents[1]


def run_one(preset: str, seed: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {"train.device": args.device,
        "data.root": str(args.mnist), "train.seed": seed, "train.threads": args.threads, "train.progress": False,
        "train.checkpoint_every": 100_000, "train.sample_every": 100_000,
    }
    if args.steps:
        overrides["train.steps"] = args.steps
    start = time.perf_counter()
    run = ganforge.train(preset, out=tmp / f"{preset}-{seed}", overrides=overrides)
    seconds = time.perf_counter() - start
    scores = ganforge.evaluate_run(run.dir, metrics=["modes"], n=26_000, seed=10_000 + seed,
                                   device=args.device)
    return {"preset": preset, "seed": seed, "steps": run.step, "modes": scores["modes"], "kl": scores["kl"],
            "seconds": seconds}


def summarise(results: list[dict[str, Any]]) -> str:
    lines = ["| preset | steps | modes (mean) | modes per seed | KL (mean) | KL per seed | s/run |",
             "|---|---:|---:|---|---:|---|---:|"]
    for preset in dict.fromkeys(r["preset"] for r in results):
        rs = sorted([r for r in results if r["preset"] == preset], key=lambda r: r["seed"])  # finished in any order
        lines.append(
            f"| {preset} | {rs[0]['steps']} | {statistics.mean(r['modes'] for r in rs):.1f} | "
            f"{', '.join(str(r['modes']) for r in rs)} | {statistics.mean(r['kl'] for r in rs):.3f} | "
            f"{', '.join(format(r['kl'], '.3f') for r in rs)} | {statistics.mean(r['seconds'] for r in rs):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dcgan-stacked-mnist,pacgan-stacked-mnist")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--steps", type=int, default=None, help="override the presets' step count (quick looks)")
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = [(preset, seed) for preset in args.presets.split(",") for seed in map(int, args.seeds.split(","))]
    describe = lambda r: f"{r['preset']} seed {r['seed']}: {r['modes']} modes, KL {r['kl']:.3f} ({r['seconds']:.0f} s)"  # noqa: E731
    results = run_all(run_one, [(preset, seed, args) for preset, seed in runs], args.jobs, args.json, describe)
    print()
    print(summarise(results))


if __name__ == "__main__":
    main()
