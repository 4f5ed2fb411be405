"""Watermark study: what the invisible mark survives, what it costs, and how often real images look marked.

Hosts: 64x64 images of a ganforge generator (``--run RUN_DIR``; by default a short
``dcgan64-celeba`` run trained here on ../shared/data/celeba, kept in ``--runs-dir``), and
CelebA photos centre-cropped and resized to 32, 64, 128 and 256 px. Each is marked with the
default key and a 64-bit payload, then attacked: none, JPEG 90 / 75 / 50, resize 0.5x (Pillow
bilinear), centre crop 0.75, Gaussian blur (radius 1). Figures: bit accuracy, the share of
images whose mark is found (key id) and intact (CRC), PSNR and SSIM (on Y) of marked against
unmarked. False positives: every unmarked real image read under the default key (CIFAR-10
test, CelebA, Set14, at their own sizes); an image counts as marked when the key id matches
(at most one of 16 bits wrong), as ``ganforge verify`` decides.

    python benchmarks/watermark.py [--run RUN_DIR] [--steps 300] [--n 200] [--runs-dir DIR]
        [--json benchmarks/results/watermark.json]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image, ImageFilter

import ganforge
from ganforge.metrics.psnr_ssim import psnr, ssim
from ganforge.safeguards import watermark as wm

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert(Image.fromarray(image).mode))


def half_size(image: np.ndarray) -> np.ndarray:
    """The image halved (Pillow bilinear)."""
    return np.asarray(Image.fromarray(image).resize((image.shape[1] // 2, image.shape[0] // 2), Image.BILINEAR))


def centre_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    h, w = image.shape[:2]
    ch, cw = round(h * fraction), round(w * fraction)
    return image[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]


ATTACKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "jpeg90": lambda x: jpeg(x, 90),
    "jpeg75": lambda x: jpeg(x, 75),
    "jpeg50": lambda x: jpeg(x, 50),
    "resize0.5": half_size,
    "crop0.75": lambda x: centre_crop(x, 0.75),
    "blur1": lambda x: np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(1))),
}


def study(images: list[np.ndarray], seed: int = 0) -> dict[str, Any]:
    """Mark every image with its own random generator id and score every attack."""
    rng = np.random.default_rng(seed)
    rows: dict[str, dict[str, list[float]]] = {name: {"bits": [], "found": [], "intact": []} for name in ATTACKS}
    quality: dict[str, list[float]] = {"psnr": [], "ssim": [], "ms": []}
    for image in images:
        bits = wm.payload(wm.DEFAULT_KEY, f"{int(rng.integers(2**32)):08x}")
        start = time.perf_counter()
        marked = wm.embed(image, bits)
        quality["ms"].append(1000 * (time.perf_counter() - start))
        quality["psnr"].append(psnr(marked, image, y_channel=False))  # every channel, as the change is
        quality["ssim"].append(ssim(marked, image))
        for name, attack in ATTACKS.items():
            reading = wm.read(attack(marked))
            rows[name]["bits"].append(float((reading.bits == bits).mean()))
            rows[name]["found"].append(float(reading.found))
            rows[name]["intact"].append(float(reading.intact and (reading.bits == bits).all()))
    return {"n": len(images), **{k: float(np.mean(v)) for k, v in quality.items()}, "psnr_min": float(np.min(quality["psnr"])),
            "attacks": {name: {k: float(np.mean(v)) for k, v in row.items()} for name, row in rows.items()}}


def celeba(size: int, n: int, offset: int = 0) -> list[np.ndarray]:
    """``n`` CelebA photos, centre-cropped square and resized to ``size`` (bicubic)."""
    files = sorted((SHARED / "celeba" / "images").glob("*.jpg"))[offset:offset + n]
    out = []
    for path in files:
        with Image.open(path) as im:
            im = im.convert("RGB")
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            out.append(np.asarray(im.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)))
    return out


def generated(run_dir: Path | None, runs_dir: Path, steps: int, n: int, threads: int) -> tuple[list[np.ndarray], str]:
    """``n`` 64x64 samples of ``run_dir``, or of a ``dcgan64-celeba`` run trained here for ``steps`` steps."""
    if run_dir is None:
        run_dir = runs_dir / f"dcgan64-celeba-{steps}"
        if not (run_dir / "generator").is_dir():
            ganforge.train("dcgan64-celeba", out=run_dir, overrides={
                "data.root": str(SHARED / "celeba" / "images"), "train.steps": steps, "train.batch_size": 64,
                "model.base_channels": 32, "train.threads": threads, "train.progress": True, "eval.every": 0,
                "train.sample_every": steps, "train.checkpoint_every": steps})
    generator = ganforge.load(run_dir)
    samples = generator.sample(n, seed=1)  # [N, C, 64, 64] in [-1, 1]
    stored = ((samples.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [s[..., 0] if s.shape[2] == 1 else s for s in stored], str(run_dir)


def false_positives() -> dict[str, dict[str, float]]:
    """Unmarked real images read under the default key: how many count as marked."""
    sets = {
        "cifar10-test (32x32)": sorted((SHARED / "cifar10" / "test").rglob("*.jpg")),
        "celeba (89x109)": sorted((SHARED / "celeba" / "images").glob("*.jpg")),
        "set14 (native)": sorted((SHARED / "sr" / "set14").glob("*.png")),
    }
    out = {}
    for name, files in sets.items():
        found, confidence = 0, []
        for path in files:
            with Image.open(path) as im:
                reading = wm.read(np.asarray(im.convert("RGB")))
            found += reading.found
            confidence.append(reading.confidence)
        out[name] = {"images": len(files), "found": found, "rate": found / max(len(files), 1),
                     "confidence": float(np.mean(confidence)) if confidence else math.nan}
    return out


def table(results: dict[str, Any]) -> str:
    names = list(ATTACKS)
    lines = ["| hosts | PSNR (min) | SSIM | " + " | ".join(names) + " |", "|---|---:|---:|" + "---:|" * len(names)]
    for host, r in results["hosts"].items():
        cells = [f"{r['attacks'][a]['bits']:.3f} ({r['attacks'][a]['found']:.0%})" for a in names]
        lines.append(f"| {host} | {r['psnr']:.1f} ({r['psnr_min']:.1f}) | {r['ssim']:.4f} | " + " | ".join(cells) + " |")
    lines.append("\nCells: bit accuracy (share of images whose mark is found).\n")
    lines.append("| real images | count | reported marked | rate | mean confidence |")
    lines.append("|---|---:|---:|---:|---:|")
    for name, r in results["false_positives"].items():
        lines.append(f"| {name} | {r['images']:,} | {r['found']} | {r['rate']:.3%} | {r['confidence']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a run whose 64x64 samples are the generated hosts")
    parser.add_argument("--steps", type=int, default=300, help="steps of the dcgan64-celeba run trained without --run")
    parser.add_argument("--n", type=int, default=200, help="images per host set")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/benchmarks"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (SHARED / "celeba" / "images").is_dir():
        raise SystemExit(f"this study needs CelebA, CIFAR-10 and Set14 under {SHARED} (see ../shared/data/README.md)")
    torch.set_num_threads(args.threads)
    images, source = generated(args.run, args.runs_dir, args.steps, args.n, args.threads)
    hosts = {f"generated 64x64 ({Path(source).name})": study(images)}
    for size in (32, 64, 128, 256):
        hosts[f"CelebA photos {size}x{size}"] = study(celeba(size, args.n, offset=5000))
    results = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
               "method": wm.METHOD, "step": wm.STEP, "band": list(wm.BAND), "bits": wm.BITS, "generator_run": source,
               "hosts": hosts, "false_positives": false_positives()}
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
