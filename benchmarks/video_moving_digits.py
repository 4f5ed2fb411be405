"""Video study: MoCoGAN on moving digits, beside real clips and two baselines that only motion-aware metrics catch.

Every (preset, seed) trains from scratch at the preset's own budget (``mocogan-moving-digits``,
``cmocogan-moving-digits``); its final EMA generator draws ``--n`` clips that are scored against
the moving-digits train split: the Fréchet video distance and IS in the shipped
``moving-digits`` classifier's features, the frame FID, identity consistency and confident
frames in the ``digits`` classifier's reading of each frame, and the motion of the digit's centre.
Sources scored by the same code for context:

* real clips of the test split (fresh clips of held-out digits: what a perfect generator scores);
* the test clips with their frames shuffled in time (every frame real, the motion broken);
* the first frame of each test clip repeated (a real picture that never moves);
* the untrained generator of the first preset trained (seed 0), named in its row.

    python benchmarks/video_moving_digits.py [--presets mocogan-moving-digits,cmocogan-moving-digits] [--seeds 0,1,2]
        [--threads 2] [--jobs 1] [--runs-dir DIR] [--reuse] [--json benchmarks/results/video_moving_digits.json]
        [--picture benchmarks/results/video_moving_digits.png]
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
from ganforge.evaluation.sources import Source
from ganforge.models import MODELS
from ganforge.validate import load_config
from ganforge.video import VIDEO

PRESETS = ("mocogan-moving-digits", "cmocogan-moving-digits")
METRICS = ["fvd", "is", "frame-fid", "identity", "motion"]


def split(name: str) -> ganforge.data.Dataset:
    return create_data(DataConfig(name="moving-digits", split=name))


def score(clips: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None = None,
          class_names: list[str] | None = None) -> dict[str, float]:
    """The study's scores of uint8 or [-1, 1] clips ``[N, T, C, H, W]`` against ``real`` (+ accuracy for clips labelled
    with digits; ``class_names`` default ``0`` .. ``9``; pseudo-labels such as ``cluster 3`` get none)."""
    info = {} if labels is None else {"labels": labels, "class_names": class_names or [str(k) for k in range(10)]}
    fake = Source(VIDEO.to_stored(clips), "clips", info, modality="video")  # labelled: identity adds frame_accuracy
    out = evaluate(real, fake, metrics=METRICS, extractor="moving-digits", n=len(clips))
    keys = ("fvd", "is_mean", "frame_fid", "identity_consistency", "confident_frames", "frame_accuracy", "motion_speed",
            "motion_acceleration", "motion_speed_real", "motion_acceleration_real")
    return {key: out[key] for key in keys if key in out}


def generate(run_dir: Path, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None, list[str] | None]:
    """``n`` clips of the run's EMA generator (labels cycling through its classes), the labels and their names."""
    generator = ganforge.load(run_dir)
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    return generator.sample(n, seed=seed, labels=labels), labels, (getattr(generator, "meta", None) or {}).get("class_names")


def run_one(preset: str, seed: int, threads: int, root: str, n: int, steps: int | None, reuse: bool,
            runs_dir: str | None, tmp: Path) -> list[dict[str, Any]]:
    # root "": moving-digits is procedural
    run_dir, overrides, seconds = study_run(preset, seed, threads, root, steps, reuse, runs_dir, tmp)
    clips, labels, names = generate(run_dir, n, seed=10_000 + seed)
    return [{"preset": preset, "run": run_key(preset, seed, overrides), "seed": seed, "seconds": seconds,
             **score(clips, split("train").data, labels, names)}]


def baselines(n: int, preset: str) -> list[dict[str, Any]]:
    """Real test clips, the same shuffled in time, their first frame repeated, and the untrained generator."""
    real, test = split("train").data, split("test").data[:n]
    order = torch.randperm(test.shape[1], generator=torch.Generator().manual_seed(0))
    config = load_config(preset)
    torch.manual_seed(0)
    untrained, _ = MODELS.get(config.model.name)(tuple(test.shape[1:]), 0, **config.model.options)
    untrained.eval()
    with torch.no_grad():
        noise = untrained(torch.randn(n, untrained.latent_dim, generator=torch.Generator().manual_seed(0)))
    return [
        {"preset": "real (test split)", "seed": "-", **score(test, real)},
        {"preset": "real, frames shuffled", "seed": "-", **score(test[:, order], real)},
        {"preset": "real, first frame repeated", "seed": "-", **score(test[:, :1].expand_as(test).contiguous(), real)},
        {"preset": f"untrained generator ({preset})", "seed": "-", **score(noise, real)},
    ]


def summarise(results: list[dict[str, Any]]) -> str:
    lines = ["| clips | seeds | FVD (lower) | IS (higher) | frame FID | identity | confident frames | frame accuracy | "
             "speed (px/frame) | acceleration | train time |", "|---|---:|" + "---:|" * 9]
    order = [*PRESETS, "real (test split)", "real, frames shuffled", "real, first frame repeated", "untrained generator"]
    def rank(name: str) -> int:  # "untrained generator (PRESET)" sorts as "untrained generator"
        base = name if name in order else name.split(" (")[0]
        return order.index(base) if base in order else len(order)

    for name in sorted({r["preset"] for r in results}, key=rank):
        rs = [r for r in results if r["preset"] == name]
        minutes = [r["seconds"] / 60 for r in rs if r.get("seconds")]
        cells = [mean_sd(rs, key, fmt) for key, fmt in (("fvd", ".1f"), ("is_mean", ".2f"), ("frame_fid", ".2f"),
                                                        ("identity_consistency", ".1%"), ("confident_frames", ".1%"),
                                                        ("frame_accuracy", ".1%"), ("motion_speed", ".2f"),
                                                        ("motion_acceleration", ".2f"))]
        lines.append(f"| {name} | {len(rs)} | " + " | ".join(cells) + f" | {f'{statistics.mean(minutes):.1f} min' if minutes else '-'} |")
    real = next((r for r in results if r.get("motion_speed_real") is not None), None)
    if real:
        lines.append(f"\nTraining clips: speed {real['motion_speed_real']:.2f}, acceleration {real['motion_acceleration_real']:.2f} "
                     "pixels a frame.")
    return "\n".join(lines)


def picture(runs_dir: Path, presets: list[str], out: Path, seed: int = 0) -> None:
    """Film strips: real test clips, then each preset's seed-``seed`` run (one clip a row)."""
    from ganforge.viz import image_grid

    rows = [split("test").data[:4]]
    for preset in presets:
        clips = generate(runs_dir / f"{preset}-seed{seed}", 4, seed=10_000 + seed)[0]
        rows.append(VIDEO.to_stored(clips))
    strips = torch.cat(rows)
    image_grid(strips.flatten(0, 1), nrow=strips.shape[1]).save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    study_arguments(parser, PRESETS, "generated clips scored")
    parser.add_argument("--picture", type=Path, default=None, help="film strips of real and generated clips (needs --runs-dir)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    presets = args.presets.split(",")
    runs = [(p, int(s), args.threads, "", args.n, args.steps, args.reuse, str(args.runs_dir) if args.runs_dir else None)
            for p in presets for s in args.seeds.split(",")]
    describe = lambda rows: "\n".join(  # noqa: E731
        f"{r['preset']:24} seed {r['seed']}: FVD {r['fvd']:.1f}, IS {r['is_mean']:.2f}, identity {r['identity_consistency']:.1%}, "
        f"confident {r['confident_frames']:.1%}" + (f", frame accuracy {r['frame_accuracy']:.1%}" if "frame_accuracy" in r else "")
        for r in rows)
    keep = measured(args.json) if args.reuse else {}
    results = run_all(run_one, runs, args.jobs, args.json, describe, key=study_key, keep=keep)
    results += baselines(args.n, presets[0])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.picture and args.runs_dir:
        picture(args.runs_dir, presets, args.picture)
    print()
    print(summarise(results))


if __name__ == "__main__":
    main()
