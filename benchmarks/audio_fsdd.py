"""Audio study: SpecGAN against WaveGAN on spoken digits (FSDD), beside real data and white noise.

Every (preset, seed) trains from scratch at the preset's own budget (``specgan-fsdd``,
``wavegan-fsdd``, ``cspecgan-fsdd``), then its final EMA generator draws ``--n`` clips that the
shipped ``fsdd`` classifier scores: Inception Score (its 10 logits), Fréchet distance and KID
(its 128-d features) against the 2,700 clips of FSDD's train split, and for the conditional
preset the share of clips generated for each digit that the classifier hears as that digit.
Two baselines go through the same code: the 300 real clips of the test split (what a
perfect generator would score) and white noise at the data's loudness (what no generator
should score).

    python benchmarks/audio_fsdd.py [--presets specgan-fsdd,wavegan-fsdd,cspecgan-fsdd] [--seeds 0,1,2]
        [--root ../shared/data/fsdd/recordings] [--threads 2] [--jobs 1] [--runs-dir DIR]
        [--json benchmarks/results/audio_fsdd.json] [--picture benchmarks/results/audio_fsdd.png]

``--runs-dir`` keeps the run directories (listen to them: ``ganforge sample RUN --out x.wav``);
``--score-only`` scores the runs already in it without training; ``--reuse`` keeps its finished
runs, resumes interrupted ones, and keeps the rows of ``--json`` measured with the same
resolved config (a study cut short goes on where it stopped, across sessions too).
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
from ganforge.config import DataConfig
from ganforge.data import create as create_data
from ganforge.evaluation import evaluate
from ganforge.extractors import create as create_extractor

PRESETS = ("specgan-fsdd", "wavegan-fsdd", "cspecgan-fsdd")
ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"
METRICS = ["is", "fid", "kid"]


def fsdd(root: Path, split: str) -> ganforge.data.Dataset:
    return create_data(DataConfig(name="fsdd", root=str(root), split=split))


def score(clips: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
    """IS, FD and KID of ``clips [N, 1, L]`` against ``real`` in the fsdd classifier's features (+ label accuracy)."""
    out = evaluate(real, clips, metrics=METRICS, extractor="fsdd", n=len(clips))
    result = {"is": out["is_mean"], "fd": out["fid"], "kid": out["kid_mean"]}
    if labels is not None:
        predicted = create_extractor("fsdd").predict(clips)
        per_label = [float((predicted[labels == k] == k).float().mean()) for k in range(10)]
        result["accuracy"] = statistics.mean(per_label)
        result["worst_label_accuracy"] = min(per_label)
        result["per_label_accuracy"] = per_label
    return result


#: The truncation at which conditional runs are also scored (BigGAN's trick: latents redrawn beyond |z| > 0.8).
TRUNCATION = 0.8


def generate(run_dir: Path, n: int, seed: int, truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` clips of the run's generator (labels cycling through the digits when conditional)."""
    generator = ganforge.load(run_dir)
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    return generator.sample(n, seed=seed, labels=labels, truncation=truncation), labels


def run_one(preset: str, seed: int, threads: int, root: str, n: int, steps: int | None, score_only: bool,
            reuse: bool, runs_dir: str | None, tmp: Path) -> list[dict[str, Any]]:
    """The run's row, and for conditional runs a second row scored at ``TRUNCATION``."""
    run_dir, overrides, seconds = study_run(preset, seed, threads, root, steps, reuse, runs_dir, tmp, train=not score_only)
    clips, labels = generate(run_dir, n, seed=10_000 + seed)
    real = fsdd(Path(root), "train").data
    tag = {"run": run_key(preset, seed, overrides), "seed": seed, "seconds": seconds}
    rows = [{"preset": preset, **tag, "steps": ganforge.load(run_dir).meta.get("step"), **score(clips, real, labels)}]
    if labels is not None:  # conditional: also at the truncation that trades diversity for intelligibility
        clips, labels = generate(run_dir, n, seed=10_000 + seed, truncation=TRUNCATION)
        rows.append({"preset": f"{preset} (truncation {TRUNCATION})", **tag, **score(clips, real, labels)})
    return rows


def baselines(root: Path, n: int) -> list[dict[str, Any]]:
    """Real test clips and white noise at the real clips' RMS, scored like the generators."""
    train, test = fsdd(root, "train"), fsdd(root, "test")
    rms = float(train.data.pow(2).mean().sqrt())
    noise = (torch.randn(n, *train.shape, generator=torch.Generator().manual_seed(0)) * rms).clamp(-1, 1)
    return [
        {"preset": "real (test split)", "seed": "-", **score(test.data, train.data, test.labels)},
        {"preset": "white noise", "seed": "-", **score(noise, train.data)},
    ]


def summarise(results: list[dict[str, Any]]) -> str:
    lines = ["| clips | seeds | IS (higher) | FD (lower) | KID (lower) | label accuracy | min. per label | train time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    order = [*PRESETS, f"cspecgan-fsdd (truncation {TRUNCATION})", "real (test split)", "white noise"]
    for name in sorted({r["preset"] for r in results}, key=lambda p: order.index(p) if p in order else 99):
        rs = [r for r in results if r["preset"] == name]

        def cell(key: str, fmt: str) -> str:
            return mean_sd(rs, key, fmt)

        minutes = [r["seconds"] / 60 for r in rs if r.get("seconds")]
        lines.append(f"| {name} | {len(rs)} | {cell('is', '.2f')} | {cell('fd', '.1f')} | {cell('kid', '.3f')} | "
                     f"{cell('accuracy', '.1%')} | {cell('worst_label_accuracy', '.1%')} | "
                     f"{(f'{statistics.mean(minutes):.1f} min') if minutes else '-'} |")
    return "\n".join(lines)


def picture(root: Path, runs_dir: Path, presets: list[str], out: Path) -> list[str]:
    """One row of spectrograms per source (real, then each preset's lowest-seed run in ``runs_dir``), digits 0-9 in order.

    Returns the presets drawn (those with a finished run in ``runs_dir``)."""
    from ganforge.audio import spectrogram_images
    from ganforge.viz import image_grid

    test = fsdd(root, "test")
    rows, drawn = [torch.stack([test.data[test.labels == k][0] for k in range(10)])], []
    for preset in presets:
        runs = sorted(runs_dir.glob(f"{preset}-seed*/generator/model.safetensors"))
        if runs:
            clips, _ = generate(runs[0].parent.parent, 10, seed=10_000)
            rows.append(clips)
            drawn.append(f"{preset} ({runs[0].parent.parent.name.rsplit('-', 1)[-1]})")
    image_grid(spectrogram_images(torch.cat(rows)), nrow=10).save(out)
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    study_arguments(parser, PRESETS, "generated clips scored")
    parser.add_argument("--root", type=Path, default=ROOT, help="the FSDD recordings/ folder")
    parser.add_argument("--score-only", action="store_true", help="score the runs in --runs-dir without training")
    parser.add_argument("--summary", action="store_true",
                        help="train nothing: the table of the runs --json holds (baselines scored again), and the picture")
    parser.add_argument("--picture", type=Path, default=None, help="spectrograms of real and generated digits (needs --runs-dir)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    presets = args.presets.split(",")
    runs = [(p, int(s), args.threads, str(args.root), args.n, args.steps, args.score_only,
             args.reuse, str(args.runs_dir) if args.runs_dir else None) for p in presets for s in args.seeds.split(",")]
    describe = lambda rows: "\n".join(  # noqa: E731
        f"{r['preset']:14} seed {r['seed']}: IS {r['is']:.2f}, FD {r['fd']:.1f}, KID {r['kid']:.3f}"
        + (f", accuracy {r['accuracy']:.1%} (min. {r['worst_label_accuracy']:.1%})" if "accuracy" in r else "")
        + (f" ({r['seconds'] / 60:.1f} min)" if r.get("seconds") else "") for r in rows)
    if args.summary:
        results = [row for rows in measured(args.json).values() for row in rows]
    else:
        keep = measured(args.json) if args.reuse else {}
        results = run_all(run_one, runs, args.jobs, args.json, describe, key=study_key, keep=keep)
    results += baselines(args.root, args.n)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.picture and args.runs_dir:
        drawn = picture(args.root, args.runs_dir, presets, args.picture)
        print(f"{args.picture}: real test clips, then {', '.join(drawn) or 'no run'}")
    print()
    print(summarise(results))


if __name__ == "__main__":
    main()
