"""Table study: CTGAN (and DP-CTGAN) against a Gaussian copula and against resampling with noise.

Every (preset, seed) trains from scratch at the preset's own budget (``ctgan-breast-cancer``,
``ctgan-wine``, ``dpctgan-breast-cancer``) and is scored by ``ganforge eval``'s table metrics on
``--n`` generated rows: TSTR (random forest and logistic regression trained on synthetic rows,
macro-F1 on the held-out 30% of the real table) beside TRTR (the same models trained on the real
70%), column shapes, correlation distance, detection AUC, the closest-record check and, for the
private preset, the epsilon spent. The baselines are fitted on the same training split with the
same seeds and scored by the same code: a Gaussian copula (plain, and one per class of the
target, which is what the reference CTGAN paper's "class-conditional Gaussian" means) and
resampling the training rows with 10% noise (which the closest-record check must flag).

    python benchmarks/tabular.py [--presets ctgan-breast-cancer,ctgan-wine,dpctgan-breast-cancer] [--seeds 0,1,2]
        [--n 2000] [--threads 2] [--jobs 1] [--runs-dir DIR] [--reuse] [--json benchmarks/results/tabular.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from _parallel import mean_sd, measured, run_all, run_key, study_arguments, study_key, study_run

import ganforge
from ganforge.config import DataConfig
from ganforge.data import create as create_data
from ganforge.evaluation import Source, evaluate
from ganforge.tabular import TableTransformer
from ganforge.tabular.baselines import GaussianCopula, Resample
from ganforge.validate import load_config

PRESETS = ("ctgan-breast-cancer", "ctgan-wine", "dpctgan-breast-cancer")
METRICS = ("tstr", "column-shapes", "correlation", "detection", "dcr")
#: Noise of the resampling baseline, in each numeric column's standard deviations.
RESAMPLE_NOISE = 0.1


def run_one(preset: str, seed: int, threads: int, root: str, n: int, steps: int | None, reuse: bool,
            runs_dir: str | None, tmp: Path) -> list[dict[str, Any]]:
    run_dir, overrides, seconds = study_run(preset, seed, threads, root, steps, reuse, runs_dir, tmp)
    config = load_config(preset, {k: v for k, v in overrides.items() if k != "data.root"})
    private = config.train.privacy.epsilon is not None
    metrics = list(METRICS) + (["epsilon"] if private else [])
    scores = ganforge.evaluate_run(run_dir, metrics=metrics, n=n, seed=10_000 + seed)
    return [{"preset": preset, "data": config.data.name, "method": "dp-ctgan" if private else "ctgan",
             "run": run_key(preset, seed, overrides), "seed": seed, "seconds": seconds, **_plain(scores)}]


def baselines(datasets: list[str], seeds: list[int], n: int) -> list[dict[str, Any]]:
    """The copulas and resampling on each data set's training split, scored like the runs."""
    rows = []
    for name in datasets:
        train = create_data(DataConfig(name=name))
        frame, kinds, target = train.info["frame"], train.info["kinds"], train.info["target"]
        transformer = TableTransformer.from_dict(train.info["table"])
        for seed in seeds:
            models = {"gaussian-copula": GaussianCopula().fit(frame, kinds, seed=seed),
                      "gaussian-copula-per-class": GaussianCopula().fit(frame, kinds, condition=target, seed=seed),
                      "resample-noise": Resample(RESAMPLE_NOISE).fit(frame, kinds, seed=seed)}
            for method, model in models.items():
                fake = model.sample(n, seed=10_000 + seed)
                vectors = torch.from_numpy(transformer.transform(fake, seed=seed)).float()
                source = Source(vectors, f"{method} seed {seed}", {"table": train.info["table"], "target": target}, modality="table")
                scores = evaluate(name, source, list(METRICS))
                rows.append({"preset": None, "data": name, "method": method, "seed": seed, **_plain(scores)})
                print(f"{name:14} {method:26} seed {seed}: {_describe(rows[-1])}", flush=True)
    return rows


def _plain(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scores.items() if isinstance(v, (int, float, str)) or v is None}


def _describe(r: dict[str, Any]) -> str:
    text = (f"TSTR {r['tstr']:.3f} (TRTR {r['trtr']:.3f}), shapes {r['column_shapes']:.3f}, "
            f"detection AUC {r['detection_auc']:.3f}, DCR ratio {r['dcr_ratio']:.2f}")
    return text + (f", epsilon {r['epsilon']:.2f}" if "epsilon" in r else "")


def summarise(results: list[dict[str, Any]]) -> str:
    """One markdown table per data set: mean ± std over seeds of every method."""
    out = []
    for name in dict.fromkeys(r["data"] for r in results):
        rows = [r for r in results if r["data"] == name]
        trtr = mean_sd(rows, "trtr", ".3f")
        out += [f"### {name} (TRTR: random forest {trtr}, logistic {mean_sd(rows, 'trtr_linear', '.3f')})", "",
                "| method | seeds | TSTR RF | TSTR LR | column shapes | correlation dist. | detection AUC | DCR ratio | copies "
                "| epsilon | train s |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for method in dict.fromkeys(r["method"] for r in rows):
            group = [r for r in rows if r["method"] == method]
            cells = [mean_sd(group, k, f) for k, f in (("tstr", ".3f"), ("tstr_linear", ".3f"), ("column_shapes", ".3f"),
                                                        ("correlation_distance", ".3f"), ("detection_auc", ".3f"),
                                                        ("dcr_ratio", ".2f"), ("copies", ".3f"), ("epsilon", ".2f"),
                                                        ("seconds", ".0f"))]
            out.append(f"| {method} | {len(group)} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    study_arguments(parser, PRESETS, "rows generated")
    parser.add_argument("--no-baselines", action="store_true", help="score the presets only")
    parser.set_defaults(n=2000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    presets, seeds = args.presets.split(","), [int(s) for s in args.seeds.split(",")]
    runs = [(p, s, args.threads, "", args.n, args.steps, args.reuse, str(args.runs_dir) if args.runs_dir else None)
            for p in presets for s in seeds]
    keep = measured(args.json) if args.reuse else {}
    describe = lambda rows: "\n".join(f"{r['preset']:22} seed {r['seed']}: {_describe(r)}" for r in rows)  # noqa: E731
    results = run_all(run_one, runs, args.jobs, args.json, describe, key=study_key, keep=keep)
    if not args.no_baselines:
        datasets = list(dict.fromkeys(load_config(p).data.name for p in presets))
        results += baselines(datasets, seeds, args.n)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print()
    print(summarise(results))


if __name__ == "__main__":
    main()
