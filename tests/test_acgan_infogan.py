"""AC-GAN and InfoGAN: auxiliary heads on the discriminator, their losses and what they learn."""


import pytest
import torch
import torch.nn.functional as F

import ganforge
from digit_checks import classify_digits
from ganforge import models
from ganforge.errors import ConfigError, UserError
from ganforge.models import load_generator, save_generator
from ganforge.training.auxiliary import gaussian_nll
from tiny_configs import TINY_DIGITS

# ----------------------------------------------------------------------------- heads


def test_acgan_discriminator_has_a_classifier_head_and_ignores_labels():
    torch.manual_seed(0)
    g, d = models.create("acgan", (1, 16, 16), 10, base_channels=4, latent_dim=8)
    assert type(g).__name__ == "DCGANGenerator" and g.num_classes == 10  # DCGAN's, reused
    x = torch.randn(5, 1, 16, 16)
    logits, heads = d.forward_aux(x)
    assert logits.shape == (5,) and heads["class_logits"].shape == (5, 10)
    assert torch.equal(logits, d(x)) and torch.equal(d(x, torch.zeros(5, dtype=torch.long)), d(x, torch.ones(5, dtype=torch.long)))
    _, unconditional = models.create("acgan", (1, 16, 16), 0, base_channels=4, latent_dim=8)
    assert unconditional.forward_aux(x)[1] == {}  # no classes, no classifier


def test_infogan_latents_carry_valid_codes():
    torch.manual_seed(0)
    g, d = models.create("infogan", (1, 16, 16), base_channels=4, noise_dim=5, num_categorical=4, num_continuous=3)
    assert g.latent_dim == 5 + 4 + 3
    z = g.sample_latents(20000, torch.Generator().manual_seed(0))
    noise, category, continuous = g.codes(z)
    assert noise.shape == (20000, 5) and continuous.shape == (20000, 3)
    # argmax of 4 Gaussians: uniform over the 4 values; erf(z / sqrt 2): uniform on [-1, 1]
    assert torch.bincount(category, minlength=4).div(20000).sub(0.25).abs().max() < 0.02
    assert continuous.abs().max() <= 1 and continuous.mean().abs() < 0.02
    assert continuous.var().item() == pytest.approx(1 / 3, abs=0.01)
    assert torch.equal(g(z[:6]), g.synthesize(*g.codes(z[:6])))
    logits, heads = d.forward_aux(g(z[:6]))
    assert logits.shape == (6,) and heads["cat_logits"].shape == (6, 4) and heads["cont_mean"].shape == (6, 3)
    assert "cont_logvar" not in heads


def test_infogan_sample_codes_after_save_and_load(tmp_path):
    torch.manual_seed(0)
    g, _ = models.create("infogan", (1, 16, 16), base_channels=4, noise_dim=5, num_categorical=4, num_continuous=2)
    save_generator(g.eval(), tmp_path / "gen")
    loaded = load_generator(tmp_path / "gen")
    assert torch.equal(g.sample(6, seed=2), loaded.sample(6, seed=2))
    a = loaded.sample_codes(6, seed=2, category=3, continuous=[0.5, -2.0])  # may extrapolate beyond [-1, 1]
    assert torch.equal(a, g.sample_codes(6, seed=2, category=3, continuous=[0.5, -2.0]))
    noise, _, cont = g.codes(g.sample_latents(6, torch.Generator().manual_seed(2)))
    assert torch.allclose(a, g.eval().synthesize(noise, torch.full((6,), 3), torch.tensor([[0.5, -2.0]] * 6)))
    # unchosen codes keep the seed's draws: the same sample as Generator.sample
    assert torch.equal(g.sample_codes(6, seed=2), g.sample(6, seed=2))
    assert not torch.equal(g.sample_codes(6, seed=2, category=0), g.sample_codes(6, seed=2, category=1))
    with pytest.raises(UserError, match=r"category must be one or 6 values in 0..3"):
        g.sample_codes(6, category=4)
    with pytest.raises(UserError, match="continuous must be"):
        g.sample_codes(6, continuous=[1.0, 2.0, 3.0])


def test_gaussian_nll_matches_torch():
    torch.manual_seed(0)
    mean, target, logvar = torch.randn(8, 3), torch.rand(8, 3) * 2 - 1, torch.randn(8, 3)
    expected = F.gaussian_nll_loss(mean, target, logvar.exp(), reduction="sum") / 8
    assert gaussian_nll(mean, target, logvar).item() == pytest.approx(expected.item(), rel=1e-5)
    assert gaussian_nll(mean, target).item() == pytest.approx(0.5 * (mean - target).square().sum().item() / 8, rel=1e-6)


# ----------------------------------------------------------------------------- recipes

#: The presets at 16x16 with few channels, for the recipe tests.
TINY = {**TINY_DIGITS, "train.steps": 2, "train.checkpoint_every": 1000, "train.sample_every": 1000}
del TINY["model.latent_dim"]  # infogan calls it noise_dim


def _trainer(tmp_path, preset, overrides):
    return ganforge.Trainer(ganforge.load_config(preset, {**TINY, **overrides}), tmp_path / "run")


@pytest.mark.parametrize("classify_fakes", [True, False])
def test_acgan_losses_are_adversarial_plus_weighted_cross_entropy(tmp_path, classify_fakes):
    torch.manual_seed(0)
    options = {"recipe_options.aux_weight": 0.5, "recipe_options.classify_fakes": classify_fakes}
    recipe = _trainer(tmp_path, "acgan-digits", options).recipe
    data = recipe.dataset
    batch = {"image": data.to_model(data.data[:16]), "label": data.labels[:16]}
    fake, labels = recipe.make_fake(batch, grad=True)
    assert labels.shape == (16,) and not torch.equal(labels, batch["label"])  # uniform draws, not the real labels
    d = recipe.discriminator
    real_logits, real_heads = d.forward_aux(batch["image"])
    fake_logits, fake_heads = d.forward_aux(fake.detach())
    ce_real = F.cross_entropy(real_heads["class_logits"], batch["label"])
    ce_fake = F.cross_entropy(fake_heads["class_logits"], labels)
    # classify_fakes: false keeps D's classifier on real images only (G's loss is the same either way)
    expected = recipe.loss.d_loss(real_logits, fake_logits) + 0.5 * (ce_real + ce_fake * classify_fakes)
    loss, logs = recipe.d_objective(batch, fake, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["aux_real"].item() == pytest.approx(ce_real.item(), rel=1e-5)
    assert 0 <= logs["acc_real"] <= 1 and {"aux_fake", "acc_fake", "d_real", "d_fake"} <= set(logs)
    g_loss, g_logs = recipe.g_objective(batch, fake, labels)
    logits, heads = d.forward_aux(fake)
    g_expected = recipe.loss.generator_loss(logits, None) + 0.5 * F.cross_entropy(heads["class_logits"], labels)
    assert g_loss.item() == pytest.approx(g_expected.item(), rel=1e-5) and "g_aux" in g_logs


def test_infogan_loss_adds_the_information_term_to_both_networks(tmp_path):
    torch.manual_seed(0)
    options = {"recipe_options.info_weight": 2.0, "recipe_options.continuous_weight": 0.25, "model.learn_variance": True}
    recipe = _trainer(tmp_path, "infogan-digits", options).recipe
    data = recipe.dataset
    batch = {"image": data.to_model(data.data[:16])}
    fake, _ = recipe.make_fake(batch, grad=True)
    category, continuous = recipe.codes
    d = recipe.discriminator
    real_logits, _ = d.forward_aux(batch["image"])
    fake_logits, heads = d.forward_aux(fake.detach())
    info = F.cross_entropy(heads["cat_logits"], category) + 0.25 * gaussian_nll(heads["cont_mean"], continuous, heads["cont_logvar"])
    loss, logs = recipe.d_objective(batch, fake, None)
    assert loss.item() == pytest.approx((recipe.loss.d_loss(real_logits, fake_logits) + 2.0 * info).item(), rel=1e-5)
    assert 0 <= logs["q_acc"] <= 1
    g_loss, g_logs = recipe.g_objective(batch, fake, None)
    logits, heads = d.forward_aux(fake)
    info = F.cross_entropy(heads["cat_logits"], category) + 0.25 * gaussian_nll(heads["cont_mean"], continuous, heads["cont_logvar"])
    assert g_loss.item() == pytest.approx((recipe.loss.generator_loss(logits, None) + 2.0 * info).item(), rel=1e-5)
    assert {"info_cat", "info_cont"} <= set(g_logs)


@pytest.mark.parametrize(
    "preset, overrides, message",
    [
        ("acgan-digits", {"model.conditional": False}, r"recipe 'acgan' needs model.conditional: true"),
        ("acgan-digits", {"model.name": "dcgan"}, r"recipe 'acgan' needs model.name: acgan"),
        ("acgan-digits", {"recipe_options.fake_labels": "uniformly"}, r"must be uniform or real, got 'uniformly'; did you mean"),
        ("acgan-digits", {"recipe_options.aux_weight": -1}, r"'recipe_options.aux_weight' must be >= 0"),
        ("infogan-digits", {"recipe_options.info_weight": -0.5}, r"'recipe_options.info_weight' must be >= 0"),
        ("infogan-digits", {"recipe_options.info_wieght": 1}, r"unknown config key 'recipe_options.info_wieght'"),
        ("infogan-digits", {"model.num_categorical": 1}, r"model.num_categorical must be 0 .* or >= 2, got 1"),
        ("infogan-digits", {"model.num_categorical": 0, "model.num_continuous": 0}, r"needs at least one code"),
        ("infogan-digits", {"model.pack": 2}, r"does not support model.pack > 1"),
        ("infogan-digits", {"model.name": "dcgan"}, r"recipe 'infogan' needs model.name: infogan"),
    ],
)
def test_config_mistakes_are_one_line_errors(tmp_path, preset, overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        _trainer(tmp_path, preset, overrides)
    assert "\n" not in str(info.value)


def test_acgan_resume_is_bit_identical(tmp_path):
    """2 steps + resume to 4 == 4 steps in one go (the fake-label stream is checkpointed)."""
    overrides = {**TINY, "train.log_every": 2}
    one_go = ganforge.train("acgan-digits", out=tmp_path / "one", overrides={**overrides, "train.steps": 4})
    ganforge.train("acgan-digits", out=tmp_path / "split", overrides={**overrides, "train.steps": 2})
    resumed = ganforge.train(resume=tmp_path / "split", overrides={"train.steps": 4})
    a = torch.load(one_go.dir / "checkpoints" / "latest.pt", weights_only=True)["recipe"]["networks"]
    b = torch.load(resumed.dir / "checkpoints" / "latest.pt", weights_only=True)["recipe"]["networks"]
    for net in a:
        assert all(torch.equal(t, b[net][k]) for k, t in a[net].items()), net


# ----------------------------------------------------------------------------- learning

#: Digits at 16x16 with 16-channel networks, batch 64.
LEARN = {**TINY, "model.base_channels": 16, "train.batch_size": 64, "train.log_every": 50}


def _fit(tmp_path, preset, steps, overrides):
    every = {"train.steps": steps, "train.sample_every": steps, "train.checkpoint_every": steps}
    trainer = ganforge.Trainer(ganforge.load_config(preset, {**LEARN, **every, **overrides}), tmp_path / preset)
    return trainer, trainer.fit()


def test_acgan_generates_the_requested_digit(tmp_path):
    """300 steps: an independent classifier agrees with the label asked for (79% measured)."""
    _, run = _fit(tmp_path, "acgan-digits", 300, {"model.latent_dim": 32, "optim.g_lr": 5e-4, "optim.d_lr": 5e-4})
    labels = torch.arange(1000) % 10
    predicted = torch.as_tensor(classify_digits(ganforge.load(run.dir).sample(1000, seed=9, labels=labels)))
    accuracy = (predicted == labels).float().mean().item()
    assert accuracy >= 0.7, accuracy  # measured 0.790; chance: 0.10
    assert run.metrics()[-1]["acc_real"] >= 0.9  # and D's classifier learned the real labels (0.974)


def test_infogan_categorical_code_captures_digit_identity(tmp_path):
    """400 unsupervised steps: each code value draws mostly one digit, and Q reads the codes back."""
    from sklearn.metrics import normalized_mutual_info_score

    trainer, run = _fit(tmp_path, "infogan-digits", 400, {})
    generator = ganforge.load(run.dir)
    codes = torch.arange(1000) % 10
    images = generator.sample_codes(1000, seed=9, category=codes)
    predicted = torch.as_tensor(classify_digits(images))
    majority = torch.stack([torch.bincount(predicted[codes == k], minlength=10).argmax() for k in range(10)])
    purity = (predicted == majority[codes]).float().mean().item()
    nmi = normalized_mutual_info_score(codes.numpy(), predicted.numpy())
    d = trainer.recipe.discriminator.cpu().eval()
    with torch.no_grad():
        _, heads = d.forward_aux(images)
        continuous = torch.rand(1000, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
        _, swept = d.forward_aux(generator.sample_codes(1000, seed=9, continuous=continuous))
    q_accuracy = (heads["cat_logits"].argmax(dim=1) == codes).float().mean().item()
    correlation = [torch.corrcoef(torch.stack([continuous[:, i], swept["cont_mean"][:, i]]))[0, 1].item() for i in range(2)]
    # measured: majority digits [8, 9, 1, 4, 9, 0, 3, 8, 8, 5] (7 distinct), purity 0.840, NMI 0.754,
    # Q accuracy 1.000, correlations 0.961 and 0.976
    assert len(set(majority.tolist())) >= 6, majority.tolist()
    assert purity >= 0.6 and nmi >= 0.4, (purity, nmi)  # codes unrelated to digits: NMI ~0
    assert q_accuracy >= 0.9, q_accuracy  # chance: 0.10
    assert min(correlation) >= 0.8, correlation
