"""Latent editing (``ganforge edit``, ``ganforge mix``): SeFa and GANSpace directions change a trained generator's
output monotonically, and StyleGAN's style mixing takes coarse structure from one seed and fine detail from another."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import spearmanr

import ganforge
from ganforge.cli import main
from ganforge.core import to_uint8
from ganforge.editing import edit_strip, find_directions, parse_direction, style_mix
from ganforge.errors import UserError
from ganforge.extractors.classifier import load_classifier
from ganforge.models.base import seeded_latents
from tiny_configs import THREADS, TINY_DIGITS

#: A small StyleGAN on the digits at 16x16 (6 style layers: 4x4 = 0-2, 8x8 = 3-4, 16x16 = 5), about 30 s.
TINY_STYLEGAN = {"data.name": "digits", "data.resolution": 16, "data.hflip": False, "model.base_channels": 16,
                 "model.max_channels": 32, "model.latent_dim": 32, "model.w_dim": 32, "model.mapping_layers": 2,
                 "train.steps": 120, "train.batch_size": 32, "train.threads": THREADS, "train.progress": False,
                 "train.sample_every": 120, "train.checkpoint_every": 120, "train.seed": 0}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return ganforge.train("dcgan-digits", out=tmp_path_factory.mktemp("edit") / "dcgan",
                          overrides={**TINY_DIGITS, "train.steps": 300, "train.seed": 0}).dir


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    return ganforge.train("stylegan-cifar10", out=tmp_path_factory.mktemp("edit") / "stylegan", overrides=TINY_STYLEGAN).dir


@pytest.mark.parametrize("method", ["sefa", "ganspace"])
def test_the_first_direction_moves_a_digit_logit_monotonically(digits_run, method):
    generator = ganforge.load(digits_run)
    directions = find_directions(generator, method, 3)
    assert directions.space == "z" and torch.allclose(directions.vectors.norm(dim=1), torch.ones(3), atol=1e-4)
    classifier = load_classifier("digits")
    strengths = torch.linspace(-3, 3, 7)
    rho = np.zeros((16, 10))  # Spearman correlation of strength with each class's logit, per seed
    for i in range(16):
        images = edit_strip(generator, seeded_latents(1, generator.latent_dim, 100 + i)[0], directions, 0, strengths)
        logits = classifier(to_uint8(images)).logits.numpy()
        rho[i] = [spearmanr(strengths.numpy(), logits[:, c])[0] for c in range(10)]
    mean = np.nanmean(rho, axis=0)
    c = int(np.abs(mean).argmax())
    # measured (seed 0): sefa:0 raises the '4' logit, mean rho 0.98, 15 of 16 seeds above 0.8; ganspace:0 the '6', 0.94
    assert abs(mean[c]) > 0.85 and (np.sign(mean[c]) * rho[:, c] > 0.8).mean() >= 0.75
    assert torch.equal(find_directions(generator, method, 3).vectors, directions.vectors)  # the same on every call


def test_style_mixing_takes_coarse_layers_from_one_seed_and_fine_from_the_other(style_run):
    generator = ganforge.load(style_run)
    rows, cols = list(range(8)), list(range(10, 18))

    def coarse(x: torch.Tensor) -> torch.Tensor:  # 4x4 averages of 16x16 images
        return F.avg_pool2d(x, 4)

    def fine(x: torch.Tensor) -> torch.Tensor:  # what the 4x4 averages leave
        return x - F.interpolate(coarse(x), scale_factor=4, mode="nearest")

    def distances(layers: tuple[int, int]) -> dict[str, float]:
        grid = style_mix(generator, rows, cols, layers)
        c = len(cols)
        col = grid[1:c + 1]
        row = torch.stack([grid[(c + 1) * (i + 1)] for i in range(len(rows))])
        mixed = torch.stack([grid[(c + 1) * (i + 1) + 1:(c + 1) * (i + 2)] for i in range(len(rows))])  # [R, C, ...]
        d = {}
        for name, f in (("coarse", coarse), ("fine", fine)):
            d[f"{name}_row"] = float((f(mixed.flatten(0, 1)) - f(row).repeat_interleave(c, 0)).pow(2).mean())
            d[f"{name}_col"] = float((f(mixed.flatten(0, 1)) - f(col).repeat(len(rows), 1, 1, 1)).pow(2).mean())
        d["fine_unmixed"] = float((f(row).repeat_interleave(c, 0) - f(col).repeat(len(rows), 1, 1, 1)).pow(2).mean())
        return d

    early, late = distances((0, 2)), distances((3, generator.num_ws - 1))
    assert early["coarse_col"] < 0.5 * early["coarse_row"]  # the 4x4 styles of the column seed: its coarse layout
    assert late["coarse_row"] < 0.5 * late["coarse_col"]  # the 8x8 and 16x16 styles leave the row seed's layout ...
    assert late["fine_col"] < 0.85 * late["fine_unmixed"]  # ... and bring the column seed's fine detail (measured -26%)


def test_edit_and_mix_commands_write_watermarked_strips(digits_run, style_run, tmp_path, capsys):
    strip = tmp_path / "strip.png"
    assert main(["edit", str(digits_run), "--seed", "3", "--direction", "sefa:0", "--steps", "5", "--out", str(strip)]) == 0
    with Image.open(strip) as png:
        assert png.info["synthetic"] == "true" and png.info["direction"] == "sefa:0" and png.size[0] > 4 * png.size[1]
    latent = tmp_path / "w.npy"
    np.save(latent, np.zeros(32, dtype=np.float32))  # a w of the StyleGAN run
    assert main(["edit", str(style_run), "--latent", str(latent), "--direction", "ganspace:1", "--out", str(tmp_path / "s.png")]) == 0
    grid = tmp_path / "mix.png"
    assert main(["mix", str(style_run), "--rows", "1", "2", "--cols", "3", "4", "5", "--layers", "0-2", "--out", str(grid)]) == 0
    with Image.open(grid) as png:
        assert png.info["layers"] == "0-2" and png.size == (4 * 18 + 2, 3 * 18 + 2)  # (1 + 3) x (1 + 2) cells of 16 px


@pytest.mark.parametrize("argv, message", [
    (["--seed", "1", "--direction", "pca:0"], "--direction is sefa:K or ganspace:K"),
    (["--seed", "1", "--direction", "sefa:0", "--strength", "big"], "--strength is LO,HI"),
    (["--seed", "1", "--direction", "sefa:0", "--out-dir"], None),
])
def test_edit_errors_are_one_line(tiny_dcgan_run, tmp_path, capsys, argv, message):
    if message is None:  # argparse's own usage error
        with pytest.raises(SystemExit):
            main(["edit", str(tiny_dcgan_run.dir), *argv])
        return
    assert main(["edit", str(tiny_dcgan_run.dir), *argv, "--out", str(tmp_path / "x.png")]) != 0
    assert message in capsys.readouterr().err


def test_mix_refuses_non_stylegan_runs_and_bad_layers(tiny_dcgan_run, style_run, tmp_path, capsys):
    assert main(["mix", str(tiny_dcgan_run.dir), "--rows", "1", "--cols", "2", "--out", str(tmp_path / "m.png")]) != 0
    assert "needs a StyleGAN run" in capsys.readouterr().err
    assert main(["mix", str(style_run), "--rows", "1", "--cols", "2", "--layers", "2-9", "--out", str(tmp_path / "m.png")]) != 0
    assert "0 <= A <= B < 6" in capsys.readouterr().err
    with pytest.raises(UserError, match="sefa:K or ganspace:K"):
        parse_direction("sefa")
