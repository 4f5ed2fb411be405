"""A new user's first runs (issue 16, items 10-15): defaults follow the data actually used.

One tiny run is trained here the way the issue's user did it: the ``cdcgan-digits`` preset
pointed at their own folder (``data.name=image-folder``), grey images in class folders
named by digits. Evaluation runs through a cheap stand-in for Inception registered under its
name, so no test needs the Inception weights (except the one that checks their absence).
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch import nn

import ganforge
import ganforge.data
from ganforge import cli
from ganforge.config import DataConfig
from ganforge.extractors import EXTRACTORS, FeatureExtractor, Features
from ganforge.extractors import base as extractors_base
from ganforge.extractors import inception as inc
from tiny_configs import THREADS, TINY_DIGITS

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("0", "3", "7")  # class folders named by digits: folder '7' is class index 2


def write_folder(root: Path, classes: tuple[str, ...], per_class: int, mode: str, size: int = 16) -> Path:
    """``root/<class>/NN.png``: simple distinct patterns, one brightness per class."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(60 * k + rng.integers(0, 80, (size, size)), 0, 255).astype(np.uint8)
            if mode == "RGB":
                pixels = np.stack([pixels, pixels[::-1], 255 - pixels], axis=-1)
            elif mode == "RGB-grey":  # grey pictures saved as RGB
                pixels = np.stack([pixels] * 3, axis=-1)
            Image.fromarray(pixels, "RGB" if mode.startswith("RGB") else "L").save(root / name / f"{i:02d}.png")
    return root


class StandInInception(FeatureExtractor):
    """Registered as ``inception`` in these tests: 8-d pooled features, no weights to find."""

    name = "inception"
    feature_dim = 8
    weights_id = "standin"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # FeatureExtractor.device reads a parameter

    def extract(self, images: torch.Tensor) -> Features:
        x = images.float().mean(1, keepdim=True) / 255
        pooled = F.adaptive_avg_pool2d(x, 2).flatten(1)
        return Features(torch.cat([pooled, pooled**2], 1))


@pytest.fixture
def standin_inception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXTRACTORS._entries, "inception", StandInInception)
    monkeypatch.setitem(getattr(extractors_base, "WEIGHT_CHECKS", {}), "inception", lambda weights: None)


@pytest.fixture(scope="module")
def grey_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("grey") / "clothes", CLASSES, 8, "L")


@pytest.fixture(scope="module")
def folder_run(grey_folder: Path, tmp_path_factory: pytest.TempPathFactory, _session_cache: Path) -> Iterator[Path]:
    """``ganforge train cdcgan-digits --set data.name=image-folder data.root=FOLDER --out .../clothes``, 4 steps."""
    out = tmp_path_factory.mktemp("runs") / "clothes"
    overrides = {**TINY_DIGITS, "data.name": "image-folder", "data.root": str(grey_folder), "train.steps": 4,
                 "train.batch_size": 8}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANFORGE_CACHE", str(_session_cache))
        yield ganforge.train("cdcgan-digits", out=out, overrides=overrides).dir


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> str:
    """The ``error:`` line of stderr: one, the last, no traceback (notes such as the channel choice may precede it)."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, err
    return errors[0]


# --------------------------------------------------------------------------- item 10


@pytest.mark.filterwarnings("ignore:FID from .* biased upwards")
def test_eval_extractor_and_count_follow_the_data(folder_run, standin_inception, run_copy, capsys) -> None:
    saved = yaml.safe_load((folder_run / "config.yaml").read_text())["eval"]
    assert saved["extractor"] == "inception" and saved["n"] != 1797  # not the digits preset's classifier and count

    code, out, err = run_cli(capsys, "eval", str(folder_run), "--metrics", "fid", "--n", "40")
    assert code == 0, err
    assert "extractor: inception-standin (the run's eval.extractor, a general one)" in out

    # A run saved with the domain classifier of another data set (an older run, a hand-written YAML).
    old = run_copy(folder_run)
    config = yaml.safe_load((old / "config.yaml").read_text())
    config["eval"].update(extractor="digits", n=1797)
    (old / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code, out, err = run_cli(capsys, "eval", str(old), "--metrics", "fid", "--n", "40", "--json", str(old / "scores.json"))
    assert code == 0, err
    assert "extractor: inception-standin (data set image-folder is not digits; the digits classifier only scores digits)" in out
    scores = yaml.safe_load((old / "scores.json").read_text())
    assert scores["extractor"] == "inception-standin" and scores["n_real"] == 24
    from ganforge.config import EvalConfig
    from ganforge.evaluation import choose_extractor
    from ganforge.rundir import RunDir

    choice = choose_extractor(RunDir(old).config, modality="image")
    assert choice.n(RunDir(old).config.eval) == EvalConfig.n  # the preset's 1797 (all the digits) goes with its classifier

    # The classifier is still the default on its own data set, and --extractor still wins.
    code, out, _ = run_cli(capsys, "eval", str(old), "--metrics", "fid", "--n", "30", "--extractor", "digits")
    assert code == 0 and "extractor: digits-" in out and "(asked for)" in out


def test_run_is_named_after_its_directory_not_the_borrowed_preset(folder_run) -> None:
    assert yaml.safe_load((folder_run / "config.yaml").read_text())["name"] == "clothes"
    assert ganforge.load(folder_run).meta["run"] == "clothes"
    with Image.open(sorted((folder_run / "samples").glob("step-*.png"))[-1]) as grid:
        assert grid.text["run"] == "clothes"


# --------------------------------------------------------------------------- item 11


def test_grey_folders_train_one_channel_by_default(folder_run, tmp_path, capsys) -> None:
    assert ganforge.load(folder_run).output_shape[0] == 1

    for mode, channels, why in (("L", 1, "every image is grey"), ("RGB-grey", 1, "every image is grey"),
                                ("RGB", 3, "in colour")):
        root = write_folder(tmp_path / mode, ("a", "b"), 2, mode)
        data = ganforge.data.create(DataConfig(name="image-folder", root=str(root)))
        assert data.data.shape[1] == channels, mode
        err = capsys.readouterr().err
        assert f"image-folder: {channels} channel" in err and why in err, err
    forced = ganforge.data.create(DataConfig(name="image-folder", root=str(tmp_path / "L"), channels=3))
    assert forced.data.shape[1] == 3


# --------------------------------------------------------------------------- item 12


def test_missing_inception_weights_fail_first_with_the_offline_recipe(folder_run, grey_folder, tmp_path, monkeypatch,
                                                                     capsys) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    built: list[object] = []
    create = ganforge.data.create
    monkeypatch.setattr(ganforge.data, "create", lambda cfg: built.append(cfg) or create(cfg))
    monkeypatch.setattr(inc, "fid_helper_weights", lambda: None)
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)

    code, _, err = run_cli(capsys, "eval", str(folder_run))
    line = one_line_error(err)
    assert code == 2 and not built  # before the data set is read and the generator sampled
    assert f"download {inc.WEIGHTS_URL} and copy it here to {inc.cache_dir() / Path(inc.WEIGHTS_URL).name}" in line
    assert "on a machine with internet" in line and "--extractor-weights" in line

    code, _, err = run_cli(capsys, "train", "dcgan-folder", "--out", str(tmp_path / "run"), "--set",
                           f"data.root={grey_folder}", "eval.every=2", "train.progress=false")
    assert code == 2 and "on a machine with internet" in one_line_error(err)
    assert not (tmp_path / "run" / "checkpoints").exists()  # before any training step


# --------------------------------------------------------------------------- item 13


def test_super_resolution_defaults_name_no_development_folders(tmp_path, capsys) -> None:
    code, out, _ = run_cli(capsys, "recipes")
    assert code == 0 and "eval_sets=[]" in out  # the srgan recipe's default: no folders
    config = ganforge.load_config("srgan-x4", {"data.root": str(tmp_path)})
    assert config.data.root == str(tmp_path) and not config.recipe_options.get("eval_sets")
    assert ganforge.load_config("srgan-x4").data.root is None

    texts = [*(ROOT / "src" / "ganforge").rglob("*.py"), *(ROOT / "src" / "ganforge" / "configs").glob("*.yaml"),
             *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    named = [str(p.relative_to(ROOT)) for p in texts if "shared/data" in p.read_text()]
    assert not named, f"user-facing files name the development data folder: {named}"

    run = tmp_path / "sr-run"
    run.mkdir()
    (run / "config.yaml").write_text(config.to_yaml())
    code, _, err = run_cli(capsys, "eval", str(run))
    assert code == 2 and "give --real DIR[,DIR]" in one_line_error(err)


# --------------------------------------------------------------------------- item 14


@pytest.mark.parametrize("preset", ["dcgan-folder", "cdcgan-folder"])
def test_own_folder_presets_train_and_need_a_root(preset, tmp_path, capsys) -> None:
    folder = write_folder(tmp_path / "mine", ("Boot", "Sneaker"), 4, "RGB")
    code, _, err = run_cli(capsys, "train", preset, "--out", str(tmp_path / "noroot"))
    assert code == 2 and "data.root=DIR" in one_line_error(err)

    code, out, err = run_cli(capsys, "train", preset, "--out", str(tmp_path / "run"), "--set", f"data.root={folder}",
                             "train.steps=1", "train.batch_size=8", "train.sample_count=4", "train.progress=false",
                             f"train.threads={THREADS}")
    assert code == 0 and "run saved to" in out and "image-folder: 3 channels" in err, err
    generator = ganforge.load(tmp_path / "run")
    assert generator.output_shape[0] == 3 and generator.meta["run"] == "run"
    if preset.startswith("cdcgan"):
        assert generator.meta["class_names"] == ["Boot", "Sneaker"]
        code, _, err = run_cli(capsys, "sample", str(tmp_path / "run"), "--n", "2", "--label", "Sneaker",
                               "--out", str(tmp_path / "sneakers.png"))
        assert code == 0, err
        with Image.open(tmp_path / "sneakers.png") as image:
            assert image.text["label"] == "1"


# --------------------------------------------------------------------------- item 15


def test_label_names_a_digit_named_class_folder_before_an_index(folder_run, tmp_path, capsys) -> None:
    def sample(label: str) -> bytes:
        out = tmp_path / f"label-{label}.png"
        code, _, err = run_cli(capsys, "sample", str(folder_run), "--n", "3", "--label", label, "--out", str(out))
        assert code == 0, err
        return out.read_bytes()

    assert sample("7") == sample("2")  # folder '7' is class index 2 ('2' names no folder: an index)
    assert sample("3") == sample("1") != sample("0")
    code, _, err = run_cli(capsys, "sample", str(folder_run), "--label", "12", "--out", str(tmp_path / "x.png"))
    assert code == 2 and "0..2, got 12" in one_line_error(err)


def test_bench_times_a_preset_whose_data_is_absent(capsys) -> None:
    code, out, err = run_cli(capsys, "bench", "train", "dcgan64-celeba", "--steps", "1", "--repeats", "1",
                             "--warmup", "0", "--batch-size", "2", "--set", f"train.threads={THREADS}")
    assert code == 0, err
    assert "data: synthetic 3x64x64 random images (no celeba data" in out

    code, _, err = run_cli(capsys, "bench", "train", "pix2pix-facades", "--steps", "1")  # needs pairs: say how
    assert code == 2 and "ganforge bench train pix2pix-facades --set data.root=DIR" in one_line_error(err)
