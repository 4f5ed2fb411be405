"""``ganforge export``: ONNX / TorchScript files that reproduce the PyTorch generator, and sampling from them."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import models
from ganforge.cli import main
from ganforge.export import ExportError, export_generator, load_exported
from ganforge.models import save_generator
from ganforge.models.base import truncated_normal
from ganforge.rundir import load_generator

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

TOLERANCE = 1e-4
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


@pytest.fixture(scope="module", autouse=True)
def _reuse_onnx_op_registry():
    """Speed only: torch.onnx.export rebuilds its table of ONNX translations (seconds) on every
    call; build it once per opset for this module. Skipped where that private hook is absent."""
    try:
        from torch.onnx._internal.exporter import _registration
        original = _registration.ONNXRegistry.__dict__["from_torchlib"].__func__
    except (ImportError, AttributeError, KeyError):
        yield
        return
    cache = {}

    def from_torchlib(cls, opset_version=None, **kwargs):
        key = (opset_version, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = original(cls, opset_version=opset_version, **kwargs)
        return cache[key]

    _registration.ONNXRegistry.from_torchlib = classmethod(from_torchlib)
    yield
    _registration.ONNXRegistry.from_torchlib = classmethod(original)


def _perturb(generator, seed=0):
    """Move every weight off its initial value (zero noise strengths, unit BN statistics, w_avg = 0)."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=rng))
        for name, buffer in generator.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0, generator=rng)
            elif name.endswith(("running_mean", "w_avg")):
                buffer.normal_(0.0, 0.3, generator=rng)
    return generator.eval()


def _built(family, shape, num_classes, **options):
    torch.manual_seed(0)
    generator, _ = models.create(family, shape, num_classes, **options)
    return _perturb(generator)


#: case -> (family, data shape, classes, options); "dcgan-run" and "cdcgan-run" come from trained runs.
BUILT = {
    "sngan-sn-cond": ("sngan", (3, 8, 8), 3, {"g_channels": 4, "d_channels": 4, "latent_dim": 8, "g_spectral_norm": True}),
    "stylegan-mapping-noise": (
        "stylegan", (1, 8, 8), 0, {"base_channels": 4, "max_channels": 8, "latent_dim": 8, "w_dim": 8, "mapping_layers": 2}
    ),
    "mlp-vector": ("mlp", (2,), 0, {"hidden_dim": 8, "num_layers": 2}),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_cdcgan_run):
    """Generator folders: the session's trained conditional digits run, an unconditional DCGAN, and the BUILT cases."""
    root = tmp_path_factory.mktemp("export")
    found = {"cdcgan-run": tiny_cdcgan_run.dir}
    dcgan = _built("dcgan", (3, 8, 8), 0, base_channels=4, latent_dim=8)
    found["dcgan"] = save_generator(dcgan, root / "dcgan" / "generator", {"run": "dcgan-test"}).parent
    for case, (family, shape, classes, options) in BUILT.items():
        found[case] = save_generator(_built(family, shape, classes, **options), root / case / "generator", {"run": case}).parent
    return found


@pytest.fixture(scope="module")
def exported(folders, tmp_path_factory):
    """``exported(case, format)``: the exported file, made once per module."""
    root = tmp_path_factory.mktemp("files")
    cache = {}

    def get(case, fmt):
        if (case, fmt) not in cache:
            cache[case, fmt] = export_generator(load_generator(folders[case]), root / f"{case}{SUFFIX[fmt]}", fmt)
        return cache[case, fmt]

    return get


def _raw_run(path, fmt, z, labels, psi=None):
    """Run an exported file with its own runtime only (no ganforge adapter)."""
    if fmt == "onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {"z": z.numpy()}
        if labels is not None:
            feeds["labels"] = labels.numpy()
        if psi is not None:
            feeds["psi"] = np.array(psi, dtype=np.float32)
        assert [i.name for i in session.get_inputs()] == list(feeds)
        assert session.get_inputs()[0].shape[0] == "batch"  # dynamic batch axis
        meta = json.loads(session.get_modelmeta().custom_metadata_map["ganforge"])
        return torch.from_numpy(session.run(["samples"], feeds)[0]), meta
    extra = {"ganforge.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    args = [z] + ([labels] if labels is not None else []) + ([torch.tensor(psi)] if psi is not None else [])
    return module(*args), json.loads(extra["ganforge.json"])


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("case", ["dcgan", "cdcgan-run", *BUILT])
def test_export_matches_pytorch(exported, folders, case, fmt):
    generator = load_generator(folders[case])
    result = exported(case, fmt)
    assert result.path.is_file() and 0 <= result.max_abs_diff <= TOLERANCE
    print(f"{case} {fmt}: verified max abs diff {result.max_abs_diff:.2e}")

    # the file on its own runtime, on a batch size never traced (3), equals the generator
    z = truncated_normal((3, generator.latent_dim), None, torch.Generator().manual_seed(11))
    labels = torch.tensor([2, 0, 1]) if generator.num_classes else None
    psi = 0.6 if case.startswith("stylegan") else None
    out, meta = _raw_run(result.path, fmt, z, labels, psi)
    with torch.no_grad():
        expected = generator(z, labels, truncation=psi) if psi is not None else generator(z, labels)
    assert out.shape == expected.shape == (3, *generator.output_shape)
    assert (out - expected).abs().max().item() <= TOLERANCE

    assert meta["latent_dim"] == generator.latent_dim and meta["num_classes"] == generator.num_classes
    assert tuple(meta["output_shape"]) == generator.output_shape
    assert meta["weights_id"] == generator.meta["weights_id"] and meta["run"] == generator.meta["run"]
    assert meta["class_names"] == generator.meta.get("class_names")

    # the adapter samples like the generator, seed for seed (and with truncation)
    loaded = load_exported(result.path)
    expected_sizes = (generator.latent_dim, generator.num_classes, generator.output_shape)
    assert (loaded.latent_dim, loaded.num_classes, loaded.output_shape) == expected_sizes
    for truncation in (None, 0.8):
        a, b = loaded.sample(7, seed=3, truncation=truncation), generator.sample(7, seed=3, truncation=truncation)
        assert (a - b).abs().max().item() <= TOLERANCE


def test_stylegan_noise_is_the_fixed_eval_map(folders, exported):
    """Noise injection is on (non-zero strengths) and deterministic: two runs give the same images."""
    generator = load_generator(folders["stylegan-mapping-noise"])
    assert all(layer.strength.abs().sum() > 0 for name, layer in generator.named_modules() if name.endswith("noise"))
    loaded = load_exported(exported("stylegan-mapping-noise", "onnx").path)
    assert torch.equal(loaded.sample(4, seed=1), loaded.sample(4, seed=1))


def test_progan_exports_its_current_stage(tmp_path):
    generator = _built("progan", (1, 16, 16), 0, base_channels=8, max_channels=16, latent_dim=8)
    generator.set_growth(1, 0.5)  # mid-training: 8x8, fading in, upsampled to 16x16
    result = export_generator(generator, tmp_path / "progan.pt")
    assert result.max_abs_diff <= TOLERANCE
    assert generator.growth == (1, 0.5)  # the generator itself is untouched
    a = load_exported(result.path).sample(4, seed=0)
    assert a.shape == (4, 1, 16, 16) and torch.allclose(a, generator.sample(4, seed=0), atol=TOLERANCE)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_cli_export_and_sample_from_file(folders, exported, tmp_path, capsys, fmt):
    run = folders["cdcgan-run"]
    out = tmp_path / f"digits{SUFFIX[fmt]}"
    if fmt == "torchscript":  # one format through the CLI's export command, the other from the cache
        assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert f"wrote {out} (torchscript, inputs: z, labels)" in printed and "max abs difference" in printed
    else:
        out = exported("cdcgan-run", fmt).path
    args = ["--n", "12", "--seed", "5", "--label", "3", "--truncation", "0.9", "--out", str(tmp_path / "x.npy")]
    assert main(["sample", str(out), *args]) == 0
    expected = ganforge.load(run).sample(12, seed=5, labels=3, truncation=0.9).numpy()
    assert np.abs(np.load(tmp_path / "x.npy") - expected).max() <= TOLERANCE

    png = tmp_path / "grid.png"
    assert main(["sample", str(out), "--n", "20", "--seed", "7", "--out", str(png)]) == 0
    image = Image.open(png)
    assert image.size == (10 * 18 + 2, 2 * 18 + 2)  # 10 classes per row, as for the run
    assert image.text["generator"] == ganforge.load(run).meta["weights_id"] and image.text["seed"] == "7"
    assert image.text["run"] == "cdcgan-digits"


def _one_error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


def test_missing_and_corrupt_files_are_one_line_errors(folders, exported, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["sample", str(tmp_path / "nope.onnx"), "--out", out]) == 2
    assert "does not exist" in _one_error(capsys)
    for name, message in (("bad.onnx", "cannot read ONNX file"), ("bad.pt", "cannot read TorchScript file")):
        (tmp_path / name).write_bytes(b"\x00not a model" * 50)
        assert main(["sample", str(tmp_path / name), "--out", out]) == 2
        assert message in _one_error(capsys)
    # a training checkpoint is a .pt file too, but not TorchScript
    checkpoint = folders["cdcgan-run"] / "checkpoints" / "latest.pt"
    assert main(["sample", str(checkpoint), "--out", out]) == 2
    assert "not TorchScript but a torch.save file (a training checkpoint?" in _one_error(capsys)
    # a valid ONNX model without ganforge's metadata
    model = onnx.load(str(exported("mlp-vector", "onnx").path))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "foreign.onnx"))
    assert main(["sample", str(tmp_path / "foreign.onnx"), "--out", out]) == 2
    assert "no ganforge metadata" in _one_error(capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "tflite", "--out", "m.tflite"], "unknown export format 'tflite'"),
        (["--format", "onnx", "--out", "m.pt"], "--out for onnx must end in .onnx"),
        (["--out", "m.bin"], "cannot tell the export format from 'm.bin'"),
        (["--out", "m.onnx", "--opset", "11"], "--opset must be >= 17"),
    ],
)
def test_bad_format_or_suffix(folders, tmp_path, capsys, args, message):
    args = [a if not a.startswith("m.") else str(tmp_path / a) for a in args]
    assert main(["export", str(folders["mlp-vector"]), *args]) == 2
    assert message in _one_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_writes_nothing(folders, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.pt"
    out.write_bytes(b"an earlier export")
    monkeypatch.setattr("ganforge.export.files.verify", lambda generator, exported: 0.5)
    assert main(["export", str(folders["mlp-vector"]), "--out", str(out)]) == 1
    assert "differs from the PyTorch generator by 0.5" in _one_error(capsys)
    assert out.read_bytes() == b"an earlier export" and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
    with pytest.raises(ExportError):
        export_generator(load_generator(folders["mlp-vector"]), tmp_path / "n.pt")


def test_missing_onnx_packages(folders, exported, tmp_path, capsys, monkeypatch):
    path = exported("mlp-vector", "onnx").path
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    assert main(["export", str(folders["mlp-vector"]), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "pip install 'ganforge[export]'" in _one_error(capsys)
    assert main(["sample", str(path), "--out", str(tmp_path / "x.png")]) == 2
    assert "running an ONNX file needs onnxruntime" in _one_error(capsys)
