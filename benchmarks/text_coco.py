"""Text study: RelGAN and SeqGAN against maximum likelihood on the COCO captions, on the quality-diversity curve.

Every (preset, seed) trains from scratch at the preset's own budget (``mle-coco``, ``relgan-coco``,
``seqgan-coco``: one LSTM generator, three ways of training it). Each generator then samples
``--n`` sentences at every temperature of ``--temperatures`` (the MLE model over the whole
sweep, the GANs at theirs), scored as Texygen does: BLEU-2..5 against the 10,000 test
captions (quality), Self-BLEU-2..5 of the sentences among themselves (lower: more diverse),
the test set's NLL under the generator (nats per word) and the share of sentences copied from
the training set. Caccia et al. ("Language GANs Falling Short") compare the recipes along this
curve: a GAN only wins if it beats MLE *at equal Self-BLEU*, which a lower temperature also buys.

    python benchmarks/text_coco.py [--presets mle-coco,relgan-coco,seqgan-coco] [--seeds 0,1,2]
        [--root ../shared/data/text] [--threads 2] [--jobs 1] [--runs-dir DIR] [--reuse]
        [--json benchmarks/results/text_coco.json] [--picture benchmarks/results/text_coco.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch
from _parallel import mean_sd, measured, run_all, run_key, study_arguments, study_key, study_run

import ganforge
from ganforge import modality
from ganforge.config import DataConfig
from ganforge.data import create as create_data
from ganforge.evaluation.text import ORDERS
from ganforge.metrics.bleu import bleu, copy_rate, self_bleu

PRESETS = ("mle-coco", "relgan-coco", "seqgan-coco")
ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
#: Sampling temperatures: the MLE sweep, and the GANs' (trained to sample at 1).
MLE_TEMPERATURES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)
GAN_TEMPERATURES = (0.8, 1.0)


def split(root: Path, name: str) -> ganforge.data.Dataset:
    return create_data(DataConfig(name="coco-captions", root=str(root), split=name))


def score(sentences: list[list[str]], test: list[list[str]], train: list[list[str]]) -> dict[str, float]:
    """BLEU-n against the test captions, Self-BLEU-n among the sentences, and the copy rate."""
    return {**{f"bleu{n}": v for n, v in bleu(sentences, test, ORDERS).items()},
            **{f"self_bleu{n}": v for n, v in self_bleu(sentences, ORDERS).items()},
            "copy_rate": copy_rate(sentences, train)}


@torch.no_grad()
def test_nll(generator: Any, test: ganforge.data.Dataset) -> float:
    nll, words = generator.token_nll(test.data, known_only=True)  # as the nll metric: test words the vocabulary lacks left out
    return float(nll.sum() / words.sum())


def run_one(preset: str, seed: int, threads: int, root: str, n: int, steps: int | None, reuse: bool,
            runs_dir: str | None, tmp: Path) -> list[dict[str, Any]]:
    run_dir, overrides, seconds = study_run(preset, seed, threads, root, steps, reuse, runs_dir, tmp)
    generator = ganforge.load(run_dir)
    train, test = split(Path(root), "train"), split(Path(root), "test")
    nll = test_nll(generator, test)
    kind = modality.of(generator)
    rows = []
    for t in (MLE_TEMPERATURES if preset.startswith("mle") else GAN_TEMPERATURES):
        generator.temperature = t
        sentences = kind.sentences(generator.sample(n, seed=10_000 + seed))
        rows.append({"preset": preset, "run": run_key(preset, seed, overrides), "seed": seed, "temperature": t,
                     "seconds": seconds, "nll_test": nll, **score(sentences, test.info["sentences"], train.info["sentences"])})
    return rows


def baselines(root: Path, n: int) -> list[dict[str, Any]]:
    """Real training captions scored like a generator's (what a perfect model of the data would score)."""
    train, test = split(root, "train"), split(root, "test")
    g = torch.Generator().manual_seed(0)
    real = [train.info["sentences"][i] for i in torch.randperm(len(train.info["sentences"]), generator=g)[:n].tolist()]
    return [{"preset": "real (train captions)", "seed": "-", "temperature": None,
             **score(real, test.info["sentences"], train.info["sentences"])}]


def summarise(results: list[dict[str, Any]]) -> str:
    lines = ["| recipe | temperature | seeds | BLEU-2 | BLEU-3 | BLEU-4 | BLEU-5 | Self-BLEU-4 | NLL test | copied | train time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = [*PRESETS, "real (train captions)"]
    keys = sorted({(r["preset"], r["temperature"]) for r in results},
                  key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1] or 0))
    for name, t in keys:
        rs = [r for r in results if r["preset"] == name and r["temperature"] == t]

        def cell(key: str, fmt: str = ".3f") -> str:
            return mean_sd(rs, key, fmt)

        minutes = [r["seconds"] / 60 for r in rs if r.get("seconds")]
        lines.append(f"| {name} | {'-' if t is None else t} | {len(rs)} | {cell('bleu2')} | {cell('bleu3')} | {cell('bleu4')} | "
                     f"{cell('bleu5')} | {cell('self_bleu4')} | {cell('nll_test')} | {cell('copy_rate', '.1%')} | "
                     f"{(f'{statistics.mean(minutes):.1f} min') if minutes else '-'} |")
    return "\n".join(lines)


def picture(results: list[dict[str, Any]], out: Path) -> None:
    """BLEU-4 against Self-BLEU-4: the MLE temperature sweep as a curve, each GAN as points (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for name, style in zip([*PRESETS, "real (train captions)"], ["o-", "s", "^", "*"]):
        temps = sorted({r["temperature"] for r in results if r["preset"] == name}, key=lambda t: t or 0)
        if not temps:
            continue
        points = [(statistics.mean(r["self_bleu4"] for r in results if r["preset"] == name and r["temperature"] == t),
                   statistics.mean(r["bleu4"] for r in results if r["preset"] == name and r["temperature"] == t)) for t in temps]
        ax.plot(*zip(*points), style, label=name, markersize=7)
        for (x, y), t in zip(points, temps):
            if t is not None:
                ax.annotate(f"T={t}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("Self-BLEU-4 (lower: more diverse)")
    ax.set_ylabel("BLEU-4 against the test captions (higher: better)")
    ax.set_title("COCO captions: quality against diversity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    study_arguments(parser, PRESETS, "sentences sampled at each temperature")
    parser.add_argument("--root", type=Path, default=ROOT, help="the folder of coco_train.txt and coco_test.txt")
    parser.add_argument("--picture", type=Path, default=None, help="the quality-diversity curve (needs matplotlib)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = [(p, int(s), args.threads, str(args.root), args.n, args.steps, args.reuse,
             str(args.runs_dir) if args.runs_dir else None) for p in args.presets.split(",") for s in args.seeds.split(",")]
    describe = lambda rows: "\n".join(  # noqa: E731
        f"{r['preset']:12} seed {r['seed']} T={r['temperature']}: BLEU-2 {r['bleu2']:.3f}, BLEU-4 {r['bleu4']:.3f}, "
        f"Self-BLEU-4 {r['self_bleu4']:.3f}, NLL {r['nll_test']:.3f}, copied {r['copy_rate']:.1%}" for r in rows)
    keep = measured(args.json) if args.reuse else {}
    results = run_all(run_one, runs, args.jobs, args.json, describe, key=study_key, keep=keep)
    results += baselines(args.root, args.n)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.picture:
        picture(results, args.picture)
    print()
    print(summarise(results))


if __name__ == "__main__":
    main()
