"""Multi-process training (torchrun + gloo on CPU): same weights as one process, resumable on any count."""

import json
import os
import shutil
import subprocess
import sys

import torch

import ganforge
from ganforge.training.checkpoint import load_checkpoint
from tiny_configs import TINY_DIGITS

#: DCGAN has BatchNorm in both networks: with train.sync_batchnorm its statistics span the
#: global batch, so 2 processes x 16 images must train exactly like 1 process x 32.
SETTINGS = {**TINY_DIGITS, "train.threads": 1, "train.sync_batchnorm": True, "train.checkpoint_every": 10,
            "train.keep_checkpoints": True}


def _cli_sets(overrides):
    return [f"{k}={v}" for k, v in overrides.items()]


def _assert_same_state(a, b, atol=1e-5):
    for net in ("generator", "discriminator"):
        for key, tensor in a["recipe"]["networks"][net].items():
            other = b["recipe"]["networks"][net][key]
            if tensor.is_floating_point():
                torch.testing.assert_close(other, tensor, atol=atol, rtol=0, msg=f"{net}.{key} differs")
            else:
                assert torch.equal(other, tensor), f"{net}.{key} differs"
    for key, tensor in a["ema"].items():
        if tensor.is_floating_point():
            torch.testing.assert_close(b["ema"][key], tensor, atol=atol, rtol=0, msg=f"ema.{key} differs")
    assert a["loader"] == b["loader"]


def test_two_processes_train_like_one_and_resume_on_one(tmp_path):
    single = ganforge.train("dcgan-digits", out=tmp_path / "single", overrides={**SETTINGS, "train.steps": 20})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = tmp_path / "two"
    command = [sys.executable, "-m", "ganforge", "train", "dcgan-digits", "--nproc", "2", "--out", str(two),
               "--set", *_cli_sets({**SETTINGS, "train.steps": 20})]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run saved to") == 1  # rank 0 reports, rank 1 stays quiet
    # one log line per logging step, written by rank 0 only, with the losses of the global batch
    lines = (two / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20]

    after_20 = load_checkpoint(single.dir / "checkpoints" / "latest.pt")
    _assert_same_state(after_20, load_checkpoint(two / "checkpoints" / "latest.pt"))
    # the weights did move away from the start, so agreeing is not trivial
    after_10 = load_checkpoint(single.dir / "checkpoints" / "step-000010.pt")
    assert (after_10["ema"]["net.0.weight"] - after_20["ema"]["net.0.weight"]).abs().max() > 1e-3

    # the 2-process run's step-10 checkpoint continues on 1 process onto the single-process trajectory
    # (float sums in another order differ by ~1e-7; the GAN amplifies that over tens of steps, so
    # the comparison stays within 20 steps)
    shutil.copy(two / "checkpoints" / "step-000010.pt", two / "checkpoints" / "latest.pt")
    resumed = ganforge.train(resume=two, overrides={"train.steps": 20})
    assert resumed.step == 20
    _assert_same_state(after_20, load_checkpoint(two / "checkpoints" / "latest.pt"))


def test_batch_must_split_evenly_over_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "ganforge", "train", "dcgan-digits", "--nproc", "3", "--out", str(tmp_path / "r"),
               "--set", *_cli_sets({**TINY_DIGITS, "train.steps": 2})]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode != 0
    assert "must be divisible by the 3 processes" in done.stderr


def test_nproc_must_be_positive():
    done = subprocess.run([sys.executable, "-m", "ganforge", "train", "--nproc", "0"], capture_output=True, text=True)
    assert done.returncode != 0 and "--nproc must be >= 1" in done.stderr
