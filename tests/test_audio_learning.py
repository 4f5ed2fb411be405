"""Audio GANs learn: a short SpecGAN run on spoken digits moves the classifier's Inception Score up.

Fixed seed, step count and thread count (see conftest), so the run is the same on a busy machine.
"""

from __future__ import annotations

import pytest
import torch

import ganforge
from ganforge import models
from ganforge.config import DataConfig
from ganforge.data import create as create_data
from ganforge.evaluation import evaluate
from ganforge.models.base import generate, seeded_latents
from tiny_configs import THREADS

STEPS = 300
SMALL = {"model.base_channels": 8, "model.latent_dim": 32, "model.griffin_lim_iters": 16, "train.batch_size": 32}


def inception_score(clips: torch.Tensor) -> float:
    return float(evaluate(None, clips, metrics=["is"], extractor="fsdd", n=len(clips))["is_mean"])


@pytest.fixture(scope="module")
def fsdd_root(shared_data):
    root = shared_data / "fsdd" / "recordings"
    if not root.is_dir():
        pytest.skip(f"FSDD recordings missing at {root}")
    return root


def test_a_short_specgan_run_raises_the_inception_score_above_an_untrained_generators(fsdd_root, tmp_path):
    overrides = {"data.root": str(fsdd_root), **SMALL, "train.steps": STEPS, "train.seed": 0, "train.threads": THREADS,
                 "train.progress": False, "train.sample_every": STEPS, "train.checkpoint_every": STEPS, "eval.every": 0}
    run = ganforge.train("specgan-fsdd", out=tmp_path / "run", overrides=overrides)
    trained = inception_score(ganforge.load(run.dir).sample(500, seed=1))

    # The same network as the run's at step 0: built from the same seed, fitted to the same data.
    torch.manual_seed(0)
    real = create_data(DataConfig(name="fsdd", root=str(fsdd_root))).data
    untrained, _ = models.create("specgan", tuple(real.shape[1:]), 0, base_channels=8, latent_dim=32, griffin_lim_iters=16)
    untrained.fit_data(real[:4096])
    baseline = inception_score(generate(untrained, seeded_latents(500, 32, seed=1)))
    print(f"IS after {STEPS} steps: {trained:.2f}; untrained: {baseline:.2f}")
    assert baseline < 1.5, baseline  # an untrained generator's clips are all heard as the same one or two digits
    assert trained > baseline + 0.8, (trained, baseline)  # several distinct digits after a few hundred steps


@pytest.mark.slow
def test_cspecgan_fsdd_at_its_budget_speaks_the_digits_it_is_asked_for(fsdd_root, tmp_path):
    """Issue 17's acceptance: the full preset (about 18 min on 2 cores, longer with one thread); clips for each digit are heard as it."""
    run = ganforge.train("cspecgan-fsdd", out=tmp_path / "run",
                         overrides={"data.root": str(fsdd_root), "train.progress": False, "train.threads": THREADS})
    scores = ganforge.evaluate_run(run.dir, metrics=["is", "accuracy"], n=1000)
    per_label = [scores[f"accuracy/{d}"] for d in range(10)]
    assert min(per_label) >= 0.8 and scores["is_mean"] >= 6, scores
