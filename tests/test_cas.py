"""Classification Accuracy Score: it measures label fidelity (real digits by label score high, random labels ~chance)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import torch
from torch import nn

import ganforge
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import create as create_data
from ganforge.errors import UserError
from ganforge.metrics import cas
from ganforge.models.base import Generator

#: Enough for a clear signal on 8x8 digits in seconds (the real default is ClassifierRecipe()).
QUICK = cas.ClassifierRecipe(steps=80, batch_size=64, lr=0.05, shift=1, resolution=16)
TEST_START = 1437  # the digits data set's 'test' split is its last 360 images


class RealDigits(Generator):
    """A stand-in "conditional generator" that returns real digit images (8x8, in [-1, 1]).

    ``faithful``: the image shows the digit it was asked for; otherwise its class is drawn
    from the latent, independently of the label (a generator that ignores its labels).
    Only the first 1,437 digits are used, so the test split stays unseen.
    """

    def __init__(self, faithful: bool = True) -> None:
        super().__init__()
        digits = create_data(DataConfig(name="digits"))
        self.images = digits.data[:TEST_START].float() / 127.5 - 1.0  # [N, 1, 8, 8]
        self.classes = digits.labels[:TEST_START]
        self.faithful = faithful
        self.latent_dim, self.num_classes, self.output_shape = 8, 10, (1, 8, 8)
        self.anchor = nn.Parameter(torch.zeros(1))  # a device to live on
        self.meta = {"class_names": [str(d) for d in range(10)], "data": "digits"}

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        code = (z[:, :4].abs() * 1e4).long().sum(dim=1)  # a deterministic "random" number per latent
        shown = labels if self.faithful else code % 10
        out = []
        for c, k in zip(shown.tolist(), code.tolist()):
            pool = torch.nonzero(self.classes == c).flatten()
            out.append(self.images[pool[k % len(pool)]])
        return torch.stack(out)


@pytest.fixture(autouse=True)
def quick_recipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The quick recipe, on one thread (small convs: a second thread costs more than it gives on a busy CPU)."""
    monkeypatch.setattr(cas, "DEFAULT_RECIPE", QUICK)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_cas_is_high_for_faithful_labels_and_chance_for_ignored_ones() -> None:
    good = ganforge.evaluate("digits", RealDigits(faithful=True), metrics="cas", n=1000)
    bad = ganforge.evaluate("digits", RealDigits(faithful=False), metrics="cas", n=1000)
    assert good["cas"] > 0.85, good
    assert bad["cas"] < 0.3, bad
    # The reference: the same classifier on 1,000 real training digits (never the 360 test ones).
    # (1,000 random real digits, less those among the 360 test ones: about 800)
    assert 700 < good["cas_n_real"] < 900 and good["cas_n_test"] == 360
    assert good["cas_real"] > 0.85 and abs(good["cas_real"] - bad["cas_real"]) < 1e-12
    assert good["extractor"] is None  # cas trains its own classifier, no feature extractor


def test_training_is_deterministic_and_leaves_global_rng_alone() -> None:
    digits = create_data(DataConfig(name="digits"))
    x, y = digits.data[:200], digits.labels[:200]
    recipe = cas.ClassifierRecipe(steps=5, batch_size=32)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = cas.train_classifier(x, y, 10, recipe=recipe, seed=3, threads=1)
    after = torch.rand(1)
    b = cas.train_classifier(x, y, 10, recipe=recipe, seed=3, threads=1)
    c = cas.train_classifier(x, y, 10, recipe=recipe, seed=4, threads=1)
    assert torch.equal(before, after)
    for (name, pa), pb in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.net.head.weight, c.net.head.weight)


def test_helpers() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    picked = cas.balanced_subset(labels, 2, seed=0)
    assert [int((labels[picked] == k).sum()) for k in range(3)] == [2, 2, 2]
    assert torch.equal(picked, cas.balanced_subset(labels, 2, seed=0))
    with pytest.raises(ValueError, match="class 1 has 2 samples, fewer than 3"):
        cas.balanced_subset(labels, 3)
    images = torch.arange(4 * 4, dtype=torch.uint8).reshape(4, 1, 2, 2)
    assert cas.drop_duplicates_of(images, images[1:3]).tolist() == [True, False, False, True]
    assert cas.balanced_labels(5, 3).tolist() == [0, 1, 2, 0, 1]
    x = torch.full((3, 1, 6, 6), -1.0)  # black background (normalised), a 2x2 white square in the middle
    x[:, :, 2:4, 2:4] = 1.0
    shifted = cas.random_shift(x, 2, -1.0, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and torch.equal(shifted.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # moved, not cut
    assert not torch.equal(shifted, x)
    recipe = cas.ClassifierRecipe(steps=100, lr=0.1)
    assert recipe.learning_rate(0) == pytest.approx(0.01) and recipe.learning_rate(99) < 1e-3


@pytest.fixture(scope="module")
def tiny_runs(tiny_cdcgan_run: ganforge.Run, tiny_dcgan_run: ganforge.Run) -> dict[str, Path]:
    return {"cdcgan-digits": tiny_cdcgan_run.dir, "dcgan-digits": tiny_dcgan_run.dir}


def test_eval_cas_end_to_end(tiny_runs: dict[str, Path], capsys) -> None:
    run = tiny_runs["cdcgan-digits"]
    assert main(["eval", str(run), "--metrics", "cas", "--n", "300"]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(None, 1) for line in out.splitlines() if line.startswith("cas"))
    assert set(lines) == {"cas", "cas_real", "cas_n_real", "cas_n_test"}
    assert 0.0 <= float(lines["cas"]) <= 1.0 and float(lines["cas_real"]) > 0.5  # ~240 real digits, 80 steps
    assert 200 < int(lines["cas_n_real"]) < 300 and lines["cas_n_test"].strip() == "360"  # test digits left out


def test_eval_cas_errors(tiny_runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert main(["eval", str(tiny_runs["dcgan-digits"]), "--metrics", "cas", "--n", "50"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cas trains a classifier on labelled images: give a conditional generator")
    folder = tmp_path / "real"  # a labelled image folder: it has labels but no test split
    fake = ganforge.load(tiny_runs["cdcgan-digits"]).sample(4)
    from ganforge.viz import image_grid

    for i in range(4):
        (folder / str(i % 2)).mkdir(parents=True, exist_ok=True)
        image_grid(fake[i : i + 1], padding=0).save(folder / str(i % 2) / f"{i}.png")
    assert main(["eval", str(tiny_runs["cdcgan-digits"]), "--metrics", "cas", "--n", "50", "--real", str(folder)]) == 2
    assert "cas tests on the real test split of a labelled data set" in capsys.readouterr().err
    cfg = DataConfig(name="image-folder", root=str(folder), channels=1)
    real = ganforge.evaluation.dataset_source(create_data(cfg), cfg)
    with pytest.raises(UserError, match="cas needs the test split of 'image-folder'.*no splits"):
        ganforge.evaluate(real, RealDigits(), metrics="cas", n=20)
