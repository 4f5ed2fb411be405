"""Super-resolution: SRResNet/RRDB/discriminator, the srgan recipe, VGG content loss, eval, ``ganforge upscale``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import models
from ganforge.cli import main
from ganforge.config import apply_overrides
from ganforge.errors import ConfigError, UserError
from ganforge.evaluation.superres import evaluate_sr
from ganforge.extractors.vgg import VGG19Features, conv_indices
from ganforge.inference import apply_generator, read_input
from ganforge.losses.paired import content_loss, pixel_loss
from ganforge.metrics.psnr_ssim import bicubic_upscale, psnr
from ganforge.models import is_translator, load_generator, save_generator
from ganforge.models.srgan import RRDBNet, SRDiscriminator, SRResNet
from ganforge.training.checkpoint import load_checkpoint
from ganforge.training.srgan import SRGANRecipe, downsample
from ganforge.validate import load_config
from tiny_configs import THREADS

# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def faces(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/``: 96 CelebA faces (89x109); ``heldout/``: 6 others; ``one/``: a single face."""
    root = tmp_path_factory.mktemp("faces")
    source = shared_data / "celeba" / "images"
    for folder, numbers in (("train", range(1, 97)), ("heldout", range(9001, 9007)), ("one", range(9001, 9002))):
        (root / folder).mkdir()
        for i in numbers:
            shutil.copy(source / f"{i:06d}.jpg", root / folder)
    return root


def tiny_config(root: Path, **overrides) -> dict:
    """A 2-block x4 SRResNet (8 channels) with a 2-stage discriminator on 32x32 HR crops."""
    cfg = {
        "recipe": "srgan",
        "recipe_options": {"pretrain_steps": 3, "eval_sets": [str(root / "heldout")]},
        "data": {"name": "sr-folder", "root": str(root / "train"), "crop": 32, "hflip": True},
        "model": {"name": "srresnet", "scale": 4, "channels": 8, "blocks": 2, "norm": "none", "bicubic_skip": True,
                  "d_base_channels": 8, "d_stages": 2, "d_hidden": 16},
        "loss": {"name": "relativistic-average"},
        "optim": {"g_betas": [0.9, 0.999], "d_betas": [0.9, 0.999]},
        "train": {"steps": 6, "batch_size": 4, "ema_decay": 0.0, "threads": THREADS, "progress": False, "log_every": 1,
                  "sample_every": 3, "checkpoint_every": 3, "sample_count": 4},
    }
    return apply_overrides(cfg, overrides)


@pytest.fixture(scope="module")
def tiny_run(faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 steps: 3 of pixel loss, 3 adversarial."""
    return ganforge.train(tiny_config(faces), out=tmp_path_factory.mktemp("runs") / "tiny").dir


def _image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1, channels)).repeat(4, 0).repeat(4, 1)[:h, :w]
    out = np.clip(128 + 40 * smooth + rng.normal(0, 8, (h, w, channels)), 0, 255).astype(np.uint8)
    return out[..., 0] if channels == 1 else out


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("make", [
    lambda s: SRResNet(scale=s, channels=8, blocks=2, norm="batch"),
    lambda s: SRResNet(scale=s, channels=8, blocks=2, norm="none", bicubic_skip=True),
    lambda s: RRDBNet(scale=s, channels=8, blocks=1, growth=4),
], ids=["srresnet-bn", "srresnet-nobn-skip", "rrdb"])
def test_generators_upscale_any_size_and_reload(make, scale, tmp_path):
    torch.manual_seed(0)
    g = make(scale).eval()
    x = torch.rand(2, 3, 13, 9) * 2 - 1  # odd sizes: fully convolutional, size_multiple 1
    y = g(x)
    assert y.shape == (2, 3, 13 * scale, 9 * scale) and y.min() >= -1 and y.max() <= 1
    save_generator(g, tmp_path / "g", {"task": "super-resolution"})
    loaded = load_generator(tmp_path / "g")
    assert is_translator(loaded) and loaded.scale == scale and torch.equal(loaded.translate(x), g.translate(x))


def test_paper_sizes_and_the_bicubic_start():
    """SRResNet-16 (BN) has 1.55M parameters (SRGAN's), RRDBNet-23 16.7M (ESRGAN's); with
    bicubic_skip the untrained network is bicubic upsampling plus a small residual."""
    assert round(sum(p.numel() for p in SRResNet().parameters()) / 1e6, 2) == 1.55
    assert round(sum(p.numel() for p in RRDBNet().parameters()) / 1e6, 1) == 16.7
    torch.manual_seed(0)
    g = SRResNet(channels=16, blocks=2, norm="none", bicubic_skip=True).eval()
    x = torch.rand(1, 3, 16, 16) * 1.6 - 0.8
    bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)
    assert (g(x) - bicubic).abs().mean() < 0.05
    with pytest.raises(ConfigError, match="scale must be one of 2, 4"):
        SRResNet(scale=3)


def test_discriminator_takes_any_crop_size():
    d = SRDiscriminator(3, base_channels=8, stages=3, hidden=16)
    assert d(torch.randn(2, 3, 24, 24)).shape == (2,) and d(torch.randn(3, 3, 40, 56)).shape == (3,)


def test_lr_inputs_approximate_matlab_imresize(faces):
    """Training LR (torch, antialiased bicubic) vs the evaluation protocol's MATLAB imresize: within 1.5 levels."""
    from ganforge.metrics.psnr_ssim import imresize

    hr = np.asarray(Image.open(next((faces / "one").iterdir())).convert("RGB"))[:108, :88]
    lr_matlab = imresize(hr, 1 / 4).astype(float)
    x = torch.from_numpy(hr.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    lr_torch = ((downsample(x, 4)[0].permute(1, 2, 0) + 1) * 127.5).numpy()
    assert lr_torch.shape == lr_matlab.shape and np.abs(lr_torch - lr_matlab)[2:-2, 2:-2].mean() < 1.5


# --------------------------------------------------------------------------- recipe


def test_phases_switch_at_pretrain_steps_and_resume_exactly(faces, tiny_run, tmp_path):
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "g_pixel" in r]
    assert [r["phase"] for r in steps] == [1, 1, 1, 2, 2, 2]
    assert all("d_loss" not in r for r in steps[:3]) and all({"d_loss", "g_adv", "d_real"} <= set(r) for r in steps[3:])
    grid = Image.open(tiny_run / "samples" / "step-000006.png")  # LR | bicubic | SR | HR, 4 rows of 32 px
    assert grid.size == (4 * 34 + 2, 4 * 34 + 2) and grid.text["synthetic"] == "true"
    meta = json.loads((tiny_run / "generator" / "config.json").read_text())["meta"]
    assert meta["task"] == "super-resolution" and meta["scale"] == 4
    # 2 steps, then resume across the phase boundary to 6 == 6 in one go
    ganforge.train(tiny_config(faces, **{"train.steps": 2}), out=tmp_path / "split")
    resumed = ganforge.train(resume=tmp_path / "split", overrides={"train.steps": 6})
    a = load_checkpoint(tiny_run / "checkpoints" / "latest.pt")["recipe"]["networks"]
    b = load_checkpoint(resumed.dir / "checkpoints" / "latest.pt")["recipe"]["networks"]
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


@pytest.mark.parametrize("overrides, message", [
    ({"model.name": "pix2pix"}, "needs a super-resolution model"),
    ({"data.crop": 30}, "multiples of 4"),
    ({"recipe_options.pixel_loss": "l3"}, "pixel_loss must be l1 or mse"),
    ({"train.n_critic": 2}, "train.n_critic=1"),
    ({"recipe_options.content_extractor": "vgg19"}, "VGG-19 weights not found: download https://download.pytorch.org"),
])
def test_config_mistakes_are_one_line_errors(faces, tmp_path, monkeypatch, overrides, message):
    monkeypatch.delenv("GANFORGE_VGG19_WEIGHTS", raising=False)
    cfg = tiny_config(faces, **overrides)
    if overrides.get("model.name") == "pix2pix":
        cfg["model"] = {"name": "pix2pix", "depth": 2, "base_channels": 4, "d_layers": 1}
    with pytest.raises(ConfigError, match=message):
        ganforge.Trainer(load_config(cfg), tmp_path / "r")


def test_a_tiny_srresnet_learns_to_beat_bicubic(faces, tmp_path):
    """150 pixel-loss steps of a 16-channel x2 SRResNet on real face crops: on held-out faces
    (MATLAB-protocol LR) PSNR rises clearly above the untrained network and above bicubic."""
    cfg = tiny_config(faces, **{
        "model.scale": 2, "model.channels": 16, "model.blocks": 2, "recipe_options.adversarial": False,
        "optim.g_lr": 2e-3, "train.steps": 150, "train.batch_size": 16, "train.log_every": 50,
        "train.sample_every": 1000, "train.checkpoint_every": 1000,
    })
    before = ganforge.train({**cfg, "train": {**cfg["train"], "steps": 1}}, out=tmp_path / "start").dir
    after = ganforge.train(cfg, out=tmp_path / "run").dir
    start, end = evaluate_sr(before), evaluate_sr(after)
    assert end["heldout_psnr"] > start["heldout_psnr"] + 0.3, (start, end)
    assert end["heldout_psnr"] > end["heldout_bicubic_psnr"] + 0.5, end
    assert end["heldout_ssim"] > end["heldout_bicubic_ssim"], end


# --------------------------------------------------------------------------- content loss


def test_vgg19_needs_its_weights_file_and_loads_one(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_VGG19_WEIGHTS", raising=False)
    with pytest.raises(ConfigError, match=r"^VGG-19 weights not found: download https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"):
        VGG19Features()
    assert conv_indices()["conv5_4"] == 34 and conv_indices()["conv2_2"] == 7  # torchvision's indices
    torch.manual_seed(0)
    random = VGG19Features(layer="conv2_2", random_init=True)
    # torchvision's file layout: "features.N.weight" keys (plus a classifier we ignore)
    state = {f"features.{k}": v for k, v in random.features.state_dict().items()}
    torch.save({**state, "classifier.0.weight": torch.zeros(2, 2)}, tmp_path / "vgg.pth")
    monkeypatch.setenv("GANFORGE_VGG19_WEIGHTS", str(tmp_path / "vgg.pth"))
    loaded = VGG19Features(layer="conv2_2")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(loaded.feature_maps(x), random.feature_maps(x)) and loaded.feature_maps(x).shape == (2, 128, 8, 8)
    with pytest.raises(ConfigError, match="not found"):
        VGG19Features(tmp_path / "missing.pth")


def test_content_loss_is_zero_on_equal_images_and_backpropagates():
    torch.manual_seed(0)
    vgg = VGG19Features(layer="conv2_2", random_init=True).requires_grad_(False)
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    assert content_loss(vgg.feature_maps, target, target) == 0
    output = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    loss = content_loss(vgg.feature_maps, output, target)
    loss.backward()
    assert loss > 0 and output.grad.abs().sum() > 0
    assert pixel_loss(output, target, "mse") < pixel_loss(output, target, "l1")


def test_recipe_trains_with_a_content_extractor(faces, tmp_path):
    """The content term's plumbing, with a randomly initialised VGG-19 saved as a weights file."""
    torch.manual_seed(0)
    vgg = VGG19Features(layer="conv2_2", random_init=True)
    from safetensors.torch import save_file

    save_file(vgg.features.state_dict(), str(tmp_path / "vgg.safetensors"))
    cfg = tiny_config(faces, **{"recipe_options.content_extractor": "vgg19", "recipe_options.content_layer": "conv2_2",
                                "recipe_options.content_weights": str(tmp_path / "vgg.safetensors"),
                                "recipe_options.pixel_weight": 0.01, "train.steps": 4})
    run = ganforge.train(cfg, out=tmp_path / "run")
    last = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["g_content"] > 0 and np.isfinite(last["g_loss"])
    state = load_checkpoint(run.dir / "checkpoints" / "latest.pt")
    assert set(state["recipe"]["networks"]) == {"generator", "discriminator"}  # VGG is not checkpointed


# --------------------------------------------------------------------------- eval and upscale


def test_eval_prints_psnr_ssim_and_bicubic(tiny_run, faces, capsys):
    assert main(["eval", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    for key in ("heldout_psnr", "heldout_ssim", "heldout_bicubic_psnr", "heldout_bicubic_ssim"):
        assert key in out
    result = evaluate_sr(tiny_run, real=str(faces / "one"))
    hr, lr, bicubic = bicubic_upscale(np.asarray(Image.open(next((faces / "one").iterdir())).convert("RGB")), 4)
    assert result["one_images"] == 1 and result["one_bicubic_psnr"] == pytest.approx(psnr(bicubic, hr, 4))
    with pytest.raises(UserError, match="scored with psnr, ssim and lpips, not fid"):
        evaluate_sr(tiny_run, metrics=["fid"])


def test_upscale_cli_end_to_end(tiny_run, tmp_path, capsys):
    """RGB, grey and RGBA inputs of odd sizes; provenance metadata; one-line errors."""
    Image.fromarray(_image(37, 50)).save(tmp_path / "rgb.png")
    Image.fromarray(_image(20, 30, channels=1)).save(tmp_path / "grey.png")
    rgba = np.concatenate([_image(16, 24), np.full((16, 24, 1), 200, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    inputs = [str(tmp_path / n) for n in ("rgb.png", "grey.png", "alpha.png")]
    assert main(["upscale", str(tiny_run), *inputs, "--out", str(tmp_path / "out"), "--tile", "16", "--margin", "8"]) == 0
    rgb, grey, alpha = (Image.open(tmp_path / "out" / n) for n in ("rgb.png", "grey.png", "alpha.png"))
    assert (rgb.size, rgb.mode) == ((200, 148), "RGB") and (grey.size, grey.mode) == ((120, 80), "L")
    assert alpha.mode == "RGBA" and alpha.size == (96, 64) and np.asarray(alpha)[..., 3].min() >= 199
    assert rgb.text["generator"] and rgb.text["source"] == "rgb.png" and rgb.text["scale"] == "4" and rgb.text["synthetic"] == "true"
    assert "wrote 3 image(s)" in capsys.readouterr().out
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for args, message in (
        ([str(tmp_path / "missing.png")], "input image not found"),
        ([str(tmp_path / "bad.png")], "cannot read image"),
    ):
        assert main(["upscale", str(tiny_run), *args, "--out", str(tmp_path / "o2")]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(UserError, match="cannot read image"):
        read_input(tmp_path / "bad.png")


def test_translate_cli_shares_the_path_and_upscale_refuses_scale_1(tmp_path, capsys):
    torch.manual_seed(0)
    g, _ = models.create_translator("pix2pix", 3, 3, base_channels=4, depth=3)
    save_generator(g.eval(), tmp_path / "p2p", {"task": "translation"})
    Image.fromarray(_image(30, 21)).save(tmp_path / "x.png")  # not multiples of 8: padded, then cropped back
    assert main(["translate", str(tmp_path / "p2p"), str(tmp_path / "x.png"), "--out", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "x.png").size == (21, 30)
    assert main(["upscale", str(tmp_path / "p2p"), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a super-resolution run" in capsys.readouterr().err


def test_tiles_leave_no_visible_seams():
    """A ~200 px image, 64 px tiles with a 16 px margin vs the whole image at once: <= 2 levels, mean < 0.05."""
    torch.manual_seed(0)
    g = SRResNet(channels=16, blocks=4, norm="none", bicubic_skip=True).eval()
    with torch.no_grad():  # a rougher residual than the init's, so the test can fail
        for p in g.parameters():
            p.mul_(3.0)
    image = _image(200, 184, seed=1)
    whole = apply_generator(g, image, tile=None).astype(int)
    tiled = apply_generator(g, image, tile=64, margin=16).astype(int)
    no_margin = apply_generator(g, image, tile=64, margin=0).astype(int)
    diff = np.abs(whole - tiled)
    assert whole.shape == (800, 736, 3) and diff.max() <= 2 and diff.mean() < 0.05, (diff.max(), diff.mean())
    assert np.abs(whole - no_margin).mean() > 10 * max(diff.mean(), 1e-3)


def test_upscale_2000px_within_a_memory_bound(tmp_path):
    """``ganforge upscale`` on 2000x2000 (x2 -> 4000x4000) in a fresh process: peak RSS < 1.125 GiB.

    Untiled, the same network needs its 16-channel activations at 4000x4000 (1 GiB each, float32), two of
    them at once, on top of the process's own ~0.9 GiB. Tiled, identical runs on one machine peak at
    996-1028 MiB (the allocator's arenas vary), so the bound leaves 10% above that rather than sitting on it.
    """
    torch.manual_seed(0)
    save_generator(SRResNet(scale=2, channels=16, blocks=1, norm="none"), tmp_path / "g", {"task": "super-resolution"})
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (2000, 2000, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    script = textwrap.dedent(
        f"""
        import json, torch
        from ganforge.bench import peak_rss_mib
        torch.set_num_threads({THREADS})
        from ganforge.cli import main
        rc = main(["upscale", {str(tmp_path / 'g')!r}, {str(tmp_path / 'big.png')!r}, "--out", {str(tmp_path / 'out')!r},
                   "--tile", "128", "--margin", "8"])
        print(json.dumps({{"rc": rc, "max_rss_mib": peak_rss_mib()}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0 and Image.open(tmp_path / "out" / "big.png").size == (4000, 4000)
    assert result["max_rss_mib"] < 1152, result


def test_presets_resolve():
    cfg = load_config("srgan-x4")
    assert cfg.recipe == "srgan" and cfg.model.name == "srresnet" and cfg.model.options["scale"] == 4
    assert cfg.loss.name == "relativistic-average" and cfg.data.crop % 4 == 0
    assert SRGANRecipe.check_options(cfg.recipe_options).pretrain_steps < cfg.train.steps
    pixel = load_config("srresnet-x4")
    assert pixel.recipe_options["adversarial"] is False and pixel.model == cfg.model and pixel.train == cfg.train
