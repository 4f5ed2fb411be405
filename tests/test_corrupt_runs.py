"""Malformed run directories and checkpoints (issue 16, item 5): every command that reads a run gives one
``error:`` line and exit code 2 (a user/data error), never a traceback, and never allocates what a corrupt
``generator/config.json`` asks for before checking it against the weights."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from ganforge import models
from ganforge.cli import main
from ganforge.models import MODELS, load_generator, save_generator

# --------------------------------------------------------------------------- the commands that read a run


def _image(tmp: Path) -> Path:
    from PIL import Image

    path = tmp / "in.png"
    Image.new("RGB", (8, 8)).save(path)
    return path


#: Command name -> its arguments for run ``r`` (outputs under ``t``).
COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "sample": lambda r, t: ["sample", str(r), "--n", "2", "--out", str(t / "s.png")],
    "interpolate": lambda r, t: ["interpolate", str(r), "--seeds", "0", "1", "--frames", "2", "--out", str(t / "w.png")],
    "export": lambda r, t: ["export", str(r), "--out", str(t / "g.pt")],
    "synthesize": lambda r, t: ["synthesize", str(r), "--n", "2", "--out", str(t / "syn")],
    "eval": lambda r, t: ["eval", str(r), "--n", "8"],
    "serve": lambda r, t: ["serve", str(r), "--port", "0"],
    "upscale": lambda r, t: ["upscale", str(r), str(_image(t)), "--out", str(t / "up")],
    "translate": lambda r, t: ["translate", str(r), str(_image(t)), "--out", str(t / "tr")],
    "report": lambda r, t: ["report", str(r)],
    "resume": lambda r, t: ["train", "--resume", str(r)],
}
#: ``ganforge serve`` needs the optional extras (pip install 'ganforge[serve]').
HAS_SERVE = all(importlib.util.find_spec(name) is not None for name in ("fastapi", "uvicorn"))
if not HAS_SERVE:
    del COMMANDS["serve"]
#: The commands that load the generator (generator/config.json + model.safetensors).
GENERATOR_COMMANDS = tuple(c for c in ("sample", "interpolate", "export", "synthesize", "eval", "serve", "upscale", "translate")
                           if c in COMMANDS)
#: The commands that read config.yaml.
CONFIG_COMMANDS = ("eval", "resume")


@pytest.fixture(autouse=True)
def _no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ganforge serve`` builds its app (which loads the run) and returns instead of serving forever."""
    if HAS_SERVE:
        monkeypatch.setattr("uvicorn.Server.run", lambda self, sockets=None: None)


def expect_one_line_error(command: str, run: Path, tmp: Path, capsys: pytest.CaptureFixture[str], *words: str) -> None:
    """``ganforge COMMAND RUN ...``, in-process, exits 2 with one ``error:`` line holding ``words``, and no traceback."""
    out = tmp / f"out-{command}"
    out.mkdir()
    capsys.readouterr()
    rc = main(COMMANDS[command](run, out))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), (command, rc, err)
    for word in words:
        assert word in lines[0], (command, word, lines[0])


# --------------------------------------------------------------------------- corruptions


def _edit_json(path: Path, edit: Callable[[dict], object]) -> None:
    """Change the JSON file in place (``edit`` mutates it)."""
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _generator_config(edit: Callable[[dict], object]) -> Callable[[Path, dict[str, Path]], None]:
    return lambda run, others: _edit_json(run / "generator" / "config.json", edit)


def _write(relative: str, content: bytes | str) -> Callable[[Path, dict[str, Path]], None]:
    def apply(run: Path, others: dict[str, Path]) -> None:
        path = run / relative
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return apply


def _truncate(relative: str) -> Callable[[Path, dict[str, Path]], None]:
    def apply(run: Path, others: dict[str, Path]) -> None:
        path = run / relative
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return apply


def _swap_weights(donor: str) -> Callable[[Path, dict[str, Path]], None]:
    def apply(run: Path, others: dict[str, Path]) -> None:
        (run / "generator" / "model.safetensors").write_bytes((others[donor] / "generator" / "model.safetensors").read_bytes())

    return apply


def _remove(relative: str) -> Callable[[Path, dict[str, Path]], None]:
    return lambda run, others: (run / relative).unlink()


def _kwarg(key: str, value: object) -> Callable[[dict], None]:
    return lambda c: c["kwargs"].__setitem__(key, value)


#: name -> (corruption, the run it applies to, the commands that read what it breaks, words of the error).
GENERATOR_CORRUPTIONS = {
    "extra kwarg": (_generator_config(_kwarg("bogus", 1)), "dcgan", ("bogus",)),
    "list-valued kwarg": (_generator_config(_kwarg("latent_dim", [16])), "dcgan", ("latent_dim",)),
    "string kwarg": (_generator_config(_kwarg("base_channels", "8")), "dcgan", ("base_channels",)),
    "missing kwarg": (_generator_config(lambda c: c["kwargs"].pop("output_shape")), "ring8", ("output_shape",)),
    "kwargs a list": (_generator_config(lambda c: c.__setitem__("kwargs", [1, 16])), "dcgan", ("kwargs",)),
    "meta a list": (_generator_config(lambda c: c.__setitem__("meta", ["image"])), "dcgan", ("meta",)),
    "meta modality a number": (_generator_config(lambda c: c["meta"].__setitem__("modality", 3)), "dcgan", ("modality",)),
    "meta class_names a string": (_generator_config(lambda c: c["meta"].__setitem__("class_names", "abc")), "cdcgan",
                                  ("class_names",)),
    "unknown class": (_generator_config(lambda c: c.__setitem__("class", "os.system")), "dcgan", ("os.system",)),
    "config.json a list": (_write("generator/config.json", "[1, 2]"), "dcgan", ("config.json",)),
    "config.json not JSON": (_write("generator/config.json", '{"class": "DCGANGen'), "dcgan", ("config.json",)),
    "config.json not UTF-8": (_write("generator/config.json", b"\xff\xfe\x00{"), "dcgan", ("config.json",)),
    "changed size": (_generator_config(_kwarg("latent_dim", 32)), "dcgan", ("net.0.weight", "shape")),
    "huge hidden_dim": (_generator_config(_kwarg("hidden_dim", 12000)), "ring8", ("shape",)),
    "many layers": (_generator_config(_kwarg("num_layers", 100_000)), "ring8", ("tensors",)),
    "weights of another model": (_swap_weights("ring8"), "dcgan", ("model.safetensors",)),
    "weights of a conditional model": (_swap_weights("cdcgan"), "dcgan", ("model.safetensors",)),
    "missing weights": (_remove("generator/model.safetensors"), "dcgan", ("model.safetensors",)),
    "truncated weights": (_truncate("generator/model.safetensors"), "dcgan", ("model.safetensors",)),
    "garbage weights": (_write("generator/model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"), "dcgan",
                        ("model.safetensors",)),
    "missing config.json": (_remove("generator/config.json"), "dcgan", ()),
}

CONFIG_CORRUPTIONS = {
    "empty config.yaml": (_write("config.yaml", ""), ("config.yaml", "empty")),
    "config.yaml a list": (_write("config.yaml", "- dcgan\n- digits\n"), ("config.yaml",)),
    "config.yaml not YAML": (_write("config.yaml", "name: [dcgan\n"), ("config.yaml",)),
    "config.yaml without sections": (_write("config.yaml", "name: dcgan-digits\n"), ("config.yaml",)),
    "config.yaml a wrong type": (_write("config.yaml", "model: 3\ndata: {name: digits}\n"), ("model",)),
    "missing config.yaml": (_remove("config.yaml"), ("config.yaml",)),
}


def _checkpoint(edit: Callable[[dict], object]) -> Callable[[Path, dict[str, Path]], None]:
    def apply(run: Path, others: dict[str, Path]) -> None:
        path = run / "checkpoints" / "latest.pt"
        state = torch.load(path, weights_only=True)
        result = edit(state)
        torch.save(state if result is None else result, path)

    return apply


def _drop(*keys: str) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        node = state
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


def _set(value: object, *keys: str) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        node = state
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


CHECKPOINT_CORRUPTIONS = {
    "missing step": (_checkpoint(_drop("step")), ("step",)),
    "missing recipe": (_checkpoint(_drop("recipe")), ("recipe",)),
    "missing a network": (_checkpoint(_drop("recipe", "networks", "discriminator")), ("discriminator",)),
    "a network a list": (_checkpoint(_set([1, 2], "recipe", "networks", "generator")), ("recipe.networks.generator",)),
    "missing rng": (_checkpoint(_drop("rng")), ("rng",)),
    "step a string": (_checkpoint(_set("20", "step")), ("step",)),
    "negative step": (_checkpoint(_set(-3, "step")), ("step",)),
    "networks a list": (_checkpoint(_set([1, 2], "recipe", "networks")), ("networks",)),
    "ema a tensor": (_checkpoint(_set(torch.zeros(3), "ema")), ("ema",)),
    "loader without position": (_checkpoint(_drop("loader", "position")), ("position",)),
    "rng torch a list": (_checkpoint(_set([1, 2, 3], "rng", "torch")), ("rng",)),
    "wrong weight shape": (_checkpoint(lambda s: s["ema"].update({k: torch.zeros(3) for k in list(s["ema"])[:1]})), ("shape",)),
    "optimizer of another size": (_checkpoint(lambda s: s["recipe"]["optimizers"]["generator"]["param_groups"][0]
                                              .__setitem__("params", [0])), ("optimizer",)),
    "not a dict": (_checkpoint(lambda s: [1, 2, 3]), ("latest.pt",)),
    "truncated": (_truncate("checkpoints/latest.pt"), ("truncated",)),
    "garbage": (_write("checkpoints/latest.pt", b"not a checkpoint at all"), ("is not a checkpoint",)),
    "another format": (_checkpoint(_set(99, "format")), ("format",)),
    "empty": (_write("checkpoints/latest.pt", b""), ("empty",)),
    "optimizer moment of another shape": (_checkpoint(lambda s: s["recipe"]["optimizers"]["generator"]["state"][0]
                                                      .__setitem__("exp_avg", torch.zeros(7))), ("exp_avg",)),
    "rng python garbage": (_checkpoint(_set((1, 2), "rng", "python")), ("rng", "fit")),
    "eval_best without value": (_checkpoint(_set({"key": "fid", "step": 10}, "eval_best")), ("eval_best.value",)),
}


@pytest.fixture
def runs(tiny_dcgan_run, tiny_cdcgan_run, tiny_ring8_run) -> dict[str, Path]:
    return {"dcgan": tiny_dcgan_run.dir, "cdcgan": tiny_cdcgan_run.dir, "ring8": tiny_ring8_run.dir}


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("corruption", list(GENERATOR_CORRUPTIONS))
def test_a_malformed_generator_is_one_line_in_every_command_that_loads_it(corruption, runs, run_copy, tmp_path, capsys):
    corrupt, base, words = GENERATOR_CORRUPTIONS[corruption]
    run = run_copy(runs[base])
    corrupt(run, runs)
    for command in GENERATOR_COMMANDS:
        expect_one_line_error(command, run, tmp_path, capsys, *words)


@pytest.mark.parametrize("corruption", list(CONFIG_CORRUPTIONS))
def test_a_malformed_config_yaml_is_one_line_for_every_command_that_reads_it(corruption, runs, run_copy, tmp_path, capsys):
    corrupt, words = CONFIG_CORRUPTIONS[corruption]
    run = run_copy(runs["dcgan"])
    corrupt(run, runs)
    for command in CONFIG_COMMANDS:
        expect_one_line_error(command, run, tmp_path, capsys, *words)


@pytest.mark.parametrize("corruption", list(CHECKPOINT_CORRUPTIONS))
def test_a_malformed_checkpoint_is_one_line_on_resume(corruption, runs, run_copy, tmp_path, capsys):
    corrupt, words = CHECKPOINT_CORRUPTIONS[corruption]
    run = run_copy(runs["dcgan"])
    corrupt(run, runs)
    expect_one_line_error("resume", run, tmp_path, capsys, "latest.pt", *words)


@pytest.mark.parametrize("what", ["empty folder", "file", "missing"])
def test_a_path_that_is_not_a_run_is_one_line_in_every_command(what, tmp_path, capsys):
    path = tmp_path / "not-a-run"
    if what == "empty folder":
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    elif what == "file":
        path.write_text("hello")
    for command in COMMANDS:
        expect_one_line_error(command, path, tmp_path, capsys, "not-a-run")


def test_a_torn_metrics_line_is_tolerated_by_resume_and_report(runs, run_copy, capsys):
    """A crash mid-write leaves half a line in metrics.jsonl: skipped, and dropped when --resume rewrites the file."""
    run = run_copy(runs["dcgan"])
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 30, "d_lo')
    for argv in (["train", "--resume", str(run)], ["report", str(run)]):
        assert main(argv) == 0
        assert "Traceback" not in capsys.readouterr().err
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["step"] <= 20 for line in lines)


@pytest.mark.parametrize("family", MODELS.names())
def test_every_family_loads_through_the_checks(family, tmp_path):
    """What ``save_generator`` writes passes every check of ``load_generator`` (meta build included) and loads equal."""
    for shape, options in models.smallest(family):
        for num_classes in (0, 3) if models.takes_labels(family) and not models.is_translator_family(family) else (0,):
            torch.manual_seed(0)
            if models.is_translator_family(family):
                generator, _ = models.create_translator(family, shape[0], 3, **options)
            else:
                generator, _ = models.create(family, shape, num_classes, **options)
            folder = save_generator(generator, tmp_path / f"{family}-{len(list(tmp_path.iterdir()))}", {"run": "t", "step": 1})
            loaded = load_generator(folder)
            assert type(loaded) is type(generator) and loaded.meta["run"] == "t"
            saved = generator.state_dict()
            assert all(torch.equal(value, saved[key]) for key, value in loaded.state_dict().items())


def test_a_huge_size_in_config_json_fails_before_allocating(runs, run_copy):
    """``hidden_dim: 12000`` asks for ~1.1 GB of weights; the check against the weights file comes first.

    Peak memory (``ru_maxrss``) is read in a fresh process after the imports and after the command,
    so the growth is what loading the corrupt run allocated.
    """
    run = run_copy(runs["ring8"])
    GENERATOR_CORRUPTIONS["huge hidden_dim"][0](run, runs)
    code = (
        "import resource, sys\n"
        "import ganforge, ganforge.cli, safetensors.torch\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    sys.exit(ganforge.cli.main(['sample', {str(run)!r}, '--out', {str(run / 's.png')!r}]))\n"
        "finally:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    growth_mib = int(proc.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux
    assert growth_mib < 200, f"loading the corrupt run grew peak memory by {growth_mib:.0f} MiB"
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "'net.0.weight' has shape [32, 2] in the weights but [12000, 2]" in proc.stderr
