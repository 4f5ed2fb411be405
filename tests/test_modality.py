"""The modality seam: a kind of data defined entirely inside this test trains, samples and
evaluates through the public API and the CLI, with no edit of the trainer, the CLI's command
functions or the serve app.

The modality is 1-D signals (sine waves of two frequencies), written as ``.npy`` arrays and as
line plots. The diff that adds it to ganforge itself is shown in ``docs/architecture.md``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import ganforge
from ganforge import modality as modalities
from ganforge.cli import main
from ganforge.data import DATASETS, Dataset
from ganforge.modality import Modality, write_npy, write_png
from tiny_configs import THREADS

LENGTH = 32
FREQUENCIES = (1.0, 3.0)  # cycles per signal, one per class


def sine_waves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sines ``[n, LENGTH]`` with a random phase, amplitude 0.8, and their class (frequency)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(FREQUENCIES), (n,), generator=g)
    phase = torch.rand(n, 1, generator=g) * 2 * math.pi
    t = torch.arange(LENGTH) / LENGTH
    freq = torch.tensor(FREQUENCIES)[labels][:, None]
    return 0.8 * torch.sin(2 * math.pi * freq * t + phase), labels


class SignalModality(Modality):
    """1-D signals ``[L]`` in [-1, 1]: their own features (flattened)."""

    name = "signal-test"
    description = "1-D signals [L] (test modality)"
    default_metrics = ("fid",)
    extractor = None
    writers = {".npy": write_npy, ".png": write_png}  # the shared writers; .png is the preview below
    preview_caption = "line plots"

    def check(self, data, what):
        if data.dim() != 2 or not data.is_floating_point():
            raise ganforge.UserError(f"{what}: signals must be float [N, L]")

    def preview(self, samples, *, nrow=None, reference=None):
        rows = samples[:16].float()
        image = Image.new("RGB", (256, 24 * len(rows)), "white")
        draw = ImageDraw.Draw(image)
        for i, row in enumerate(rows):
            xs = torch.linspace(0, 255, len(row))
            ys = 24 * i + 12 - 10 * row.clamp(-1, 1)
            draw.line(list(zip(xs.tolist(), ys.tolist())), fill=(31, 119, 180))
        return image


@pytest.fixture(scope="module")
def signal_kind():
    """Register the modality and a data set of it for this module only."""
    modalities.register(SignalModality())

    @DATASETS.register("sines-test", help="sine waves of two frequencies (test modality)")
    def sines(*, root, split, resolution, channels, download):
        data, labels = sine_waves(2048, seed=0 if split == "train" else 1)
        return Dataset("sines-test", data, labels, ["slow", "fast"], modality="signal-test")

    yield
    DATASETS.remove("sines-test")
    modalities.MODALITIES.remove("signal-test")


CONFIG = {
    "name": "sines",
    "data": {"name": "sines-test"},
    "model": {"name": "mlp", "conditional": True, "latent_dim": 8, "hidden_dim": 128, "num_layers": 3},
    "optim": {"g_lr": 1e-3, "d_lr": 1e-3, "g_betas": [0.5, 0.99], "d_betas": [0.5, 0.99]},
    "train": {"steps": 800, "batch_size": 64, "seed": 0, "threads": THREADS, "ema_decay": 0.99, "progress": False,
              "log_every": 100, "sample_every": 400, "checkpoint_every": 400, "sample_count": 16},
    "eval": {"metrics": ["fid"], "n": 1000},
}


@pytest.fixture(scope="module")
def signal_run(signal_kind, tmp_path_factory):
    torch.manual_seed(0)
    return ganforge.train(CONFIG, out=tmp_path_factory.mktemp("sines") / "run")


def test_a_modality_defined_outside_ganforge_trains_and_is_recorded(signal_run):
    generator = ganforge.load(signal_run.dir)
    assert generator.meta["modality"] == "signal-test"
    assert modalities.of(generator).name == "signal-test"
    # the trainer's previews are the modality's line plots (256 px wide, 16 rows of 24 px)
    preview = Image.open(signal_run.latest_samples)
    assert preview.size == (256, 16 * 24)
    assert "line plots of the same fixed inputs" in (signal_run.dir / "report.html").read_text().lower()


def _spectral_share(samples: torch.Tensor) -> float:
    """Share of the (non-DC) energy at the two training frequencies: 1.0 for the real data."""
    spectrum = torch.fft.rfft(samples, dim=1).abs().pow(2).mean(0)
    return float(spectrum[[1, 3]].sum() / spectrum[1:].sum())


def test_it_learned_the_signals(signal_run):
    """The trained generator makes sines of the asked-for frequency; its start made none."""
    untrained = ganforge.train({**CONFIG, "train": {**CONFIG["train"], "steps": 1}}, out=signal_run.dir.parent / "u")
    before, after = (ganforge.load(r.dir).sample(512, seed=1) for r in (untrained, signal_run))
    assert _spectral_share(before) < 0.5 < 0.9 < _spectral_share(after), (_spectral_share(before), _spectral_share(after))
    # the label is obeyed: class i's samples peak at FREQUENCIES[i] (sample() cycles the classes)
    dominant = torch.fft.rfft(after, dim=1).abs()[:, 1:].argmax(dim=1) + 1
    wanted = torch.tensor(FREQUENCIES).long()[torch.arange(512) % 2]
    assert float((dominant == wanted).float().mean()) > 0.9
    # scored through the public API with the modality's own features (the signals themselves)
    trained, start = ganforge.evaluate_run(signal_run.dir), ganforge.evaluate_run(untrained.dir)
    assert trained["extractor"] == "identity" and trained["n_fake"] == 1000
    assert trained["fid"] < start["fid"]


def test_cli_samples_and_evaluates_the_new_modality(signal_run, tmp_path, capsys):
    assert main(["sample", str(signal_run.dir), "--n", "8", "--out", str(tmp_path / "s.npy")]) == 0
    array = np.load(tmp_path / "s.npy")
    assert array.shape == (8, LENGTH) and np.abs(array).max() <= 1.5
    assert main(["sample", str(signal_run.dir), "--n", "8", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size == (256, 8 * 24)
    capsys.readouterr()
    assert main(["sample", str(signal_run.dir), "--out", str(tmp_path / "s.gif")]) == 2
    assert "--out must end in .npy or .png for signal-test samples" in capsys.readouterr().err
    assert main(["eval", str(signal_run.dir), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "fid" in out and "identity" in out
    assert main(["data"]) == 0
    assert "sines-test" in capsys.readouterr().out
