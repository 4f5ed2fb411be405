"""Projection study: real MNIST digits a DCGAN never saw, projected into its latent space, against random latents.

A ``dcgan-mnist`` run trains on the first 9,000 images of the shared MNIST set (``data.max_samples``;
the shared copy is MNIST's 10,000 test images) for ``--steps`` steps. ``--n`` images from the last
1,000 (held out) are projected (``ganforge.projection.project``, z space, ``--project-steps`` steps,
the ``mnist`` classifier as the perceptual distance, seed 0) and scored by PSNR against the
targets, beside the PSNR of random latents (the same seeds' samples) and of the best of 64 random
latents (projection's starting point). Projection is run twice to record that it is deterministic.

    python benchmarks/projection.py [--root ../shared/data/mnist] [--steps 1500] [--n 20] [--project-steps 300]
        [--run-dir ../bench/projection/run] [--json benchmarks/results/projection.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import ganforge
from ganforge.config import DataConfig
from ganforge.core import from_uint8
from ganforge.data import create
from ganforge.models.base import seeded_latents
from ganforge.projection import ProjectOptions, project, psnr

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
TRAIN_IMAGES = 9000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--steps", type=int, default=1500, help="training steps of the DCGAN")
    parser.add_argument("--n", type=int, default=20, help="held-out images projected")
    parser.add_argument("--project-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-dir", type=Path, default=Path("../bench/projection/run"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = {"data.root": str(args.root), "data.split": "test"}
    if not (args.run_dir / "generator" / "config.json").is_file():
        start = time.perf_counter()
        ganforge.train("dcgan-mnist", out=args.run_dir, overrides={**data, "data.max_samples": TRAIN_IMAGES,
                                                                   "train.steps": args.steps, "train.threads": args.threads})
        print(f"trained {args.steps} steps in {time.perf_counter() - start:.0f} s")
    generator = ganforge.load(args.run_dir)
    held_out = create(DataConfig(name="mnist", root=str(args.root), split="test", resolution=32)).data[TRAIN_IMAGES:]
    targets = from_uint8(held_out[torch.linspace(0, len(held_out) - 1, args.n).long()])
    options = ProjectOptions(steps=args.project_steps, perceptual="classifier:mnist", seed=0, frames=0)
    start = time.perf_counter()
    first = project(generator, targets, options, data="mnist")
    seconds = time.perf_counter() - start
    again = project(generator, targets, options, data="mnist")
    with torch.no_grad():
        random = generator(seeded_latents(args.n, generator.latent_dim, 1))
        best_start = project(generator, targets, ProjectOptions(steps=0, perceptual="none", seed=0, frames=0)).images
    result = {
        "steps_trained": generator.meta.get("step"), "n": args.n, "project_steps": args.project_steps,
        "psnr_projected": float(psnr(first.images, targets).mean()), "psnr_random": float(psnr(random, targets).mean()),
        "psnr_best_of_64_random": float(psnr(best_start, targets).mean()),
        "loss_first_step": float(first.losses[0].mean()), "loss_last_step": float(first.losses[-1].mean()),
        "deterministic": bool(torch.equal(first.latents, again.latents)), "seconds": seconds,
        "perceptual": first.perceptual,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
