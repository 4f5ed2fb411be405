"""The command line, end to end (exit codes, messages, files).

Most commands run ``ganforge.cli.main`` in this process (what the console script calls;
importing torch for each command would cost 3-4 s): exit code, stdout and stderr as a
subprocess would see them. Training and the entry-point tests use real subprocesses; the sample
tests use the session's shared tiny conditional run (conftest).
"""

import contextlib
import io
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

import ganforge
from tiny_configs import TINY_DIGITS


def ganforge_subprocess(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def ganforge_cli(*args, cwd=None):
    """``ganforge ARGS`` through ``cli.main`` in this process, as a ``CompletedProcess``."""
    from ganforge.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(cwd or "."), \
            warnings.catch_warnings():
        warnings.simplefilter("always")  # as in a fresh process: a warning seen before still prints
        warnings.showwarning = _warning_to_stderr  # not to pytest's recorder
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(["ganforge", *argv], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def conditional_run(tiny_cdcgan_run):
    return tiny_cdcgan_run.dir


def test_train_in_a_subprocess(tmp_path):
    out = tmp_path / "run"
    sets = [f"{k}={v}" for k, v in {**TINY_DIGITS, "train.steps": 20}.items()]
    proc = ganforge_subprocess("train", "cdcgan-digits", "--out", out, "--set", *sets)
    assert proc.returncode == 0, proc.stderr
    assert f"run saved to {out}" in proc.stdout


def test_sample_png_is_deterministic(conditional_run, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for out, seed in ((a, 7), (b, 7), (c, 8)):
        proc = ganforge_cli("sample", conditional_run, "--n", 20, "--seed", seed, "--out", out)
        assert proc.returncode == 0, proc.stderr
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    image = Image.open(a)
    assert image.text["seed"] == "7" and image.text["synthetic"] == "true"
    assert image.size == (10 * 18 + 2, 2 * 18 + 2)  # 10 classes per row, 16px cells + 2px padding


def test_sample_npy_label_and_truncation(conditional_run, tmp_path):
    out = tmp_path / "x.npy"
    proc = ganforge_cli("sample", conditional_run, "--n", 5, "--seed", 1, "--label", "3", "--truncation", 0.7, "--out", out)
    assert proc.returncode == 0, proc.stderr
    array = np.load(out)
    assert array.shape == (5, 1, 16, 16) and array.dtype == np.float32
    assert -1.0 <= array.min() and array.max() <= 1.0
    expected = ganforge.load(conditional_run).sample(5, seed=1, labels=3, truncation=0.7).numpy()
    assert np.array_equal(array, expected)


def test_load_works_from_generator_folder_alone(conditional_run, tmp_path):
    alone = tmp_path / "elsewhere"
    shutil.copytree(conditional_run / "generator", alone)
    generator = ganforge.load(alone)
    assert generator.num_classes == 10 and generator.output_shape == (1, 16, 16)
    assert generator.meta["class_names"][3] == "3"
    x = generator.sample(10, seed=0)
    assert x.shape == (10, 1, 16, 16)
    proc = ganforge_cli("sample", alone, "--n", 4, "--label", 9, "--out", tmp_path / "s.png")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("--label", "12"), "labels must be in 0..9"),
        (("--label", "cat"), "unknown label 'cat'"),
        (("--n", "0"), "--n must be >= 1"),
    ],
)
def test_sample_bad_input(conditional_run, tmp_path, args, message):
    proc = ganforge_cli("sample", conditional_run, "--out", tmp_path / "x.png", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_sample_bad_suffix_and_missing_run(tmp_path, conditional_run):
    proc = ganforge_cli("sample", conditional_run, "--out", tmp_path / "x.jpg")
    assert proc.returncode == 2 and "must end in .png or .npy" in proc.stderr
    proc = ganforge_cli("sample", tmp_path / "nope", "--out", tmp_path / "x.png")
    assert proc.returncode == 2 and "no generator found" in proc.stderr


def test_sample_2d_data_as_npy_and_scatter(tiny_ring8_run, tmp_path):
    run = tiny_ring8_run
    proc = ganforge_cli("sample", run.dir, "--n", 100, "--out", tmp_path / "p.npy")
    assert proc.returncode == 0 and np.load(tmp_path / "p.npy").shape == (100, 2)
    proc = ganforge_cli("sample", run.dir, "--n", 100, "--out", tmp_path / "p.png")
    assert proc.returncode == 0 and Image.open(tmp_path / "p.png").size == (384, 384)


def test_listing_commands():
    proc = ganforge_cli("presets")
    assert proc.returncode == 0 and "dcgan-digits" in proc.stdout and "gan-ring8" in proc.stdout
    proc = ganforge_cli("models")
    assert proc.returncode == 0 and "dcgan" in proc.stdout and "base_channels=64" in proc.stdout
    proc = ganforge_cli("data")
    assert proc.returncode == 0 and "ring8" in proc.stdout and "image-folder" in proc.stdout
    proc = ganforge_cli("--version")
    assert proc.returncode == 0 and ganforge.__version__ in proc.stdout


def test_missing_data_root_and_corrupt_image_messages(tmp_path):
    proc = ganforge_cli("train", "dcgan-mnist", "--out", tmp_path / "r", "--set", f"data.root={tmp_path / 'nowhere'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "nowhere" in proc.stderr and "does not exist" in proc.stderr

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (20, 24), (60 * i, 10, 10)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG garbage")
    sets = ["data.name=image-folder", f"data.root={folder}", "data.resolution=8", "train.steps=2", "train.batch_size=4",
            "model.base_channels=4", "train.progress=false"]
    proc = ganforge_cli("train", "--out", tmp_path / "f", "--set", *sets)
    assert proc.returncode == 0, proc.stderr
    assert "broken.png" in proc.stderr and "skipped 1 unreadable image" in proc.stderr


def test_resume_cli(tmp_path):
    sets = [f"{k}={v}" for k, v in {**TINY_DIGITS, "train.steps": 10}.items()]
    assert ganforge_cli("train", "--out", tmp_path / "r", "--set", *sets).returncode == 0
    proc = ganforge_cli("train", "--resume", tmp_path / "r", "--set", "train.steps=20")
    assert proc.returncode == 0, proc.stderr
    assert "(step 20)" in proc.stdout
    proc = ganforge_cli("train", "dcgan-digits", "--resume", tmp_path / "r")
    assert proc.returncode == 2 and "--resume" in proc.stderr


def test_python_m_and_console_script_agree():
    exe = shutil.which("ganforge", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the ganforge console script is installed next to the interpreter"
    proc = subprocess.run([exe, "presets"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == ganforge_subprocess("presets").stdout == ganforge_cli("presets").stdout


def test_recipes_lists_every_default_as_a_value():
    """Options with a default factory show the value, not dataclasses' MISSING sentinel."""
    proc = ganforge_cli("recipes")
    out = proc.stdout
    assert proc.returncode == 0 and "MISSING" not in out and "eval_sets=[" in out and "unroll_steps=5" in out
