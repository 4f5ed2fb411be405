"""The evaluation pipeline: sources, feature cache, metrics by name, CLI, evaluation while training.

Everything runs offline with a small deterministic test-only extractor (``test-proj``): the
Inception weights are not needed.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import ganforge
import ganforge.metrics.modes
from ganforge import cli
from ganforge.config import DataConfig
from ganforge.data import create as create_data
from ganforge.data import to_uint8
from ganforge.errors import ConfigError, UserError
from ganforge.evaluation import METRICS, Evaluator, SourceOptions, evaluate, evaluate_run, generate, load_source
from ganforge.extractors import EXTRACTORS, FeatureExtractor, Features
from ganforge.training.checkpoint import load_checkpoint
from ganforge.training.trainer import resume_config
from ganforge.validate import load_config
from tiny_configs import TINY_DIGITS


class ProjectionExtractor(FeatureExtractor):
    """Test-only: a fixed random projection of 8x8 grey pixels to 32-d features (+ 10 logits)."""

    name = "test-proj"
    feature_dim = 32
    num_logits = 10
    weights_id = "seed0"
    images_seen = 0  # counts every image extracted, to observe the cache

    def __init__(self, weights=None):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(64, 32, generator=g) / 8)
        self.head = torch.nn.Parameter(torch.randn(32, 10, generator=g))

    def extract(self, images):
        type(self).images_seen += len(images)
        x = F.adaptive_avg_pool2d(images.float().mean(1, keepdim=True) / 255, 8).flatten(1)
        features = x @ self.proj
        return Features(features, features @ self.head)


if "test-proj" not in EXTRACTORS:
    EXTRACTORS.add("test-proj", ProjectionExtractor)

X = {"extractor": "test-proj"}
ALL_KEYS = {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "density", "coverage",
            "n_real", "n_fake", "extractor"}
EVAL_RUN = {**TINY_DIGITS, "train.checkpoint_every": 20, "eval.every": 10, "eval.extractor": "test-proj",
            "eval.metrics": ["fid", "kid", "pr"], "eval.n": 64}


@pytest.fixture(scope="module")
def digits():
    return create_data(DataConfig()).data  # uint8 [1797, 1, 8, 8]


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory, _session_cache):
    """A tiny digits run evaluated every 10 steps (fid first: the best is the lowest FID)."""
    with pytest.MonkeyPatch.context() as patch:  # module fixtures run before the autouse cache fixture
        patch.setenv("GANFORGE_CACHE", str(_session_cache))
        out = tmp_path_factory.mktemp("eval") / "run"
        return ganforge.train("dcgan-digits", out=out, overrides={**EVAL_RUN, "train.steps": 20, "train.tensorboard": True})


def _write_pngs(folder, images):
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy(), "L").save(folder / f"{i:04d}.png")
    return folder


def _halves(digits):
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(1))
    return digits[order[:898]], digits[order[898:]]


# --------------------------------------------------------------------------- metrics through the pipeline


def test_fid_of_a_set_against_itself_is_zero(digits):
    same = evaluate("digits", "digits", metrics=["fid"], **X)
    assert abs(same["fid"]) < 1e-6
    assert (same["n_real"], same["n_fake"], same["extractor"]) == (1797, 1797, "test-proj-seed0")
    assert set(same) == {"fid", "n_real", "n_fake", "extractor"}
    assert evaluate("digits", 255 - digits, metrics="fid", **X)["fid"] > 1.0


def test_kid_of_two_halves_is_noise_and_a_different_set_is_not(digits):
    a, b = _halves(digits)
    halves = evaluate(a, b, metrics=["kid", "pr", "dc"], kid_subset_size=100, **X)
    assert abs(halves["kid_mean"]) < 3 * halves["kid_std"]
    assert halves["precision"] > 0.8 and halves["recall"] > 0.8 and halves["coverage"] > 0.8
    shifted = evaluate(a, torch.roll(b, 1, dims=-1), metrics=["kid", "pr", "dc"], kid_subset_size=100, **X)
    assert shifted["kid_mean"] > 10 * halves["kid_std"] + 100 * abs(halves["kid_mean"])
    assert shifted["precision"] < 0.5 and shifted["coverage"] < 0.5


def test_inception_score_needs_only_the_fake_set(digits):
    ProjectionExtractor.images_seen = 0
    out = evaluate(None, digits[:500], metrics=["is"], **X)
    assert set(out) == {"is_mean", "is_std", "n_real", "n_fake", "extractor"} and out["n_real"] is None
    assert 1.0 < out["is_mean"] < 10.0 and out["is_std"] > 0
    assert ProjectionExtractor.images_seen == 500
    ProjectionExtractor.images_seen = 0
    assert evaluate(digits[500:], digits[:500], metrics=["is"], **X) == {**out, "n_real": 1297}
    assert ProjectionExtractor.images_seen == 500  # the real set was not even extracted


def test_fid_warns_when_samples_are_fewer_than_feature_dims(digits):
    with pytest.warns(UserWarning, match="rank-deficient"):
        evaluate(digits[:20], digits[20:40], metrics=["fid"], **X)


# --------------------------------------------------------------------------- cache


def test_reference_features_are_cached_and_reused(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    fake = digits[:50]
    ProjectionExtractor.images_seen = 0
    first = evaluate("digits:test", fake, metrics=["fid", "is"], **X)
    assert ProjectionExtractor.images_seen == 360 + 50
    (entry,) = (tmp_path / "features").glob("*.safetensors")
    assert entry.name.startswith("digits-test-8px-360-test-proj-seed0-")
    saved = load_file(str(entry))
    assert saved["features"].shape == (360, 32) and saved["logits"].shape == (360, 10)

    ProjectionExtractor.images_seen = 0
    assert evaluate("digits:test", fake, metrics=["fid", "is"], **X) == first
    assert ProjectionExtractor.images_seen == 50  # only the fake set: the real features came from the cache

    evaluate("digits:test", fake, metrics=["fid"], n=40, **X)  # another count is another entry
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 2

    entry.write_bytes(b"not safetensors")  # a corrupt entry is recomputed, same result
    ProjectionExtractor.images_seen = 0
    assert evaluate("digits:test", fake, metrics=["fid", "is"], **X) == first
    assert ProjectionExtractor.images_seen == 410
    assert not list((tmp_path / "features").glob(".*tmp*"))  # atomic writes leave no temporary files


# --------------------------------------------------------------------------- sources


def test_every_source_kind_gives_the_same_pixels(digits, tmp_path, eval_run):
    images = digits[:40]
    folder = _write_pngs(tmp_path / "folder", images)
    np.save(tmp_path / "nchw.npy", images.numpy())
    np.save(tmp_path / "nhwc.npy", images.permute(0, 2, 3, 1).numpy())
    np.savez(tmp_path / "both.npz", images=images.numpy(), labels=np.zeros(40))
    np.save(tmp_path / "float.npy", (images.float() / 127.5 - 1).numpy())  # what `ganforge sample` writes
    for spec in (folder, tmp_path / "nchw.npy", tmp_path / "nhwc.npy", tmp_path / "both.npz", tmp_path / "float.npy"):
        source = load_source(str(spec))
        assert torch.equal(source.data, images), spec

    assert torch.equal(load_source("digits").data, digits)
    test = load_source("digits:test")
    assert len(test) == 360 and test.cache_key["split"] == "test"
    assert load_source("digits", SourceOptions(resolution=16)).data.shape == (1797, 1, 16, 16)
    subset = load_source("digits", SourceOptions(n=100)).data
    assert len(subset) == 100 and torch.equal(subset, load_source("digits", SourceOptions(n=100)).data)
    points = load_source("ring8", SourceOptions(n=10))
    assert points.data.shape == (10, 2) and points.data.dtype == torch.float32 and len(points.info["centers"]) == 8

    expected = to_uint8(ganforge.load(eval_run.dir).sample(30, seed=0))
    for spec in (eval_run.dir, eval_run.dir / "generator", ganforge.load(eval_run.dir)):
        source = load_source(spec, SourceOptions(n=30))
        assert source.data.dtype == torch.uint8 and torch.equal(source.data, expected), spec
    # a generated fake makes the data set reference load at the generator's resolution
    assert evaluate("digits", eval_run.dir, metrics="fid", n=64, **X)["n_fake"] == 64

    same = evaluate(str(folder), str(tmp_path / "nhwc.npy"), metrics=["fid"], **X)
    assert abs(same["fid"]) < 1e-6


def test_conditional_generators_are_sampled_class_balanced():
    generator, _ = ganforge.create_model("dcgan", (1, 16, 16), num_classes=10, base_channels=4, latent_dim=8)
    samples = generate(generator.eval(), 25, seed=3, batch_size=7)
    assert torch.equal(samples, to_uint8(generator.sample(25, seed=3, labels=torch.arange(25) % 10)))


def test_modes_on_ring8_and_stacked_mnist(monkeypatch):
    centers = load_source("ring8").info["centers"]
    on_modes = centers.repeat(50, 1)[:300] + 0.01 * torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    out = evaluate("ring8", on_modes, metrics=["modes"], n=300)
    assert out == {"modes": 8, "high_quality": 1.0, "n_real": 300, "n_fake": 300, "extractor": None}
    assert evaluate("ring8", torch.full((300, 2), 5.0), metrics=["modes"])["modes"] == 0

    seen = {}

    def labels(images):
        seen["images"] = images
        return torch.zeros(len(images), dtype=torch.long)

    def class_mode_stats(labels, num_modes):
        seen["num_modes"] = num_modes
        return {"modes": int(labels.unique().numel()), "kl": 6.9}

    monkeypatch.setattr(ganforge.evaluation.adapters, "stacked_mnist_labels", labels)
    monkeypatch.setattr(ganforge.metrics.modes, "class_mode_stats", class_mode_stats, raising=False)
    fake = ganforge.evaluation.Source(torch.zeros(12, 3, 28, 28, dtype=torch.uint8), "fake", {"data": "stacked-mnist"})
    assert evaluate(None, fake, metrics=["modes"]) == {"modes": 1, "kl": 6.9, "n_real": None, "n_fake": 12, "extractor": None}
    assert seen["num_modes"] == 1000 and seen["images"].shape == (12, 3, 28, 28)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "real, fake, kwargs, message",
    [
        ("digits", "digits", {"metrics": ["fdi"]}, r"unknown metric 'fdi'; did you mean 'fid'\?"),
        ("digitz", "digits", {}, r"unknown source 'digitz'.*did you mean 'digits'\?"),
        ("digits", "missing/samples.npy", {}, r"'missing/samples.npy' does not exist"),
        ("digits", "digits", {"metrics": ["fid"], "n": 1}, r"fid: real needs at least 2 samples, got 1"),
        ("digits", "digits", {"metrics": ["kid"], "n": 50, "kid_subset_size": 100},
         r"kid: KID subset_size 100 exceeds the number of samples"),
        ("digits", "digits", {"metrics": ["pr"], "n": 3}, r"pr: real needs at least 4 samples"),
        ("digits", "digits", {"metrics": ["dc"], "n": 5}, r"dc: real needs at least 6 samples"),
        ("digits", "digits", {"metrics": ["is"], "n": 5}, r"is: .*5 samples, 10 splits"),
        ("digits", "digits", {"n": 0}, r"n must be >= 1"),
        (None, "digits", {"metrics": ["fid", "is"]}, r"fid compare\(s\) against real samples"),
        ("digits", "digits", {"metrics": ["modes"]}, r"modes is defined for ring8, grid25, stacked-mnist samples, not for 'digits'"),
        ("ring8", "digits", {"metrics": ["fid"]}, r"cannot compare points \(real, shape \(2,\)\) with images"),
        (torch.zeros(10, 3), torch.zeros(10, 2), {}, r"fid: feature sizes differ: real has 3, fake has 2"),
        (None, "ring8", {"metrics": ["is"], "n": 20}, r"is needs class logits"),
    ],
)
def test_clear_one_line_errors(real, fake, kwargs, message):
    with pytest.raises(UserError, match=message) as info:
        evaluate(real, fake, **{**X, **kwargs})
    assert "\n" not in str(info.value)


def test_bad_files_are_clear_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    np.save(tmp_path / "cube.npy", np.zeros((4, 5, 6, 7), dtype=np.uint8))
    np.save(tmp_path / "wide.npy", np.full((4, 1, 8, 8), 2.0, dtype=np.float32))
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.zeros(3))
    (tmp_path / "empty").mkdir()
    for name, message in [
        ("notes.txt", "is a file but not a .npy/.npz array"),
        ("cube.npy", "images need 1 or 3 channels"),
        ("wide.npy", r"float images must lie in \[-1, 1\]"),
        ("two.npz", "holds 2 arrays \\(a, b\\)"),
        ("empty", "no images found"),
    ]:
        with pytest.raises(UserError, match=message):
            load_source(str(tmp_path / name))


def test_cli_errors_exit_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ganforge", "eval", "--real", "digits", "--fake", tmp_path / "nope", "--metrics", "fid"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    for args, message in [
        (["eval", "--real", "digits", "--fake", "digits", "--metrics", "fid,kdi"], "did you mean 'kid'?"),
        (["eval", "--real", "digits"], "give a RUN_DIR, or --fake"),
        (["eval", str(tmp_path)], "is not a run directory"),
    ]:
        assert cli.main(args) == 2


# --------------------------------------------------------------------------- command line


def test_cli_on_two_image_folders_writes_json(digits, tmp_path, capsys):
    real = _write_pngs(tmp_path / "real", digits[:200])
    fake = _write_pngs(tmp_path / "fake", digits[200:400])
    out = tmp_path / "out" / "scores.json"
    code = cli.main(["eval", "--real", str(real), "--fake", str(fake), "--metrics", "fid,kid,is,pr,dc",
                     "--extractor", "test-proj", "--json", str(out), "--device", "cpu", "--batch-size", "64"])
    printed = capsys.readouterr().out
    assert code == 0
    scores = json.loads(out.read_text())
    assert set(scores) == ALL_KEYS
    assert scores["n_real"] == scores["n_fake"] == 200 and scores["extractor"] == "test-proj-seed0"
    assert 0 < scores["fid"] < 1 and scores["precision"] > 0.5
    assert f"fid        {scores['fid']:.6g}" in printed and "kid_mean" in printed and "coverage" in printed
    direct = evaluate(str(real), str(fake), metrics="fid,kid,is,pr,dc", **X)
    assert direct == scores


def test_eval_run_dir_uses_the_runs_data_and_eval_config(eval_run, tmp_path, capsys):
    out = tmp_path / "run.json"
    assert cli.main(["eval", str(eval_run.dir), "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert set(scores) == {"fid", "kid_mean", "kid_std", "precision", "recall", "n_real", "n_fake", "extractor"}
    assert scores["n_real"] == scores["n_fake"] == 64
    # the same numbers the trainer logged for its final generator
    last = [r for r in eval_run.metrics() if "eval/fid" in r][-1]
    assert last["step"] == 20 and scores["fid"] == pytest.approx(last["eval/fid"], rel=1e-9)
    assert scores["kid_mean"] == pytest.approx(last["eval/kid_mean"], rel=1e-9)
    # overrides: other metrics and count
    assert set(evaluate_run(eval_run.dir, metrics="dc", n=40)) == {"density", "coverage", "n_real", "n_fake", "extractor"}


def test_eval_run_dir_on_a_ring8_run_in_a_subprocess(tiny_ring8_run, tmp_path):
    run = tiny_ring8_run  # gan-ring8, 10 steps, hidden 32
    assert [r["step"] for r in run.metrics() if "eval/modes" in r] == [10]  # the preset evaluates (and at the end)
    assert (run.dir / "checkpoints" / "best.pt").is_file()
    out = tmp_path / "ring.json"
    proc = subprocess.run([sys.executable, "-m", "ganforge", "eval", run.dir, "--json", out], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(out.read_text())
    assert set(scores) == {"modes", "high_quality", "n_real", "n_fake", "extractor"}
    assert scores["n_fake"] == 2500 and 0 <= scores["modes"] <= 8
    assert "modes" in proc.stdout and "high_quality" in proc.stdout


# --------------------------------------------------------------------------- training


def test_training_logs_eval_and_keeps_the_best(eval_run):
    evals = [r for r in eval_run.metrics() if "eval/fid" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert {"eval/fid", "eval/kid_mean", "eval/kid_std", "eval/precision", "eval/recall", "kimg"} <= set(evals[0])
    best = min(evals, key=lambda r: r["eval/fid"])
    for name in ("latest.pt", "best.pt"):
        state = load_checkpoint(eval_run.dir / "checkpoints" / name)
        assert state["eval_best"] == {"key": "fid", "value": best["eval/fid"], "step": best["step"]}
    assert load_checkpoint(eval_run.dir / "checkpoints" / "best.pt")["step"] == best["step"]
    generator = ganforge.load(eval_run.dir / "generator-best")
    assert generator.meta["step"] == best["step"] and generator.meta["eval"] == {"fid": best["eval/fid"]}
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = event_accumulator.EventAccumulator(str(eval_run.dir / "tensorboard"))
    events.Reload()
    assert {"eval/fid", "eval/precision", "train/d_loss"} <= set(events.Tags()["scalars"])
    assert [(e.step, e.value) for e in events.Scalars("eval/fid")] == [
        (r["step"], pytest.approx(r["eval/fid"], rel=1e-6)) for r in evals
    ]


def test_resume_with_evaluation_is_exact(eval_run, tmp_path):
    """10 steps + resume to 20 == the 20 steps of eval_run: weights, evaluations, best value and generator."""
    split = ganforge.train("dcgan-digits", out=tmp_path / "split", overrides={**EVAL_RUN, "train.steps": 10}).dir
    saved = load_checkpoint(split / "checkpoints" / "latest.pt")["eval_best"]
    assert saved["step"] == 10
    assert ganforge.Trainer(resume_config(split, {}), split, resume=True).best == saved  # restored as saved
    resumed = ganforge.train(resume=tmp_path / "split", overrides={"train.steps": 20, "eval.every": 10})
    a = load_checkpoint(eval_run.dir / "checkpoints" / "latest.pt")
    b = load_checkpoint(resumed.dir / "checkpoints" / "latest.pt")
    assert a["eval_best"] == b["eval_best"] and a["eval_best"]["key"] == "fid"
    for key, tensor in a["ema"].items():
        assert torch.equal(tensor, b["ema"][key]), key
    for key, tensor in a["recipe"]["networks"]["discriminator"].items():
        assert torch.equal(tensor, b["recipe"]["networks"]["discriminator"][key]), key
    evals = lambda run: [r for r in run.metrics() if "eval/fid" in r]  # noqa: E731
    assert evals(eval_run) == evals(resumed) and [r["step"] for r in evals(resumed)] == [10, 20]
    ga = load_file(str(eval_run.dir / "generator-best" / "model.safetensors"))
    gb = load_file(str(resumed.dir / "generator-best" / "model.safetensors"))
    assert all(torch.equal(ga[k], gb[k]) for k in ga)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "override, pattern",
    [
        ("eval.metrics=[fid, kdi]", r"unknown metric 'kdi' in eval.metrics; did you mean 'kid'\?"),
        ("eval.metrics=[]", r"'eval.metrics' must name at least one metric"),
        ("eval.every=-1", r"'eval.every' must be >= 0"),
        ("eval.n=1", r"'eval.n' must be >= 2"),
        ("eval.evry=5", r"unknown config key 'eval.evry'; did you mean 'every'\?"),
        ("eval.metrics=fid", r"'eval.metrics' must be a list"),
    ],
)
def test_eval_config_is_strict(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config("dcgan-digits", [override])


def test_eval_config_defaults_and_extractor_check():
    cfg = load_config("dcgan-digits", ["eval.every=100", "eval.extractor=test-proj"])
    assert cfg.eval.metrics == ["fid", "kid", "pr", "dc"] and cfg.eval.every == 100
    assert load_config("gan-ring8").eval.metrics == ["modes"]
    with pytest.raises(UserError, match=r"unknown feature extractor 'test-prj'; did you mean 'test-proj'\?"):
        load_config("dcgan-digits", ["eval.every=100", "eval.extractor=test-prj"])
    load_config("dcgan-digits", ["eval.extractor=not-yet-installed"])  # only checked when evaluation is on
    assert {"fid", "kid", "is", "pr", "dc", "modes"} <= set(METRICS.names())
    primaries = {m: Evaluator(torch.zeros(4, 2), [m]).primary for m in ("fid", "kid", "is", "pr", "dc", "modes")}
    assert primaries == {"fid": ("fid", False), "kid": ("kid_mean", False), "is": ("is_mean", True),
                         "pr": ("precision", True), "dc": ("density", True), "modes": ("modes", True)}


def test_image_folder_features_are_cached_by_their_pixels(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "real"
    folder.mkdir()
    for i, image in enumerate(digits[:30]):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:02d}.png")
    fake = digits[30:60]
    ProjectionExtractor.images_seen = 0
    first = evaluate(str(folder), fake, metrics=["fid"], **X)
    assert ProjectionExtractor.images_seen == 60
    (entry,) = (tmp_path / "cache" / "features").glob("folder-real-*.safetensors")
    ProjectionExtractor.images_seen = 0
    assert evaluate(str(folder), fake, metrics=["fid"], **X) == first
    assert ProjectionExtractor.images_seen == 30  # the folder's features came from the cache
    Image.fromarray(digits[40][0].numpy()).save(folder / "00.png")  # a changed image: its pixels differ, a new entry
    ProjectionExtractor.images_seen = 0
    evaluate(str(folder), fake, metrics=["fid"], **X)
    assert ProjectionExtractor.images_seen == 60 and len(list((tmp_path / "cache" / "features").glob("folder-*"))) == 2
