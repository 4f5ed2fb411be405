"""CTGAN's generator: rows are a pure function of the latent, one-hots decode exactly, and conditional
vectors follow the training frequencies."""

from __future__ import annotations

import torch

from ganforge.models.ctgan import build_ctgan

SPANS = [[0, 1, "tanh", False], [1, 2, "softmax", False], [3, 3, "softmax", True], [6, 2, "softmax", True]]


def test_rows_are_a_function_of_the_latent_and_decode_to_one_hots():
    torch.manual_seed(0)
    generator, critic = build_ctgan((8,), spans=SPANS, noise_dim=6, hidden_dim=16)
    generator.eval()
    z = torch.randn(32, generator.latent_dim)
    assert generator.latent_dim == 6 + 2 + 7  # noise, two condition picks, one Gumbel value per one-hot entry
    rows = generator(z)
    assert torch.equal(rows, generator(z.clone())) and rows[:, 0].abs().max() <= 1
    hard = generator.decode(rows)
    for start, width in ((1, 2), (3, 3), (6, 2)):
        assert torch.equal(hard[:, start:start + width].sum(1), torch.ones(32))
        assert torch.equal(hard[:, start:start + width].argmax(1), rows[:, start:start + width].argmax(1))
    assert critic(hard).shape == (32,)


def test_conditional_vectors_follow_the_training_frequencies():
    generator, _ = build_ctgan((8,), spans=SPANS, noise_dim=6, hidden_dim=16)
    real = torch.zeros(1000, 8)
    rows = torch.arange(1000)
    real[rows, 3 + torch.tensor([0] * 700 + [1] * 200 + [2] * 100)] = 1  # column A: 70%, 20%, 10%
    real[rows, 6 + torch.tensor([0] * 500 + [1] * 500)] = 1  # column B: 50%, 50%
    generator.fit_data(real)
    cond = generator.draw_condition(torch.randn(20000, 2, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(cond.sum(1), torch.ones(20000))  # one category of one column per row
    a, b = cond[:, :3], cond[:, 3:]
    assert abs(a.sum() / 20000 - 0.5) < 0.02  # a column picked uniformly
    assert torch.allclose(a.sum(0) / a.sum(), torch.tensor([0.7, 0.2, 0.1]), atol=0.02)
    assert torch.allclose(b.sum(0) / b.sum(), torch.tensor([0.5, 0.5]), atol=0.02)
