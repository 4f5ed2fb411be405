"""Values that passed validation and then failed deep inside (issue 16, item 7): now one line, before any work.

Commands run in this process (``test_cli.ganforge_cli``), with the data set factory replaced by
one that raises (the ``no_data`` fixture, shared with ``test_config_fuzz``): a config that gets past its checks is caught
reaching the data, so every error here is shown to come before any data is loaded. Every
numeric flag of every command declares its range, and bad numbers get one ``error:`` line.
"""

from __future__ import annotations

import argparse
import random
import struct
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch

import ganforge
from ganforge import models
from ganforge.cli import build_parser
from ganforge.errors import DataError
from ganforge.inference import process_files, read_input
from test_cli import ganforge_cli

if TYPE_CHECKING:
    from ganforge.config import Range

TOO_BIG_SEED = str(2**64)


class DataLoaded(Exception):
    """Raised instead of loading the data set: the config got past every check."""


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch):
    """``ganforge.data.create`` raises :class:`DataLoaded`; threads and random states are restored after."""

    def create(cfg: Any) -> None:
        raise DataLoaded(cfg.name)

    monkeypatch.setattr(ganforge.data, "create", create)
    threads, states = torch.get_num_threads(), (torch.get_rng_state(), np.random.get_state(), random.getstate())
    yield
    torch.set_num_threads(threads)
    torch.set_rng_state(states[0])
    np.random.set_state(states[1])
    random.setstate(states[2])


def one_error_line(proc, *names: str) -> str:
    """The single ``error:`` line of a failed command (exit 2, no traceback), naming ``names``."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    assert all(name in errors[0] for name in names), errors[0]
    assert len(errors[0]) < 250, errors[0]
    return errors[0]


@pytest.mark.parametrize(
    "override, key",
    [
        ("optim.g_lr=-1", "optim.g_lr"),
        ("optim.g_lr=.nan", "optim.g_lr"),
        ("optim.g_betas=[2.0, 0.9]", "optim.g_betas[0]"),
        ("optim.weight_decay=-1", "optim.weight_decay"),
        ("train.threads=-3", "train.threads"),
        ("train.device=bogus", "train.device"),
        ("model.latent_dim=-2", "model.latent_dim"),
        ("data.resolution=1000000000", "data.resolution"),
        ("data.resolution=384", "data.resolution"),  # dcgan: powers of two 8..256; was found after decoding the data
        (f"train.seed={TOO_BIG_SEED}", "train.seed"),
    ],
)
def test_a_bad_value_fails_in_one_line_before_the_data(no_data, tmp_path, override, key):
    proc = ganforge_cli("train", "dcgan-digits", "--out", tmp_path / "run", "--set", override)
    one_error_line(proc, key)
    assert not (tmp_path / "run").exists()


def test_a_run_directory_that_is_a_file(no_data, tmp_path):
    file = tmp_path / "passwd"
    file.write_text("root:x:0:0\n")
    one_error_line(ganforge_cli("train", "dcgan-digits", "--out", file), "is a file")
    one_error_line(ganforge_cli("train", "dcgan-digits", "--out", file / "run"), "'" + str(file) + "' is a file")
    assert file.read_text() == "root:x:0:0\n"


def test_resume_with_fewer_steps_than_done_is_refused(no_data, tiny_dcgan_run, run_copy):
    """--set train.steps=5 on a run at step 20 used to rewrite its config.yaml silently."""
    run = run_copy(tiny_dcgan_run)
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "metrics.jsonl")}
    proc = ganforge_cli("train", "--resume", run, "--set", "train.steps=5")
    one_error_line(proc, "train.steps=5", "step 20")
    assert {name: (run / name).read_bytes() for name in before} == before


@pytest.mark.parametrize("flag, value", [("--seed", TOO_BIG_SEED), ("--seed", "-1"), ("--nrow", "-3"), ("--nrow", "0")])
def test_sample_seed_and_nrow(tiny_dcgan_run, tmp_path, flag, value):
    out = tmp_path / "x.png"
    one_error_line(ganforge_cli("sample", tiny_dcgan_run.dir, "--out", out, flag, value), flag)
    assert not out.exists()


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG file that declares ``width`` x ``height`` 1-bit pixels (PIL checks the size before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_an_image_over_the_decompression_bomb_limit_is_a_one_line_error(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20_000, 10_000))  # 200 MP, 70 bytes
    with pytest.raises(DataError, match=r"^image '.*bomb\.png' has over 179 megapixels: refused unread") as err:
        read_input(bomb)
    assert "\n" not in str(err.value)
    translator, _ = models.create_translator("srresnet", 1, 1, scale=2, channels=4, blocks=0)  # what `upscale` runs
    with pytest.raises(DataError, match="megapixels"):
        process_files(translator, [bomb], tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.png"))


# --------------------------------------------------------------------------- every numeric flag

#: A command line that reaches the range check (nothing runs: the ranges are checked first).
COMMANDS = {
    "train": ["train", "dcgan-digits"],
    "sample": ["sample", "RUN", "--out", "x.png"],
    "export": ["export", "RUN", "--out", "x.onnx"],
    "interpolate": ["interpolate", "RUN", "--seeds", "1", "2", "--out", "x.gif"],
    "project": ["project", "RUN", "x.png", "--out", "d"],
    "edit": ["edit", "RUN", "--seed", "1", "--direction", "sefa:0", "--out", "x.png"],
    "mix": ["mix", "RUN", "--rows", "1", "--cols", "2", "--out", "x.png"],
    "synthesize": ["synthesize", "RUN", "--out", "d"],  # + one of --n / --per-class / --balance
    "eval": ["eval", "RUN"],
    "upscale": ["upscale", "RUN", "x.png", "--out", "d"],
    "translate": ["translate", "RUN", "x.png", "--out", "d"],
    "bench train": ["bench", "train", "dcgan-digits"],
    "serve": ["serve", "RUN"],
    "detect-train": ["detect", "train", "--real", "r", "--fake", "f", "--out", "d.safetensors"],
}
CHECKED_BY_THE_COMMAND = {("serve", "--port")}  # its own range check (0..65535, after the run is found)


def numeric_flags() -> list[tuple[str, str, type, Range | None]]:
    """``(command, flag, type, declared range)`` of every int or float option of every command."""
    found = []

    def walk(parser: argparse.ArgumentParser, command: str) -> None:
        ranges = parser.get_default("ranges") or {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{command} {name}".strip())
            elif action.type in (int, float) and action.option_strings:
                found.append((command, action.option_strings[0], action.type, ranges.get(action.dest)))

    walk(build_parser(), "")
    return found


FLAGS = numeric_flags()
DECLARED = [f for f in FLAGS if f[3] is not None]


def test_every_numeric_flag_declares_its_range():
    assert len(FLAGS) >= 25 and {command for command, *_ in FLAGS} <= set(COMMANDS)
    assert {(command, flag) for command, flag, _, within in FLAGS if within is None} == CHECKED_BY_THE_COMMAND


@pytest.mark.parametrize("command, flag, kind, within", DECLARED, ids=[f"{c}:{f}" for c, f, *_ in DECLARED])
def test_bad_numbers_for_a_flag_are_one_line_errors(tmp_path, command, flag, kind, within):
    values = ["-1", "0", "1" + "0" * 30] + (["nan", "inf", "-1e30"] if kind is float else [])
    argv = COMMANDS[command] + (["--n", "1"] if command == "synthesize" and flag not in ("--n", "--per-class") else [])
    tried = 0
    for value in values:
        if kind(value) not in within:
            one_error_line(ganforge_cli(*argv, flag, value, cwd=tmp_path), flag)
            tried += 1
    assert tried >= 2
    assert not list(tmp_path.iterdir())  # nothing was written
