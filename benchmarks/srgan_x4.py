"""SRGAN x4 on CPU: the pixel-loss phase and the adversarial phase against bicubic on Set5/Set14 (issue 7).

Trains the ``srgan-x4`` preset (SRResNet on L1 for ``pretrain_steps``, then RaGAN +
pixel loss) in segments, resuming the same run (resume is exact and the preset's learning
rate is constant, so the segments are one run), and scores the generator after each
segment with :func:`ganforge.evaluation.superres.evaluate_sr`: PSNR/SSIM on luma Y, border 4,
low-resolution inputs made with MATLAB's ``imresize`` (the published protocol; bicubic:
Set5 28.42 / 0.8104, Set14 26.00 / 0.7027).

Reference rows: MATLAB bicubic (the standard baseline) and torch's bicubic (``a = -0.75``,
what the network's ``bicubic_skip`` path adds to its residual, i.e. roughly the untrained
network: the pixel phase must beat both to have learnt anything).

    python benchmarks/srgan_x4.py [--out runs/srgan-x4-study] [--evals 300,600,1200]
        [--set KEY=VALUE ...] [--json benchmarks/results/srgan_x4.json] [--image docs/images/srgan-x4-butterfly.png]
        [--resume]  # continue a study cut short (the run resumes exactly from its last checkpoint)

Results are rewritten after every segment, so a study cut short still reports what it
reached. The image shows ``bicubic | SRResNet (pixel phase) | SRGAN (adversarial) | HR`` on
Set5's butterfly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
SETS = ROOT.parent / "shared" / "data" / "sr"
PUBLISHED_BICUBIC = {"set5": (28.42, 0.8104), "set14": (26.00, 0.7027)}


def torch_bicubic(lr: np.ndarray, scale: int = 4) -> np.ndarray:
    """``F.interpolate(bicubic, a=-0.75)`` of a uint8 image (the networks' skip path), uint8."""
    x = torch.from_numpy(np.ascontiguousarray(lr)).float()
    x = x[None, None] if x.dim() == 2 else x.permute(2, 0, 1)[None]
    y = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).round().clamp(0, 255).to(torch.uint8)
    y = y[0].permute(1, 2, 0).numpy()
    return y[..., 0] if lr.ndim == 2 else y


def references(sets: list[Path]) -> dict[str, Any]:
    from ganforge.evaluation.superres import score_folder, set_name

    rows = {}
    for folder in sets:
        matlab = score_folder(folder, 4)
        torch_rows = score_folder(folder, 4, torch_bicubic)
        rows[set_name(folder)] = {
            "bicubic_matlab": {"psnr": matlab["bicubic_psnr"], "ssim": matlab["bicubic_ssim"]},
            "bicubic_torch": {"psnr": torch_rows["psnr"], "ssim": torch_rows["ssim"]},
            "published_bicubic": dict(zip(("psnr", "ssim"), PUBLISHED_BICUBIC.get(set_name(folder), (None, None)))),
        }
    return rows


def comparison_image(run_dir: Path, path: Path, hr_path: Path) -> None:
    """``bicubic | SRResNet | SRGAN | HR`` on one benchmark image, with provenance."""
    from PIL import Image

    from ganforge.inference import apply_generator
    from ganforge.metrics.psnr_ssim import bicubic_upscale, read_image
    from ganforge.models import load_generator
    from ganforge.viz import comparison_grid, save_png

    hr, lr, bicubic = bicubic_upscale(read_image(hr_path), 4)
    columns = [bicubic]
    for folder in ("generator-pixel", "generator"):
        if (run_dir / folder).is_dir():
            columns.append(apply_generator(load_generator(run_dir / folder), lr, tile=128, margin=16))
    columns.append(hr)
    tensors = [torch.from_numpy(np.array(c)).permute(2, 0, 1)[None] for c in columns]
    image: Image.Image = comparison_grid(tensors, max_rows=1)
    save_png(image, path, {"what": "bicubic | SRResNet (pixel phase) | SRGAN (adversarial) | HR", "image": hr_path.name,
                           "run": str(run_dir), "synthetic": "true"})


def main() -> None:
    import ganforge
    from ganforge.evaluation.superres import evaluate_sr
    from ganforge.validate import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "srgan-x4-study")
    parser.add_argument("--evals", default="300,600,1200", help="extra evaluation steps within the pixel phase")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="preset overrides")
    parser.add_argument("--sets", default=f"{SETS / 'set5'},{SETS / 'set14'}")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "srgan_x4.json")
    parser.add_argument("--image", type=Path, default=ROOT / "docs" / "images" / "srgan-x4-butterfly.png")
    parser.add_argument("--resume", action="store_true",
                        help="continue a study cut short: keep --out and the stages already in --json")
    args = parser.parse_args()

    if not any(item.startswith("data.root=") for item in args.set):  # the preset names no data folder
        args.set = [f"data.root={ROOT.parent / 'shared' / 'data' / 'celeba' / 'images'}", *args.set]
    cfg = load_config("srgan-x4", list(args.set))
    pre, total = cfg.recipe_options.get("pretrain_steps", 1000), cfg.train.steps
    marks = sorted({int(s) for s in args.evals.split(",") if s and 0 < int(s) < pre} | {pre, total})
    sets = [Path(s) for s in args.sets.split(",")]
    result: dict[str, Any] = {
        "preset": "srgan-x4", "overrides": args.set, "pretrain_steps": pre, "steps": total,
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "load_average_at_start": os.getloadavg()[0]},
        "references": references(sets), "stages": [],
    }
    print(json.dumps(result["references"], indent=1), flush=True)
    done = 0
    if args.resume and args.json.exists() and (args.out / "checkpoints" / "latest.pt").exists():
        previous = json.loads(args.json.read_text())
        result["stages"] = previous["stages"]
        result["machine"]["resumed_load_average"] = os.getloadavg()[0]
        done = max((stage["step"] for stage in result["stages"]), default=0)
        print(f"resuming {args.out} after step {done}", flush=True)
    elif args.out.exists():
        shutil.rmtree(args.out)
    trained = result["stages"][-1]["train_seconds"] if result["stages"] else 0.0
    for mark in marks:
        if mark <= done:
            continue
        start = time.perf_counter()
        if not (args.out / "checkpoints" / "latest.pt").exists():
            ganforge.train("srgan-x4", out=args.out, overrides=[*args.set, f"train.steps={mark}", "train.progress=false"])
        else:
            ganforge.train(resume=args.out, overrides={"train.steps": mark})
        trained += time.perf_counter() - start
        if mark == pre:
            shutil.copytree(args.out / "generator", args.out / "generator-pixel", dirs_exist_ok=True)
        scores = evaluate_sr(args.out, sets=sets)
        stage = {"step": mark, "phase": "pixel" if mark <= pre else "adversarial", "train_seconds": round(trained, 1),
                 **{k: v for k, v in scores.items() if k != "sets"}}
        result["stages"].append(stage)
        print(json.dumps(stage), flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    comparison_image(args.out, args.image, sets[0] / "butterfly.png")
    print(f"wrote {args.json} and {args.image}")


if __name__ == "__main__":
    main()
