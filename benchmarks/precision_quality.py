"""Quality guard for the fast path: does bf16 autocast cost image quality?

Trains the same preset in float32 and in bf16 autocast for the same number of steps (so
the same images seen), over several training seeds, and scores each EMA generator with
FID against the real data using the project's digit classifier features (``digits``
extractor, all 1,797 real digits against as many generated). bf16 passes the guard when
the difference of the means is within the seed-to-seed spread.

    python benchmarks/precision_quality.py [--preset dcgan-digits] [--seeds 0,1,2]
        [--precisions fp32,bf16] [--steps 1500] [--set KEY=VALUE ...] [--json FILE]

bf16 autocast on a CPU without native bf16 (no AMX / AVX512-BF16) is emulated and many
times slower than float32; quality does not depend on that, only on the arithmetic.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import ganforge
from ganforge.config import parse_override
from ganforge.runtime import tune_allocator


def run_one(preset: str, precision: str, seed: int, steps: int, changes: dict[str, Any], root: Path) -> dict[str, Any]:
    """Train one (precision, seed) run and return its FID against the preset's data."""
    out = root / f"{precision}-seed{seed}"
    overrides = {
        **changes, "train.precision": precision, "train.seed": seed, "train.steps": steps, "train.threads": 2,
        "train.progress": False, "train.sample_every": steps, "train.checkpoint_every": steps, "eval.every": 0,
    }
    start = time.perf_counter()
    run = ganforge.train(preset, out=out, overrides=overrides)
    seconds = time.perf_counter() - start
    scores = ganforge.evaluate_run(run.dir, metrics=["fid", "kid"])
    return {"preset": preset, "precision": precision, "seed": seed, "steps": steps, "fid": scores["fid"],
            "kid": scores["kid_mean"], "train_seconds": round(seconds, 1), "changes": changes}


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of FID per precision."""
    out = {}
    for precision in dict.fromkeys(r["precision"] for r in results):
        fids = [r["fid"] for r in results if r["precision"] == precision]
        out[precision] = {"mean": statistics.fmean(fids), "std": statistics.stdev(fids) if len(fids) > 1 else 0.0,
                          "n": len(fids)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dcgan-digits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="change the preset for every run")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run directories here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    tune_allocator()
    changes = dict(parse_override(item) for item in args.set)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for seed in (int(s) for s in args.seeds.split(",")):
            for precision in args.precisions.split(","):  # interleaved, so a busy spell hits both alike
                r = run_one(args.preset, precision, seed, args.steps, changes, root)
                results.append(r)
                print(f"{precision} seed {seed}: FID {r['fid']:.3f}  KID {r['kid']:.4f}  ({r['train_seconds'] / 60:.1f} min)",
                      flush=True)
                if args.json:
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps({"runs": results, "summary": summarise(results)}, indent=1))
    summary = summarise(results)
    print(f"\n| precision | FID mean | FID std | seeds |  ({args.preset}, {args.steps} steps, {changes or 'preset as is'})")
    print("|---|---:|---:|---:|")
    for precision, s in summary.items():
        print(f"| {precision} | {s['mean']:.3f} | {s['std']:.3f} | {s['n']} |")


if __name__ == "__main__":
    main()
