"""Image quality at a fixed budget: FID-10k on CIFAR-10 for several recipes.

Every preset trains from scratch on the same number of images shown to the discriminator
(``--kimg``; steps = kimg * 1000 / (batch_size * n_critic), so a 5-critic-step recipe makes
fewer generator steps), then its EMA generator draws ``--n`` images scored with the FID
Inception network against the CIFAR-10 training images (the real statistics are computed
once and cached).

    python benchmarks/cifar_quality.py --kimg 200 [--presets dcgan-cifar10,wgangp-cifar10,sngan-cifar10,stylegan-cifar10]
        [--n 10000] [--seed 0] [--threads 2] [--device cpu|cuda] [--cifar DIR] [--json FILE]
        [--set PRESET:KEY=VALUE ...] [--keep DIR]

``--set sngan-cifar10:model.g_channels=128`` changes one preset only (a smaller network
for a CPU budget, say). With ``--keep DIR`` the study can be stopped and started again: a
run directory that already holds a checkpoint is resumed (exactly) instead of restarted,
and a finished run's FID (``DIR/PRESET/fid.json``) is not computed twice.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.config import parse_override
from ganforge.runtime import tune_allocator
from ganforge.validate import load_config

ROOT = Path(__file__).resolve().parents[1]


def steps_for(preset: str, kimg: float, changes: dict[str, Any] | None = None) -> int:
    """Generator steps that show ``kimg`` thousand real images to D (after the ``--set`` changes)."""
    t = load_config(preset, overrides=changes or {}).train
    return max(1, round(kimg * 1000 / (t.batch_size * t.n_critic)))


def preset_overrides(preset: str, settings: list[str]) -> dict[str, Any]:
    """The ``--set PRESET:KEY=VALUE`` items that name ``preset``, as dotted overrides."""
    out = {}
    for item in settings:
        name, _, assignment = item.partition(":")
        if not assignment or "=" not in assignment:
            raise SystemExit(f"--set wants PRESET:KEY=VALUE, got '{item}'")
        if name == preset:
            key, value = parse_override(assignment)
            out[key] = value
    return out


def run_one(preset: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    steps = steps_for(preset, args.kimg, preset_overrides(preset, args.set))
    run_dir = root / preset
    if (run_dir / "fid.json").exists():
        return json.loads((run_dir / "fid.json").read_text())
    overrides = {
        "data.root": str(args.cifar), "train.steps": steps, "train.seed": args.seed, "train.device": args.device,
        "train.progress": True, "train.checkpoint_every": max(steps // 20, 1), "train.sample_every": max(steps // 10, 1),
        "eval.every": 0, **preset_overrides(preset, args.set),
    }
    if args.threads:
        overrides["train.threads"] = args.threads
    start = time.perf_counter()
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        run = ganforge.train(resume=run_dir, overrides={"train.steps": steps})  # continue where it stopped
    else:
        run = ganforge.train(preset, out=run_dir, overrides=overrides)
    seconds = time.perf_counter() - start
    scores = ganforge.evaluate_run(run.dir, metrics=["fid"], n=args.n, extractor="inception", device=args.device,
                                   progress=True)
    result = {"preset": preset, "kimg": args.kimg, "steps": steps, "fid": scores["fid"],
              "train_seconds_this_session": seconds, "n": args.n, "seed": args.seed,
              "changes": preset_overrides(preset, args.set), "samples": str(run.latest_samples)}
    (run_dir / "fid.json").write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dcgan-cifar10,wgangp-cifar10,sngan-cifar10,stylegan-cifar10")
    parser.add_argument("--kimg", type=float, required=True, help="thousands of real images shown to D, per recipe")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cifar", type=Path, default=ROOT.parent / "shared" / "data" / "cifar10")
    parser.add_argument("--set", nargs="*", default=[], metavar="PRESET:KEY=VALUE", help="change one preset's config")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run directories here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    tune_allocator()  # as the CLI does: Inception on the CPU is ~1.3x faster
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        root = args.keep or Path(tmp_name)
        for preset in args.presets.split(","):
            r = run_one(preset, args, root)
            results.append(r)
            print(f"{preset}: FID-{args.n // 1000}k {r['fid']:.2f} after {r['steps']} steps "
                  f"({args.kimg:g} kimg, {r['train_seconds_this_session'] / 60:.1f} min)", flush=True)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=1))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "CPU"
    print(f"\n| preset | steps | FID-{args.n // 1000}k | train min |  ({args.kimg:g} kimg each, seed {args.seed}, {device})")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['preset']} | {r['steps']} | {r['fid']:.2f} | {r['train_seconds_this_session'] / 60:.1f} |")


if __name__ == "__main__":
    main()
