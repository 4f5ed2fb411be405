"""Mode-collapse study: modes covered and high-quality share on ring8 and grid25.

Each method is a shipped preset for ``grid25`` (``gan-grid25``, ``mbd-grid25``,
``unrolled-grid25``, ``pacgan-grid25``, ``wgangp-grid25``); on ``ring8`` the same changes
are applied to ``gan-ring8``. Every (data set, method, seed) trains from scratch with the
preset's step count, then the final EMA generator draws 2,500 samples scored with the
PacGAN protocol (nearest mode, within 3 std = high quality, a mode counts when it holds
at least 20 high-quality samples).

    python benchmarks/mode_collapse.py [--data ring8,grid25] [--methods gan,mbd,...]
        [--seeds 0,1,2] [--threads 2] [--jobs 1] [--json benchmarks/results/mode_collapse.json]

``--jobs N`` trains N runs at once in separate processes (each with ``--threads``
threads): on a 16-core machine ``--jobs 15 --threads 1`` runs the whole study in one go.
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
from ganforge.config import preset_changes
from ganforge.data import create as create_data
from ganforge.metrics import mode_stats

METHODS = {
    "gan": "gan-grid25",
    "mbd": "mbd-grid25",
    "unrolled": "unrolled-grid25",
    "pacgan": "pacgan-grid25",
    "wgan-gp": "wgangp-grid25",
    "bigbatch": "bigbatch-grid25",
}


def method_overrides(method: str) -> dict[str, Any]:
    """What the method's preset changes relative to the plain GAN, as dotted overrides.

    The plain GAN is the base preset itself (``gan-ring8`` or ``gan-grid25``): no changes.
    """
    return {} if method == "gan" else preset_changes(METHODS[method])


def run_one(data: str, method: str, seed: int, threads: int, steps: int | None, device: str,
            root: Path) -> dict[str, Any]:
    torch.set_num_threads(threads)
    overrides = {"train.device": device,
        **method_overrides(method),
        "train.seed": seed, "train.threads": threads, "train.progress": False, "eval.every": 0,
        "train.checkpoint_every": 100_000, "train.sample_every": 100_000,
    }
    if steps:
        overrides["train.steps"] = steps
    start = time.perf_counter()
    run = ganforge.train(f"gan-{data}", out=root / f"{data}-{method}-{seed}", overrides=overrides)
    seconds = time.perf_counter() - start
    info = create_data(run.config.data).info
    samples = ganforge.load(run.dir).sample(2500, seed=10_000 + seed)
    stats = mode_stats(samples, info["centers"], info["std"])
    return {"data": data, "method": method, "seed": seed, "modes": stats["modes_covered"],
            "num_modes": stats["num_modes"], "high_quality": stats["high_quality"], "seconds": seconds}


def summarise(results: list[dict[str, Any]]) -> str:
    lines = ["| data | method | modes (mean) | modes per seed | high quality (mean) | s/run |", "|---|---|---:|---|---:|---:|"]
    keys = sorted({(r["data"], r["method"]) for r in results}, key=lambda k: (k[0], list(METHODS).index(k[1])))
    for data, method in keys:
        rs = sorted([r for r in results if r["data"] == data and r["method"] == method], key=lambda r: r["seed"])  # finished in any order
        modes = [r["modes"] for r in rs]
        hq = [r["high_quality"] for r in rs]
        lines.append(
            f"| {data} | {method} | {statistics.mean(modes):.1f} / {rs[0]['num_modes']} | "
            f"{', '.join(map(str, modes))} | {100 * statistics.mean(hq):.1f}% | "
            f"{statistics.mean(r['seconds'] for r in rs):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ring8,grid25")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (tiny MLPs: a GPU helps little)")
    parser.add_argument("--steps", type=int, default=None, help="override the presets' step count (quick looks)")
    parser.add_argument("--json", type=Path, default=None, help="write every run's figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    for method in args.methods.split(","):
        if method not in METHODS:
            raise SystemExit(f"unknown method '{method}' (available: {', '.join(METHODS)})")
    runs = [(data, method, seed) for data in args.data.split(",") for method in args.methods.split(",")
            for seed in map(int, args.seeds.split(","))]
    describe = lambda r: (f"{r['data']:7} {r['method']:9} seed {r['seed']}: {r['modes']:2d}/{r['num_modes']} modes, "  # noqa: E731
                          f"{100 * r['high_quality']:.1f}% high quality ({r['seconds']:.0f} s)")
    runs = [(*run, args.threads, args.steps, args.device) for run in runs]
    results = run_all(run_one, runs, args.jobs, args.json, describe)
    print()
    print(summarise(results))


if __name__ == "__main__":
    main()
