"""Detector study: does a real-vs-synthetic classifier trained on one GAN family spot the others?

The protocol of Wang et al. (2020), "CNN-generated images are surprisingly easy to spot...
for now", at CIFAR-10 scale on a CPU:

1. ``runs``: four GAN families trained by ganforge on CIFAR-10 32x32 (``../shared/data``),
   each a short CPU run of its preset (the budgets below; narrower networks for SNGAN and
   StyleGAN, ProGAN grown 8 -> 32 px). Kept in ``--runs-dir`` and reused.
2. ``fakes``: ``--n`` samples of every family (seeds disjoint between the detector's training
   and test images), written as PNG.
3. ``detector``: ``ganforge detect train`` on one family's fakes against CIFAR-10 training
   images, one detector per family of ``--train-families``.
4. ``scores``: AUC and average precision of the detector, real CIFAR-10 *test* images
   against every family's held-out fakes, as they are and after attacks: JPEG 75 / 50 and
   0.5x resize (bilinear, then read back at the detector's size).

Format bias: the CIFAR-10 copy in ``../shared/data`` is JPEG quality 75, the fakes are PNG.
A detector could learn "JPEG or not" instead of "real or fake" (Grommelt et al. 2024), so
the fakes it trains on are JPEG-75 re-encoded like the real ones (``--match-format``, on by
default), and the headline test column (``jpeg75``) compares like with like: every image
JPEG 75. The ``png`` column scores the fakes as written.

    python benchmarks/detect.py [--runs-dir ../bench/detect] [--train-families dcgan,sngan,stylegan,progan]
        [--n 2000] [--steps 1500] [--threads 2] [--json benchmarks/results/detect.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from watermark import half_size, jpeg  # the same attacks as the watermark study

import ganforge
from ganforge.safeguards.detector import (
    Detector,
    average_precision,
    folder_images,
    read_pixels,
    roc_auc,
    train_detector,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR = SHARED / "cifar10"

#: family -> (preset, changes): short CPU budgets, recorded with the figures.
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "dcgan": ("dcgan-cifar10", {"train.steps": 1000}),  # 64 kimg
    "sngan": ("sngan-cifar10", {"model.g_channels": 64, "model.d_channels": 64, "train.n_critic": 1,
                                "optim.d_lr": 0.0004, "optim.g_lr": 0.0001, "train.steps": 400}),  # 26 kimg
    # grown 8 -> 16 -> 32 px, 8 kimg per fade-in and per stable phase (32 px from step 500), 45 kimg
    "progan": ("progan-celeba64", {"data.name": "cifar10", "data.resolution": 32, "model.base_channels": 32,
                                   "model.max_channels": 64, "recipe_options.start_resolution": 8,
                                   "recipe_options.kimg_per_phase": 8, "train.steps": 700}),
    "stylegan": ("stylegan-cifar10", {"model.base_channels": 32, "model.max_channels": 128, "model.fused": False,
                                      "train.steps": 400}),  # 26 kimg
}


def train_family(name: str, runs_dir: Path, threads: int) -> Path:
    """The run of one family, trained here once (resumed if it was interrupted)."""
    preset, changes = FAMILIES[name]
    run_dir = runs_dir / name
    if (run_dir / "generator").is_dir() and (run_dir / "done").exists():
        return run_dir
    steps = changes["train.steps"]
    start = time.perf_counter()
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        ganforge.train(resume=run_dir, overrides={"train.steps": steps})
    else:
        ganforge.train(preset, out=run_dir, overrides={
            "data.root": str(CIFAR), "train.threads": threads, "train.progress": True, "eval.every": 0,
            "train.seed": 0, "train.sample_every": steps, "train.checkpoint_every": max(steps // 5, 1), **changes})
    (run_dir / "done").write_text(json.dumps({"preset": preset, "changes": changes,
                                              "seconds": time.perf_counter() - start}) + "\n")
    return run_dir


def to_uint8(samples: torch.Tensor) -> list[np.ndarray]:
    """Generator output ``[N, 3, H, W]`` in [-1, 1] -> uint8 ``[H, W, 3]`` arrays (as ganforge stores them)."""
    stored = ((samples.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return list(stored)


#: test conditions: (what is done to the real test images, what to the fakes). The real CIFAR-10
#: copy is already JPEG 75, so "jpeg75" re-encodes only the fakes: every image then JPEG 75 once.
ATTACKS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "png": (lambda x: x, lambda x: x),
    "jpeg75": (lambda x: x, lambda x: jpeg(x, 75)),
    "jpeg50": (lambda x: jpeg(x, 50), lambda x: jpeg(x, 50)),
    "resize0.5": (half_size, lambda x: half_size(jpeg(x, 75))),
}


def fakes(run_dir: Path, n: int, seed: int) -> list[np.ndarray]:
    """``n`` samples of a run, unmarked: the detector is for images that carry no provenance."""
    generator = ganforge.load(run_dir)
    return [image for start in range(0, n, 500)
            for image in to_uint8(generator.sample(min(500, n - start), seed=seed * 1000 + start // 500))]


def real_images(split: str, n: int) -> list[np.ndarray]:
    files = folder_images(CIFAR / split, "real", n)
    return [read_pixels(path) for path in files]


def write_folder(folder: Path, images: list[np.ndarray], suffix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}{suffix}", quality=75)
    return folder


def quality(real: list[np.ndarray], fake: list[np.ndarray], folder: Path) -> float:
    """FID between two image lists in the features of ganforge's CIFAR-10 classifier (fast on a CPU;
    a measure of how far each family's samples are from real ones, not comparable to Inception FID)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "real.npy", np.stack(real))
    np.save(folder / "fake.npy", np.stack(fake))
    return float(ganforge.evaluate(str(folder / "real.npy"), str(folder / "fake.npy"), metrics=["fid"], extractor="cifar10")["fid"])


def score(detector: Detector, real: list[np.ndarray], fake: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """AUC and AP of ``detector``, real against fake, under every attack."""
    out = {}
    for name, (on_real, on_fake) in ATTACKS.items():
        scores = np.r_[detector.logits([on_real(x) for x in real]), detector.logits([on_fake(x) for x in fake])]
        truth = np.r_[np.zeros(len(real)), np.ones(len(fake))]
        out[name] = {"auc": roc_auc(truth, scores), "ap": average_precision(truth, scores),
                     "accuracy": float(((scores >= 0) == truth).mean())}
    return out


def table(results: dict[str, Any]) -> str:
    lines = []
    for train, row in results["detectors"].items():
        lines.append(f"\nDetector trained on {train} (held-out AUC {row['record']['val_auc']:.3f}, "
                     f"{row['record']['train_seconds']:.0f} s). Cells: AUC / AP.\n")
        lines.append("| test family | " + " | ".join(ATTACKS) + " |")
        lines.append("|---|" + "---:|" * len(ATTACKS))
        for family, cells in row["families"].items():
            seen = " (seen)" if family == train else ""
            lines.append(f"| {family}{seen} | " + " | ".join(f"{cells[a]['auc']:.3f} / {cells[a]['ap']:.3f}" for a in ATTACKS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="all", choices=("runs", "all"))
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--train-families", default=",".join(FAMILIES), help="comma-separated: one detector per family")
    parser.add_argument("--n", type=int, default=2000, help="fakes (and real images) per family for training and for testing")
    parser.add_argument("--steps", type=int, default=1500, help="detector training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/benchmarks/detect"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (CIFAR / "train").is_dir():
        raise SystemExit(f"this study needs CIFAR-10 under {CIFAR} (see ../shared/data/README.md)")
    torch.set_num_threads(args.threads)
    families = args.families.split(",")
    runs = {name: train_family(name, args.runs_dir, args.threads) for name in families}
    if args.stage == "runs":
        return
    real_test = real_images("test", args.n)
    test_fakes = {name: fakes(run, args.n, seed=2) for name, run in runs.items()}
    scratch = args.runs_dir / "fid"
    fids = {"real (train vs test)": quality(real_images("train", args.n), real_test, scratch)}
    fids.update({name: quality(real_test, images, scratch) for name, images in test_fakes.items()})
    print("FID (cifar10 classifier features) against CIFAR-10 test:", {k: round(v, 2) for k, v in fids.items()}, flush=True)
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "n": args.n, "steps": args.steps, "seed": args.seed, "fid_cifar10_features": fids,
        "families": {name: {"preset": FAMILIES[name][0], "changes": FAMILIES[name][1],
                            **json.loads((runs[name] / "done").read_text())} for name in families},
        "detectors": {},
    }
    for train in args.train_families.split(","):
        folder = args.runs_dir / f"train-{train}"
        if not (folder / "fake").is_dir():  # format-matched: JPEG 75 like the real images
            write_folder(folder / "fake", fakes(runs[train], args.n, seed=1), ".jpg")
        detector = train_detector(CIFAR / "train", folder / "fake", steps=args.steps, seed=args.seed,
                                  max_images=args.n, progress=True)
        detector.save(folder / "detector.safetensors")
        results["detectors"][train] = {
            "record": detector.record,
            "families": {name: score(detector, real_test, test_fakes[name]) for name in families},
        }
        print(table({"detectors": {train: results["detectors"][train]}}), flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
