import pytest
import torch

from ganforge import models
from ganforge.errors import ConfigError, UserError
from ganforge.models import MODELS, load_generator, save_generator


def _cases():
    for name in MODELS.names():
        if models.is_translator_family(name):
            continue  # image-to-image families: test_every_translator_runs_forward_and_backward
        configs = models.smallest(name)
        assert configs, f"model '{name}' declares no smallest configuration (@smallest_config on its factory)"
        for shape, options in configs:
            for num_classes in ((0, 3) if models.takes_labels(name) else (0,)):
                yield pytest.param(name, shape, options, num_classes, id=f"{name}-{'x'.join(map(str, shape))}-c{num_classes}")


@pytest.mark.parametrize("name, shape, options, num_classes", list(_cases()))
def test_every_model_runs_forward_and_backward(name, shape, options, num_classes):
    torch.manual_seed(0)
    generator, discriminator = models.create(name, shape, num_classes, **options)
    z = generator.sample_latents(4)
    labels = torch.tensor([0, 1, 2, 1]) if num_classes else None
    raw = generator(z, labels)  # what D sees in training (SpecGAN: spectrograms)
    with torch.no_grad():
        fake = generator.decode(raw)  # samples as the data holds them (SpecGAN: clips)
    assert fake.shape == (4, *shape) and generator.output_shape == shape
    if len(shape) == 3 or getattr(generator, "modality", "") == "audio":
        assert fake.min() >= -1 and fake.max() <= 1  # tanh range of images and clips
    judged = (4 * discriminator.judgements,)  # one logit per sample (MoCoGAN: a video and an image logit per clip)
    assert discriminator(fake, labels).shape == judged  # D reads real data's form too
    logits = discriminator(raw, labels)
    assert logits.shape == judged
    total = logits.sum()
    # auxiliary heads (AC-GAN's classifier, InfoGAN's Q) are reached through forward_aux
    has_heads = hasattr(discriminator, "forward_aux") and not (name == "acgan" and num_classes == 0)
    if has_heads:
        aux_logits, heads = discriminator.forward_aux(raw, labels)
        assert torch.allclose(aux_logits, logits)
        total = aux_logits.sum() + sum(h.float().sum() for h in heads.values())
    total.backward()
    for net in (generator, discriminator):
        grads = [p.grad for p in net.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def _translator_cases():
    for name in MODELS.names():
        if models.is_translator_family(name):
            configs = models.smallest(name)
            assert configs, f"model '{name}' declares no smallest configuration (@smallest_config on its factory)"
            for shape, options in configs:
                yield pytest.param(name, shape, options, id=f"{name}-{'x'.join(map(str, shape))}")


@pytest.mark.parametrize("name, shape, options", list(_translator_cases()))
def test_every_translator_runs_forward_and_backward(name, shape, options):
    """Image-to-image families: [N, C_in, H, W] -> [N, 3, sH, sW] in [-1, 1], D on the output."""
    torch.manual_seed(0)
    generator, discriminator = models.create_translator(name, shape[0], 3, **options)
    assert models.is_translator(generator)
    x = torch.rand(4, *shape) * 2 - 1
    out = generator(x)
    s = generator.scale
    assert out.shape == (4, 3, shape[1] * s, shape[2] * s) and out.min() >= -1 and out.max() <= 1
    condition = x if getattr(discriminator, "condition_channels", 0) else None
    logits = discriminator(out, condition) if condition is not None else discriminator(out)
    assert logits.shape[0] == 4
    logits.float().mean().backward()
    for net in (generator, discriminator):
        grads = [p.grad for p in net.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_conditional_discriminator_uses_labels():
    torch.manual_seed(0)
    for conditioning in ("projection", "concat"):
        _, d = models.create("dcgan", (1, 8, 8), 3, base_channels=4, d_conditioning=conditioning)
        x = torch.randn(2, 1, 8, 8)
        a, b = d(x, torch.tensor([0, 0])), d(x, torch.tensor([1, 2]))
        assert not torch.allclose(a, b)


def test_classic_dcgan64_parameter_counts():
    """The PyTorch DCGAN tutorial's networks: 3,576,704 and 2,765,568 parameters."""
    g, d = models.create("dcgan", (3, 64, 64), latent_dim=100, base_channels=64)
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert sum(p.numel() for p in d.parameters()) == 2_765_568
    assert g(torch.randn(2, 100)).shape == (2, 3, 64, 64)


def test_dcgan_rejects_bad_resolution():
    with pytest.raises(ConfigError, match="power-of-two"):
        models.create("dcgan", (3, 48, 48))
    with pytest.raises(ConfigError, match="d_conditioning"):
        models.create("dcgan", (3, 32, 32), 2, d_conditioning="magic")


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    g, _ = models.create("dcgan", (1, 16, 16), 10, base_channels=4, latent_dim=8)
    g.eval()
    save_generator(g, tmp_path / "gen", {"run": "t"})
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_generator(tmp_path / "gen")
    assert loaded.meta["run"] == "t" and len(loaded.meta["weights_id"]) == 16
    a = g.sample(8, seed=3, labels=torch.arange(8) % 10)
    b = loaded.sample(8, seed=3, labels=torch.arange(8) % 10)
    assert torch.equal(a, b)
    with pytest.raises(UserError, match="no generator found"):
        load_generator(tmp_path)


def test_sample_is_seeded_and_checks_labels():
    torch.manual_seed(0)
    g, _ = models.create("mlp", (2,), 3, hidden_dim=8)
    assert torch.equal(g.sample(5, seed=1), g.sample(5, seed=1))
    assert not torch.equal(g.sample(5, seed=1), g.sample(5, seed=2))
    with pytest.raises(UserError, match=r"labels must be in 0..2"):
        g.sample(2, labels=[0, 3])
    unconditional, _ = models.create("mlp", (2,), hidden_dim=8)
    with pytest.raises(UserError, match="unconditional"):
        unconditional.sample(2, labels=1)


def test_truncation_bounds_latents():
    g, _ = models.create("mlp", (2,), latent_dim=64, hidden_dim=8)
    z = g.sample_latents(256, torch.Generator().manual_seed(0), truncation=0.5)
    assert z.abs().max() <= 0.5 and z.abs().max() > 0.4
