"""`ganforge bench train`: the trainer's real step, its FLOPs and memory."""

import json

import pytest

from ganforge.bench import bench_train
from ganforge.cli import main
from tiny_configs import TINY_DIGITS


def test_bench_counts_the_step_and_scales_with_the_batch():
    settings = {k: v for k, v in TINY_DIGITS.items() if k != "train.batch_size"}
    small = bench_train("dcgan-digits", steps=2, repeats=1, warmup=1, batch_size=16, overrides=settings)
    large = bench_train("dcgan-digits", steps=2, repeats=1, warmup=1, batch_size=32,
                        overrides={**settings, "train.n_critic": 2})
    # convolutions dominate: FLOPs grow with the images per step (batch x D steps, plus G's share)
    assert 0 < small["gflop_per_step"]
    assert 2.0 < large["gflop_per_step"] / small["gflop_per_step"] < 4.0
    for r in (small, large):
        images = r["batch_size"] * r["n_critic"]
        assert r["img_per_s"] == pytest.approx(images / (r["ms_per_step"] / 1000))
        assert r["gflop_per_s"] == pytest.approx(r["gflop_per_step"] / (r["ms_per_step"] / 1000))
        assert r["peak_mem_mib"] > 50  # the whole process (torch alone is more)


def test_bench_cli_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    sets = [f"{k}={v}" for k, v in TINY_DIGITS.items()]
    assert main(["bench", "train", "dcgan-digits", "--steps", "2", "--repeats", "1", "--warmup", "0",
                 "--batch-size", "8", "--json", str(out), "--set", *sets]) == 0
    printed = capsys.readouterr().out
    assert "images/s" in printed and "GFLOP/s" in printed and "peak memory" in printed
    result = json.loads(out.read_text())
    assert result["batch_size"] == 8 and result["img_per_s"] > 0
    assert main(["bench", "train", "dcgan-digits", "--steps", "0"]) != 0
