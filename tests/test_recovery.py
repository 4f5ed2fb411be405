"""Runs stopped at awkward moments recover: SIGTERM saves like Ctrl-C, a kill between latest.pt and
generator/ at the last step is repaired by --resume, a run stopped before its first checkpoint restarts,
and generator/ changes as one unit. tests/test_kill.py kills real runs at every such point."""

import copy
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.models import load_generator, save_generator, weights_hash
from ganforge.models.mlp import MLPGenerator
from ganforge.training.checkpoint import load_checkpoint
from tiny_configs import TINY_DIGITS


def _train(out, **overrides):
    return ganforge.train("dcgan-digits", out=out, overrides={**TINY_DIGITS, **overrides})


def test_resume_at_the_last_step_rewrites_a_stale_generator(tmp_path):
    """Killed after latest.pt but before generator/ at the final step: --resume repairs generator/."""
    _train(tmp_path / "early", **{"train.steps": 10})
    run = _train(tmp_path / "run", **{"train.steps": 20})
    final = load_generator(run.generator_dir)
    shutil.rmtree(run.generator_dir)
    shutil.copytree(tmp_path / "early" / "generator", run.generator_dir)  # as if the last export never happened
    (run.dir / "samples" / "step-000020.png").unlink()
    resumed = ganforge.train(resume=run.dir)
    assert resumed.step == 20 and load_checkpoint(run.dir / "checkpoints" / "latest.pt")["step"] == 20
    repaired = load_generator(run.generator_dir)
    assert repaired.meta["step"] == 20 and repaired.meta["weights_id"] == final.meta["weights_id"]
    assert all(torch.equal(a, b) for a, b in zip(repaired.state_dict().values(), final.state_dict().values()))
    assert (run.dir / "samples" / "step-000020.png").is_file()


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_it(tmp_path):
    cfg = ganforge.load_config("dcgan-digits", {**TINY_DIGITS, "train.steps": 10})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    (run_dir / "metrics.jsonl").write_text('{"step": 5, "d_loss": 1.0}\n{"step": 10, "d_lo')  # torn, from the dead run
    run = ganforge.train(resume=run_dir)
    assert run.step == 10 and load_checkpoint(run.latest_checkpoint)["step"] == 10
    assert [r["step"] for r in run.metrics()] == [10]


def test_sigterm_saves_a_resumable_checkpoint(tmp_path):
    """What Slurm and Kubernetes send: the run saves, says how to resume, exits 1, and resumes."""
    out = tmp_path / "run"
    sets = [f"{k}={v}" for k, v in {**TINY_DIGITS, "train.steps": 100_000, "train.checkpoint_every": 100_000}.items()]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", "--out", str(out), "--set", *sets],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    metrics = out / "metrics.jsonl"
    for _ in range(600):  # wait (at most 60 s) until training has logged a line, then stop it
        if metrics.is_file() and metrics.read_text().strip():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "Continue with: ganforge train --resume" in stderr and "Traceback" not in stderr
    step = load_checkpoint(out / "checkpoints" / "latest.pt")["step"]
    assert step >= 10
    resumed = ganforge.train(resume=out, overrides={"train.steps": step + 5})
    assert resumed.step == step + 5


def test_generator_files_are_synced_and_replaced_together(tmp_path, monkeypatch):
    """Both files of generator/ are fsync'ed and 0644, and a save cut short (here: the process interrupted at
    its first fsync) leaves the old pair, so the weights_id in config.json still names the weights beside it."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the file behind a descriptor")
    old = MLPGenerator((2,), latent_dim=2, hidden_dim=8)
    new = copy.deepcopy(old)
    with torch.no_grad():
        for p in new.parameters():
            p.add_(1.0)
    folder = tmp_path / "generator"
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    save_generator(old, folder)
    assert {"model.safetensors", "config.json"} <= {name.rsplit(".tmp", 1)[0].lstrip(".") for name in synced}
    assert {stat.S_IMODE((folder / name).stat().st_mode) for name in os.listdir(folder)} == {0o644}

    def killed(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        save_generator(new, folder)
    monkeypatch.setattr(os, "fsync", real_fsync)
    loaded = load_generator(folder)
    assert loaded.meta["weights_id"] == weights_hash(loaded) == weights_hash(old)
