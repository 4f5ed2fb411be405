"""Fine-tuning (``train.init_from``): a new run starts from a trained run's G and D, or a generator folder's G; a
mismatch of shapes is a one-line error naming the tensor; the new generator records its parent."""

from __future__ import annotations

import pytest
import torch

import ganforge
from ganforge.errors import ConfigError
from ganforge.training.checkpoint import load_checkpoint
from ganforge.training.trainer import Trainer
from ganforge.validate import load_config
from tiny_configs import TINY_RUNS

PRESET, TINY = TINY_RUNS["dcgan"]


def test_a_fine_tuned_run_starts_from_its_parent_and_records_it(tiny_dcgan_run, tmp_path):
    parent = load_checkpoint(tiny_dcgan_run.dir / "checkpoints" / "latest.pt")["recipe"]["networks"]
    config = load_config(PRESET, {**TINY, "train.init_from": str(tiny_dcgan_run.dir), "train.steps": 5})
    trainer = Trainer(config, tmp_path / "child")
    for name in ("generator", "discriminator"):
        for key, value in trainer.recipe.networks[name].state_dict().items():
            assert torch.equal(value, parent[name][key]), (name, key)
    trainer.fit()
    meta = ganforge.load(tmp_path / "child").meta
    assert meta["parent"] == {"run": str(tiny_dcgan_run.dir), "step": 20}

    # a generator folder alone: G from its (EMA) weights, D fresh
    folder = tiny_dcgan_run.dir / "generator"
    config = load_config(PRESET, {**TINY, "train.init_from": str(folder), "train.steps": 1})
    trainer = Trainer(config, tmp_path / "from-folder")
    exported = ganforge.load(folder).state_dict()
    assert all(torch.equal(v, exported[k]) for k, v in trainer.recipe.networks["generator"].state_dict().items())
    fresh = trainer.recipe.networks["discriminator"].state_dict()
    assert not all(torch.equal(v, parent["discriminator"][k]) for k, v in fresh.items())


@pytest.mark.parametrize("overrides, message", [
    ({"data.resolution": 32}, "train.init_from: tensor 'net."),
    ({"model.latent_dim": 8}, "shape [16, "),
    ({"train.init_from": "/nonexistent/run"}, "train.init_from:"),
])
def test_init_from_errors_name_the_problem(tiny_dcgan_run, tmp_path, overrides, message):
    config = load_config(PRESET, {**TINY, "train.init_from": str(tiny_dcgan_run.dir), **overrides})
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as err:
        Trainer(config, tmp_path / "child")
    assert "\n" not in str(err.value)
