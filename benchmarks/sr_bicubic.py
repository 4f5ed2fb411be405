"""Bicubic baseline of the SR benchmarks: PSNR/SSIM (Y channel, border = scale) on Set5/Set14.

The standard protocol of :mod:`ganforge.metrics.psnr_ssim` (MATLAB-compatible ``imresize`` down
and up), so the figures compare with the bicubic rows of published SR tables.

    python benchmarks/sr_bicubic.py [--data ../shared/data/sr] [--scales 2,4] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganforge.metrics.psnr_ssim import bicubic_upscale, psnr, read_image, ssim

ROOT = Path(__file__).resolve().parents[1]
#: Bicubic rows as published (e.g. Kim et al., VDSR, CVPR 2016; Lim et al., EDSR, 2017).
PUBLISHED = {("set5", 2): (33.66, 0.9299), ("set5", 4): (28.42, 0.8104),
             ("set14", 2): (30.24, 0.8688), ("set14", 4): (26.00, 0.7027)}


def bicubic_scores(folder: Path, scale: int) -> dict[str, float]:
    """Mean PSNR/SSIM of bicubic upscaling over the images of ``folder``."""
    psnrs, ssims = [], []
    for path in sorted(folder.glob("*.png")):
        hr, _, sr = bicubic_upscale(read_image(path), scale)
        psnrs.append(psnr(sr, hr, crop_border=scale))
        ssims.append(ssim(sr, hr, crop_border=scale))
    return {"psnr": sum(psnrs) / len(psnrs), "ssim": sum(ssims) / len(ssims), "images": len(psnrs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sr")
    parser.add_argument("--scales", default="2,4")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    print("| set | scale | PSNR (dB) | SSIM | published PSNR / SSIM |\n|---|---:|---:|---:|---:|")
    for name in ("set5", "set14"):
        for scale in (int(s) for s in args.scales.split(",")):
            r = {"set": name, "scale": scale, **bicubic_scores(args.data / name, scale)}
            rows.append(r)
            ref = PUBLISHED.get((name, scale))
            ref_text = f"{ref[0]:.2f} / {ref[1]:.4f}" if ref else "-"
            print(f"| {name} | x{scale} | {r['psnr']:.2f} | {r['ssim']:.4f} | {ref_text} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
