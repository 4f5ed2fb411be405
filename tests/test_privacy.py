"""``train.privacy``: DP-SGD of the CTGAN critic with Opacus; the spent epsilon in the logs and the
generator's metadata; targets that cannot be met, and settings that would break the guarantee, refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

pytest.importorskip("opacus")
pytest.importorskip("sklearn")

import ganforge  # noqa: E402
from ganforge.config import PrivacyConfig  # noqa: E402
from ganforge.core import FAULT_ENV  # noqa: E402
from ganforge.errors import ConfigError, UserError  # noqa: E402
from ganforge.training.privacy import noise_multiplier, spent_epsilon  # noqa: E402
from tiny_configs import THREADS  # noqa: E402

#: dpctgan-breast-cancer with small networks: seconds per run.
SMALL = {"model.hidden_dim": 32, "model.d_hidden_dim": 16, "train.steps": 40, "train.log_every": 10,
         "train.sample_every": 20, "train.checkpoint_every": 20, "train.progress": False, "train.threads": THREADS}


def records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_noise_is_calibrated_to_the_target() -> None:
    cfg = PrivacyConfig(epsilon=3.0)
    sigma = noise_multiplier(cfg, 0.1, 500)
    assert spent_epsilon(sigma, 0.1, 500, cfg.delta) == pytest.approx(3.0, abs=0.05)  # the target, reached at the end
    assert spent_epsilon(sigma, 0.1, 250, cfg.delta) < 3.0  # less spent half way
    assert noise_multiplier(PrivacyConfig(epsilon=1.0), 0.1, 500) > sigma  # a stricter target needs more noise
    assert spent_epsilon(sigma, 0.1, 0, cfg.delta) == 0.0


def test_private_run_reports_its_epsilon_and_resumes_exactly(tmp_path) -> None:
    straight = ganforge.train("dpctgan-breast-cancer", out=tmp_path / "straight", overrides=SMALL).dir
    logged = [r["epsilon"] for r in records(straight) if "epsilon" in r]
    assert len(logged) == 4 and logged == sorted(logged) and logged[0] > 0  # spent every log line, growing
    assert logged[-1] == pytest.approx(10.0, abs=0.1)  # the preset's target, met at the last step
    meta = ganforge.load(straight).meta["privacy"]
    assert meta["epsilon"] == pytest.approx(logged[-1], abs=1e-5) and meta["delta"] == 1e-5
    assert meta["critic_updates"] == 40 and meta["noise_multiplier"] > 0.5

    # killed after step 25 (its last checkpoint: step 20), then resumed: the same weights and epsilon
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "ganforge", "train", "dpctgan-breast-cancer", "--out", str(killed),
               "--set", *(f"{k}={v}" for k, v in SMALL.items())]
    child = subprocess.run(command, env={**os.environ, FAULT_ENV: "trainer:step:25"}, capture_output=True)
    assert child.returncode == -signal.SIGKILL
    assert ganforge.load(killed).meta["privacy"]["epsilon"] < logged[-1]  # step 20's
    resumed = ganforge.train(resume=killed).dir
    assert ganforge.load(resumed).meta["privacy"]["epsilon"] == pytest.approx(meta["epsilon"])
    a, b = ganforge.load(straight), ganforge.load(resumed)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name  # the noise and the Poisson draws resume from their checkpointed stream
    with pytest.raises(UserError, match="calibrated to its train.steps"):  # a longer run would need other noise
        ganforge.train(resume=resumed, overrides={"train.steps": 60})


@pytest.mark.parametrize("overrides, message", [
    ({"train.privacy.epsilon": 0.001}, "cannot be met"),
    ({"model.pack": 2, "train.batch_size": 64}, "model.pack=1"),
    ({"loss.regularizers": {"gp": {"weight": 10}}}, "without loss.regularizers"),
    ({"train.batch_size": 16}, "batch_size >= 32"),
    ({"train.compile": True}, "runs uncompiled"),
])
def test_settings_that_break_the_guarantee_are_refused(tmp_path, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        ganforge.train("dpctgan-breast-cancer", out=tmp_path / "run", overrides={**SMALL, **overrides})


def test_other_recipes_refuse_privacy(tmp_path) -> None:
    with pytest.raises(ConfigError, match="recipe=gan does not train privately"):
        ganforge.train("gan-ring8", out=tmp_path / "run", overrides={"train.privacy.epsilon": 5, "train.steps": 2,
                                                                      "train.progress": False})
