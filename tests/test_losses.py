import math

import pytest
import torch

from ganforge.losses import LOSSES, get


def test_bce_losses_match_sigmoid_formulas():
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.7, 1.1])
    d = lambda t: torch.sigmoid(t)  # noqa: E731
    expected_d = -(torch.log(d(real)).mean() + torch.log(1 - d(fake)).mean())
    assert torch.allclose(get("nonsaturating").d_loss(real, fake), expected_d)
    assert torch.allclose(get("minimax").d_loss(real, fake), expected_d)
    assert torch.allclose(get("nonsaturating").g_loss(fake), -torch.log(d(fake)).mean())
    assert torch.allclose(get("minimax").g_loss(fake), torch.log(1 - d(fake)).mean())


def test_other_losses_match_definitions():
    real, fake = torch.tensor([0.5, 2.0, -0.5]), torch.tensor([-2.0, 0.5, -0.9])
    assert torch.allclose(get("wasserstein").d_loss(real, fake), fake.mean() - real.mean())
    assert torch.allclose(get("wgan").g_loss(fake), -fake.mean())
    hinge = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
    assert torch.allclose(get("hinge").d_loss(real, fake), hinge)
    ls = 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    assert torch.allclose(get("lsgan").d_loss(real, fake), ls)
    assert torch.allclose(get("least-squares").g_loss(fake), 0.5 * ((fake - 1) ** 2).mean())


def test_bce_is_stable_for_huge_logits():
    big = torch.tensor([1e4, -1e4])
    for name in ("minimax", "nonsaturating"):
        loss = get(name)
        assert torch.isfinite(loss.d_loss(big, -big)) and torch.isfinite(loss.g_loss(big))


@pytest.mark.parametrize("name", LOSSES.names())
def test_gradients_push_the_right_way(name):
    """D's loss falls when real logits rise / fake logits fall; G's when fake logits rise."""
    loss = get(name)
    # 0.5 is inside every loss's active region (hinge margins, LSGAN targets 0 and 1)
    real = torch.full((4,), 0.5, requires_grad=True)
    fake = torch.full((4,), 0.5, requires_grad=True)
    loss.d_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = torch.full((4,), 0.5, requires_grad=True)
    loss.generator_loss(fake_g, torch.full((4,), 0.5)).backward()
    assert (fake_g.grad < 0).all()


def test_relativistic_average_loss_matches_definition():
    """RaSGAN: sigmoid of the difference to the other side's mean logit."""
    real, fake = torch.tensor([0.5, 2.0, -0.5]), torch.tensor([-2.0, 0.5, -0.9])
    loss = get("relativistic-average")
    d_real, d_fake = torch.sigmoid(real - fake.mean()), torch.sigmoid(fake - real.mean())
    expected_d = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    expected_g = -(torch.log(d_fake).mean() + torch.log(1 - d_real).mean())
    assert torch.allclose(loss.d_loss(real, fake), expected_d)
    assert torch.allclose(loss.generator_loss(fake, real), expected_g)
    with pytest.raises(ValueError, match="needs the real logits"):
        loss.generator_loss(fake)


def test_relativistic_pair_loss_matches_definition():
    """RSGAN (RelGAN's loss): sigmoid of each real logit minus its fake partner's."""
    real, fake = torch.tensor([0.5, 2.0, -0.5]), torch.tensor([-2.0, 0.5, -0.9])
    loss = get("rsgan")
    assert loss.name == "relativistic-pair" and loss.relativistic
    assert torch.allclose(loss.d_loss(real, fake), -torch.log(torch.sigmoid(real - fake)).mean())
    assert torch.allclose(loss.generator_loss(fake, real), -torch.log(torch.sigmoid(fake - real)).mean())


def test_minimax_saturates_where_nonsaturating_does_not():
    """At a confident discriminator (D(G(z)) ~ 0) the minimax gradient vanishes."""
    fake = torch.full((1,), -10.0, requires_grad=True)
    get("minimax").g_loss(fake).backward()
    saturating = fake.grad.abs().item()
    fake.grad = None
    get("nonsaturating").g_loss(fake).backward()
    assert saturating < 1e-4 < fake.grad.abs().item()
    assert math.isclose(fake.grad.abs().item(), 1.0, rel_tol=1e-3)
