"""Trainer step time for the memory-format and precision options, interleaved in one process.

Measures the real ``GANRecipe.train_step`` of a preset (default ``dcgan-digits``) with
``train.channels_last`` and ``train.precision`` toggled, alternating the variants over
several rounds so that machine noise hits them alike, and prints each variant's median
ms/step and its speed relative to the float32 NCHW baseline measured in the same run.

    python benchmarks/step_options.py [PRESET] [--steps 20] [--rounds 5] [--threads 2] [--fp32-only] [--set KEY=VALUE ...]

``--fp32-only`` drops the bf16 variants (on CPUs without AMX bf16 emulation makes them ~10x slower).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from ganforge.config import parse_override
from ganforge.training.trainer import Trainer
from ganforge.validate import load_config

VARIANTS = {
    "fp32 NCHW (baseline)": {"train.precision": "fp32", "train.channels_last": False},
    "fp32 channels-last": {"train.precision": "fp32", "train.channels_last": True},
    "bf16 NCHW": {"train.precision": "bf16", "train.channels_last": False},
    "bf16 channels-last": {"train.precision": "bf16", "train.channels_last": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", default="dcgan-digits")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides shared by every variant (e.g. data.root=DIR for fsdd)")
    parser.add_argument("--fp32-only", action="store_true", help="time only the float32 variants")
    args = parser.parse_args()
    variants = {name: o for name, o in VARIANTS.items() if not args.fp32_only or o["train.precision"] == "fp32"}
    shared = dict(map(parse_override, args.set))
    torch.set_num_threads(args.threads)

    trainers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, overrides) in enumerate(variants.items()):
            cfg = load_config(args.preset, {**shared, **overrides, "train.progress": False})
            trainers[name] = Trainer(cfg, f"{tmp}/{i}")
            for step in range(3):  # warm-up: allocator, oneDNN primitive caches
                trainers[name].recipe.train_step(trainers[name].loader, step)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                start = time.perf_counter()
                for step in range(args.steps):
                    trainer.recipe.train_step(trainer.loader, step)
                times[name].append((time.perf_counter() - start) / args.steps)

    batch = next(iter(trainers.values())).config.train.batch_size
    base = statistics.median(times["fp32 NCHW (baseline)"])
    print(f"preset {args.preset}, batch {batch}, {args.threads} threads, torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'variant':<24} {'ms/step':>9} {'img/s':>8} {'vs baseline':>12}")
    for name, values in times.items():
        t = statistics.median(values)
        print(f"{name:<24} {t * 1000:9.1f} {batch / t:8.0f} {base / t:11.2f}x")


if __name__ == "__main__":
    main()
