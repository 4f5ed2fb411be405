import subprocess
import sys

import pytest

from ganforge.config import Config, apply_overrides, from_dict, parse_override, preset_names
from ganforge.errors import ConfigError, UserError
from ganforge.validate import load_config

REQUIRED_PRESETS = {"dcgan-digits", "cdcgan-digits", "gan-ring8", "gan-grid25", "dcgan-mnist", "dcgan-cifar10", "dcgan64-celeba"}


@pytest.mark.parametrize("name", sorted(REQUIRED_PRESETS))
def test_presets_load_and_validate(name):
    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.to_dict()["model"]["name"] == cfg.model.name
    # the saved form round-trips to the same config
    assert from_dict(cfg.to_dict()) == cfg


def test_required_presets_exist():
    assert REQUIRED_PRESETS <= set(preset_names())


def test_classic_dcgan64_preset():
    cfg = load_config("dcgan64-celeba")
    assert cfg.data.resolution == 64 and cfg.model.options == {"latent_dim": 100, "base_channels": 64}
    assert cfg.optim.g_lr == 2e-4 and cfg.optim.g_betas == [0.5, 0.999]


def test_overrides_with_dotted_keys_and_yaml_values():
    cfg = load_config(
        "dcgan-digits",
        ["train.steps=7", "train.batch_size=16", "train.seed=3", "data.name=mnist", "data.root=/x", "loss.name=hinge",
         "optim.g_betas=[0.0, 0.9]"],
    )
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.seed) == (7, 16, 3)
    assert (cfg.data.name, cfg.data.root, cfg.loss.name) == ("mnist", "/x", "hinge")
    assert cfg.optim.g_betas == [0.0, 0.9]
    assert parse_override("a.b=1e-4") == ("a.b", 1e-4)


def test_model_name_override_drops_inherited_family_options():
    cfg = load_config("dcgan-digits", ["model.name=mlp"])
    assert cfg.model.name == "mlp" and "base_channels" not in cfg.model.options
    # ...but an option given explicitly is still checked against the new family
    with pytest.raises(ConfigError, match="model.base_channels"):
        load_config("dcgan-digits", ["model.name=mlp", "model.base_channels=8"])


@pytest.mark.parametrize(
    "override, pattern",
    [
        ("train.stepz=5", r"unknown config key 'train.stepz'; did you mean 'steps'\?"),
        ("trian.steps=5", r"unknown config key 'trian'; did you mean 'train'\?"),
        ("train.steps=abc", r"'train.steps' must be int, got 'abc'"),
        ("train.steps=0", r"'train.steps' must be >= 1"),
        ("model.base_chanels=8", r"'model.base_chanels' for model 'dcgan'; did you mean 'base_channels'\?"),
        ("model.base_channels=wide", r"'model.base_channels' must be int"),
        ("model.name=dcgam", r"unknown model 'dcgam'; did you mean 'dcgan'\?"),
        ("loss.name=hinj", r"unknown loss 'hinj'; did you mean 'hinge'\?"),
        ("data.name=digit", r"unknown data set 'digit'; did you mean 'digits'\?"),
        ("train.precision=fp8", r"must be fp32, bf16 or fp16"),
        ("train", r"must look like key=value"),
    ],
)
def test_bad_config_is_a_one_line_error(override, pattern):
    with pytest.raises(UserError, match=pattern) as info:
        load_config("dcgan-digits", [override])
    assert "\n" not in str(info.value)


def test_unknown_preset_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown preset 'dcgan-digit'; did you mean 'dcgan-digits'\?"):
        load_config("dcgan-digit")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))


def test_yaml_file_config(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndata: {name: ring8}\nmodel: {name: mlp, hidden_dim: 32}\n")
    cfg = load_config(str(path), {"train.steps": 3})
    assert cfg.model.options == {"hidden_dim": 32} and cfg.train.steps == 3
    assert isinstance(cfg, Config)
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}


def test_cli_unknown_key_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ganforge", "train", "--out", str(tmp_path / "r"), "--set", "train.stepz=5"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "stepz" in lines[0] and "did you mean 'steps'" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_preset_changes_are_what_a_preset_adds_to_its_base():
    from ganforge.config import preset_changes

    assert preset_changes("pacgan-grid25") == {"model.pack": 4}
    assert preset_changes("unrolled-grid25") == {"recipe": "unrolled", "recipe_options": {"unroll_steps": 5}}
    # applied to another base, they change only that: the ring stays a ring
    cfg = load_config("gan-ring8", preset_changes("pacgan-grid25"))
    assert cfg.data.name == "ring8" and cfg.model.pack == 4
    with pytest.raises(ConfigError, match="extends no other preset"):
        preset_changes("gan-grid25")  # a base preset: its "changes" would replace the whole base
