"""ProGAN and StyleGAN: their layers, the growth schedule, truncation, resume and learning."""

import math

import pytest
import torch
import torch.nn.functional as F

import ganforge
from digit_checks import classify_digits, nearest_real_distance
from ganforge import models
from ganforge.config import from_dict
from ganforge.errors import ConfigError
from ganforge.layers.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from ganforge.layers.style import ModulatedConv2d
from ganforge.models.progan import fade_to_stage
from ganforge.training.checkpoint import load_checkpoint
from ganforge.training.progressive import growth_schedule
from tiny_configs import THREADS

# --------------------------------------------------------------------------- layers


def test_equalized_layers_store_unit_weights_and_apply_he_scale():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.03)
    assert conv.effective_weight().std().item() == pytest.approx(math.sqrt(2) / math.sqrt(64 * 9), rel=0.03)
    x = torch.randn(2, 64, 8, 8)
    assert torch.allclose(conv(x), F.conv2d(x, conv.effective_weight(), conv.bias, padding=1))

    # lr_mul: the stored weight is 1/lr_mul larger, the applied one unchanged
    slow = EqualizedLinear(512, 256, lr_mul=0.01, bias_init=1.0)
    assert slow.weight.std().item() == pytest.approx(100.0, rel=0.03)
    assert slow.effective_weight().std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.03)
    assert torch.allclose(slow(torch.zeros(1, 512)), torch.ones(1, 256))
    # ... and one Adam step changes the applied weight lr_mul times less
    fast = EqualizedLinear(512, 256)
    slow.weight.data = fast.weight.data / 0.01
    slow.bias.data.zero_()
    x = torch.randn(8, 512)
    changes = []
    for layer in (slow, fast):
        before = layer.effective_weight().detach().clone()
        optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
        layer(x).square().sum().backward()
        optimizer.step()
        changes.append((layer.effective_weight().detach() - before).abs().mean().item())
    assert changes[0] / changes[1] == pytest.approx(0.01, rel=0.01)

    y = PixelNorm()(torch.randn(4, 16, 5, 5) * 7)
    assert torch.allclose(y.pow(2).mean(dim=1), torch.ones(4, 5, 5), atol=1e-4)


def test_demodulation_gives_unit_variance_per_output_channel():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, w_dim=16)
    w = torch.randn(16, 16) * torch.logspace(-1, 1, 16)[:, None]  # styles of very different sizes
    x = torch.randn(16, 64, 34, 34)
    y = conv(x, w)[:, :, 1:-1, 1:-1]  # away from the zero padding
    var = y.transpose(0, 1).reshape(32, -1).var(dim=1)  # per output channel, over samples and pixels
    assert ((var > 0.9) & (var < 1.1)).all(), (var.min().item(), var.max().item())
    assert y.var().item() == pytest.approx(1.0, abs=0.03)
    plain = ModulatedConv2d(64, 32, 3, w_dim=16, demodulate=False)
    plain.load_state_dict(conv.state_dict())
    var_plain = plain(x, w)[:, :, 1:-1, 1:-1].var(dim=(1, 2, 3))  # per sample
    assert var_plain.max() / var_plain.min() > 10  # without demodulation the styles scale the output


@pytest.mark.parametrize("up", [False, True])
def test_modulated_conv_equals_plain_conv_with_the_modulated_weight(up):
    torch.manual_seed(1)
    fused = ModulatedConv2d(5, 7, 3, w_dim=6, up=up)
    x, w = torch.randn(1, 5, 8, 8), torch.randn(1, 6)
    weight = fused.modulated_weight(w)  # [1, 7, 5, 3, 3]
    # modulation then demodulation: each output filter has unit norm
    assert torch.allclose(weight.pow(2).sum(dim=(2, 3, 4)), torch.ones(1, 7), atol=1e-5)
    inp = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False) if up else x
    expected = F.conv2d(inp, weight[0], padding=1)
    assert torch.allclose(fused(x, w), expected, atol=1e-5)
    # the unfused implementation (activations modulated) computes the same, batch of 3
    unfused = ModulatedConv2d(5, 7, 3, w_dim=6, up=up, fused=False)
    unfused.load_state_dict(fused.state_dict())
    x3, w3 = torch.randn(3, 5, 8, 8), torch.randn(3, 6)
    assert torch.allclose(fused(x3, w3), unfused(x3, w3), atol=1e-5)


# --------------------------------------------------------------------------- progan growth


def test_progan_fade_in_starts_from_the_previous_stage():
    """alpha = 0 at stage k renders (and judges) exactly as stage k - 1 with alpha = 1."""
    torch.manual_seed(0)
    g, d = models.create("progan", (1, 16, 16), 3, base_channels=4, max_channels=8, latent_dim=8)
    g.eval()
    z, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    x = torch.rand(6, 1, 16, 16) * 2 - 1

    def run(stage, alpha):
        g.set_growth(stage, alpha)
        d.set_growth(stage, alpha)
        return g(z, labels), d(x, labels)

    for k in (1, 2):
        new_image, new_logits = run(k, 0.0)
        old_image, old_logits = run(k - 1, 1.0)
        assert new_image.shape == (6, 1, 16, 16)
        assert torch.equal(new_image, old_image)
        assert torch.allclose(new_logits, old_logits, atol=1e-5)
        assert torch.allclose(fade_to_stage(x, k, 0.0, 2), fade_to_stage(x, k - 1, 1.0, 2), atol=1e-6)
        half_image, half_logits = run(k, 0.5)
        assert not torch.allclose(half_image, old_image) and not torch.allclose(half_logits, old_logits)
    # at stage 0 the image is 4x4 blocks of constant colour, nearest-upsampled
    image, _ = run(0, 1.0)
    assert torch.allclose(image, F.interpolate(F.avg_pool2d(image, 4), scale_factor=4, mode="nearest"), atol=1e-6)
    assert torch.equal(fade_to_stage(x, 2, 1.0, 2), x)


def test_growth_schedule():
    p = 100.0
    assert growth_schedule(0, p, 0, 3) == (0, 1.0)
    assert growth_schedule(99, p, 0, 3) == (0, 1.0)
    assert growth_schedule(100, p, 0, 3) == (1, 0.0)  # fade-in of 8x8 starts
    assert growth_schedule(150, p, 0, 3) == (1, 0.5)
    assert growth_schedule(250, p, 0, 3) == (1, 1.0)  # stable phase
    assert growth_schedule(325, p, 0, 3) == (2, 0.25)
    assert growth_schedule(525, p, 0, 3) == (3, 0.25)
    assert growth_schedule(10_000, p, 0, 3) == (3, 1.0)
    assert growth_schedule(150, p, 2, 3) == (3, 0.5)  # start_resolution 16
    assert growth_schedule(150, p, 3, 3) == (3, 1.0)  # starts at the data resolution: no growth


# --------------------------------------------------------------------------- training runs

TRAIN = {"threads": THREADS, "progress": False, "log_every": 10, "sample_count": 16}


def _progan(**train):
    return {
        "name": "progan-test",
        "recipe": "progan",
        "recipe_options": {"kimg_per_phase": 0.016, "drift": 0.001},  # 2 steps of 8 images per phase
        "data": {"name": "digits", "resolution": 16},
        "model": {"name": "progan", "latent_dim": 8, "base_channels": 4, "max_channels": 8},
        "loss": {"name": "wasserstein", "regularizers": {"gp": {"weight": 10}}},
        "optim": {"g_lr": 0.001, "d_lr": 0.001, "g_betas": [0.0, 0.99], "d_betas": [0.0, 0.99]},
        "train": {**TRAIN, "batch_size": 8, "sample_every": 100, "checkpoint_every": 100, **train},
    }


def _stylegan(**train):
    return {
        "name": "stylegan-test",
        "recipe": "stylegan",
        "recipe_options": {"style_mixing": 0.9, "pl_weight": 2.0, "pl_every": 2},
        "data": {"name": "digits", "resolution": 16},
        "model": {"name": "stylegan", "conditional": True, "latent_dim": 8, "w_dim": 8, "mapping_layers": 2,
                  "base_channels": 4, "max_channels": 8},
        "loss": {"name": "nonsaturating", "regularizers": {"r1": {"weight": 1.0, "every": 1}}},
        "optim": {"g_lr": 0.002, "d_lr": 0.002, "g_betas": [0.0, 0.99], "d_betas": [0.0, 0.99]},
        "train": {**TRAIN, "batch_size": 8, "sample_every": 100, "checkpoint_every": 100, **train},
    }


def _assert_same_state(a, b):
    for net in ("generator", "discriminator"):
        for key, tensor in a["recipe"]["networks"][net].items():
            assert torch.equal(tensor, b["recipe"]["networks"][net][key]), f"{net}.{key} differs"
    for key, tensor in a["ema"].items():
        assert torch.equal(tensor, b["ema"][key]), f"ema.{key} differs"


def test_progan_grows_during_training_and_resumes_exactly(tmp_path):
    # phases of 2 steps: 4x4 stable (steps 0-1), 8x8 fade-in (2-3), 8x8 (4-5), 16x16 fade-in (6-7)
    one_go = ganforge.train(_progan(steps=8, log_every=1), out=tmp_path / "one")
    assert [r["resolution"] for r in one_go.metrics()] == [4, 4, 8, 8, 8, 8, 16, 16]
    assert [r["alpha"] for r in one_go.metrics()] == [1, 1, 0, 0.5, 1, 1, 0, 0.5]
    ganforge.train(_progan(steps=4, log_every=1), out=tmp_path / "split")
    # the generator exported after 4 steps renders stage 1 (8x8) half faded in, as the last step did
    early = ganforge.load(tmp_path / "split")
    assert early.growth == pytest.approx((1, 0.5))
    images = early.sample(4, seed=0)
    assert torch.allclose(images, F.interpolate(F.avg_pool2d(images, 2), scale_factor=2, mode="nearest"), atol=1e-6)

    resumed = ganforge.train(resume=tmp_path / "split", overrides={"train.steps": 8})
    a = load_checkpoint(one_go.dir / "checkpoints" / "latest.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "latest.pt")
    _assert_same_state(a, b)
    assert a["recipe"]["networks"]["discriminator"]["stage"].item() == 2
    assert a["ema"]["alpha"].item() == pytest.approx(0.5)  # the EMA copy follows the schedule
    assert ganforge.load(resumed.dir).growth == pytest.approx((2, 0.5))
    assert resumed.metrics()[-1]["resolution"] == 16 and resumed.metrics()[-1]["alpha"] == pytest.approx(0.5)


def test_stylegan_recipe_resumes_exactly_with_mixing_and_path_length(tmp_path):
    one_go = ganforge.train(_stylegan(steps=6), out=tmp_path / "one")
    ganforge.train(_stylegan(steps=3), out=tmp_path / "split")
    resumed = ganforge.train(resume=tmp_path / "split", overrides={"train.steps": 6})
    a = load_checkpoint(one_go.dir / "checkpoints" / "latest.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "latest.pt")
    _assert_same_state(a, b)
    pl_a, pl_b = a["recipe"]["extra"]["pl_mean"], b["recipe"]["extra"]["pl_mean"]
    assert pl_a > 0 and torch.equal(pl_a, pl_b)  # the running mean path length a is checkpointed
    assert a["ema"]["mapping.w_avg"].abs().sum() > 0  # tracked in training, copied to the EMA generator


@pytest.mark.parametrize("name", ["progan-celeba64", "stylegan-cifar10", "stylegan-celeba64"])
def test_presets_load_and_validate(name):
    cfg = ganforge.load_config(name)
    assert cfg.name == name and cfg.recipe == cfg.model.name == name.split("-")[0]
    assert from_dict(cfg.to_dict()) == cfg
    if cfg.recipe == "progan":
        assert cfg.loss.name == "wasserstein" and cfg.loss.regularizers == {"gp": {"weight": 10}}
        assert cfg.data.resolution == 64 and cfg.recipe_options["start_resolution"] == 4
    else:
        assert cfg.loss.name == "nonsaturating" and cfg.loss.regularizers["r1"]["every"] == 16
        assert cfg.recipe_options["style_mixing"] == 0.9


def test_recipes_check_their_model_and_options(tmp_path):
    with pytest.raises(ConfigError, match="needs model.name=progan"):
        ganforge.train({**_progan(steps=1), "model": {"name": "dcgan", "base_channels": 4}}, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="start_resolution"):
        ganforge.train({**_progan(steps=1), "recipe_options": {"start_resolution": 6}}, out=tmp_path / "b")
    with pytest.raises(ConfigError, match="needs model.name=stylegan"):
        ganforge.train({**_stylegan(steps=1), "model": {"name": "progan", "base_channels": 4}}, out=tmp_path / "c")
    with pytest.raises(ConfigError, match="style_mixing"):
        ganforge.train({**_stylegan(steps=1), "recipe_options": {"style_mixing": 1.5}}, out=tmp_path / "d")


# --------------------------------------------------------------------------- stylegan sampling


def test_style_mixing_and_truncation():
    torch.manual_seed(0)
    g, _ = models.create("stylegan", (1, 16, 16), base_channels=4, max_channels=8, latent_dim=8, w_dim=8, mapping_layers=2)
    g.train()
    for _ in range(50):  # training-mode forwards track the mean w
        g.styles(torch.randn(64, 8))
    assert g.mapping.w_avg.abs().sum() > 0
    g.eval()
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    with torch.no_grad():
        assert torch.equal(g(z1, mix_latents=z2, mix_cutoff=torch.full((4,), g.num_ws)), g(z1))
        assert torch.equal(g(z1, mix_latents=z2, mix_cutoff=torch.zeros(4, dtype=torch.long)), g(z2))
        ws = g.styles(z1, mix_latents=z2, mix_cutoff=torch.tensor([1, 2, 3, 4]))
    assert torch.equal(ws[2, :3], g.styles(z1)[2, :3]) and torch.equal(ws[2, 3:], g.styles(z2)[2, 3:])

    w_avg = g.mapping.w_avg.clone()
    a, b = g.sample(8, seed=1, truncation=0.0), g.sample(8, seed=2, truncation=0.0)
    assert (a - a[:1]).abs().max() < 1e-6 and (a - b).abs().max() < 1e-6  # psi = 0: the average w only
    full, half = g.sample(64, seed=1, truncation=1.0), g.sample(64, seed=1, truncation=0.5)
    assert torch.equal(full, g.sample(64, seed=1))  # psi = 1 is no truncation
    assert full.std(dim=0).mean() > 1.2 * half.std(dim=0).mean() > 0.01  # psi shrinks the variation
    assert torch.equal(g.mapping.w_avg, w_avg) and g.truncation_psi == 1.0  # sampling changes nothing


# --------------------------------------------------------------------------- learning


def _learns(config, tmp_path, steps):
    """Train; return the run, the nearest-real-digit distance relative to the untrained model, class counts."""
    run = ganforge.train(config, out=tmp_path / "trained", overrides={"train.steps": steps})
    untrained = ganforge.train(config, out=tmp_path / "untrained", overrides={"train.steps": 1})
    samples = ganforge.load(run.dir).sample(500, seed=3)
    baseline = nearest_real_distance(ganforge.load(untrained.dir).sample(500, seed=3))
    counts = torch.bincount(torch.as_tensor(classify_digits(samples)), minlength=10)
    return run, nearest_real_distance(samples) / baseline, counts


def test_progan_learns_digits(tmp_path):
    """Grown 4x4 -> 16x16 in 150 steps: samples near real digits, of many classes (0.47, 10 classes measured)."""
    config = _progan(batch_size=32, checkpoint_every=1000, sample_every=1000, log_every=50)
    config["model"] = {**config["model"], "latent_dim": 32, "base_channels": 8, "max_channels": 16}
    config["recipe_options"] = {"kimg_per_phase": 0.48}  # 15 steps per phase: 16x16 from step 60
    config["loss"] = {"name": "nonsaturating"}
    config["optim"] = {**config["optim"], "g_lr": 0.002, "d_lr": 0.002}
    run, ratio, counts = _learns(config, tmp_path, 150)
    assert ganforge.load(run.dir).growth == (2, 1.0)
    assert ratio < 0.6, ratio
    assert (counts >= 5).sum() >= 7, counts.tolist()


def test_stylegan_learns_digits(tmp_path):
    """StyleGAN2 at 16x16 with tiny channels, 150 steps: near real digits, many classes (0.49, 9 measured)."""
    config = _stylegan(batch_size=32, checkpoint_every=1000, sample_every=1000, log_every=50)
    config["model"] = {**config["model"], "conditional": False, "latent_dim": 32, "w_dim": 32,
                       "base_channels": 16, "max_channels": 32, "fused": False}
    config["recipe_options"] = {"style_mixing": 0.9}
    config["loss"]["regularizers"] = {"r1": {"weight": 1.0, "every": 4}}
    config["optim"] = {**config["optim"], "g_lr": 0.003, "d_lr": 0.003}
    run, ratio, counts = _learns(config, tmp_path, 150)
    assert ratio < 0.6, ratio
    assert (counts >= 5).sum() >= 7, counts.tolist()
    # truncation on the trained generator: psi = 0 collapses every seed onto the average w
    generator = ganforge.load(run.dir)
    mean_image = generator.sample(16, seed=0, truncation=0.0)
    assert (mean_image - mean_image[:1]).abs().max() < 1e-6
    assert generator.sample(16, seed=0).std(dim=0).mean() > 0.1
