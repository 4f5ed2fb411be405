"""FID's trace term: symmetric eigendecompositions against ``scipy.linalg.sqrtm`` (pytorch-fid's way).

``Tr((S1 S2)^{1/2})`` dominates the cost of an FID once features exist: at 2,048
dimensions ``sqrtm`` of the non-symmetric product takes seconds to tens of seconds on a
CPU, for every FID (each evaluation during training included). ganforge computes it from
``eigh(S1)`` and ``eigvalsh(S1^{1/2} S2 S1^{1/2})`` (:func:`ganforge.metrics.fid.trace_sqrt_product`).
This script times both on the same covariances, interleaved, and reports the relative
difference of the FID values, for a full-rank case (10,000 samples) and a rank-deficient
one (250 samples < 2,048 dimensions, the regime of small evaluations).

    python benchmarks/fid_trace.py [--dim 2048] [--repeats 3] [--json benchmarks/results/fid_trace.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from ganforge.metrics.fid import feature_statistics, trace_sqrt_product, trace_sqrtm_product


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--samples", default="10000,250")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "fid_trace.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(args.dim, args.dim)) / np.sqrt(args.dim)
    rows = []
    for n in (int(s) for s in args.samples.split(",")):
        # Inception-like features: correlated, non-negative, two different distributions.
        real = np.maximum(rng.normal(size=(n, args.dim)) @ mixing, 0)
        fake = np.maximum(rng.normal(0.2, 1.1, size=(n, args.dim)) @ mixing, 0)
        (_, s1), (_, s2) = feature_statistics(real), feature_statistics(fake)
        times: dict[str, list[float]] = {"eigh": [], "sqrtm": []}
        values = {}
        for _ in range(args.repeats):
            for name, fn in (("eigh", trace_sqrt_product), ("sqrtm", trace_sqrtm_product)):
                start = time.perf_counter()
                values[name] = fn(s1, s2)
                times[name].append(time.perf_counter() - start)
        fid_gap = (np.trace(s1) + np.trace(s2) - 2 * values["sqrtm"])
        row = {
            "samples": n, "dim": args.dim,
            "sqrtm_s": statistics.median(times["sqrtm"]), "eigh_s": statistics.median(times["eigh"]),
            "speedup": statistics.median(times["sqrtm"]) / statistics.median(times["eigh"]),
            "trace_relative_difference": abs(values["eigh"] - values["sqrtm"]) / abs(values["sqrtm"]),
            "fid_relative_difference": 2 * abs(values["eigh"] - values["sqrtm"]) / abs(fid_gap),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"rows": rows, "repeats": args.repeats,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "numpy": np.__version__},
              "command": "python benchmarks/fid_trace.py", "date": time.strftime("%Y-%m-%d")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
