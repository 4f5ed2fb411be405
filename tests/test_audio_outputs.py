"""Outputs of audio runs a person can hear: WAV files from ``ganforge sample``, the trainer's previews,
``report.html``, ``ganforge synthesize``; deterministic, with provenance read back.

The run is the session's ``tiny_audio_run``: a conditional SpecGAN on conftest's ``tone_folder``
(classes high, low, mid; clips of 2,048 samples at 8 kHz), 20 steps with previews at 10 and 20.
What it learned does not matter here; the files around it do.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

import ganforge
from ganforge.audio import GAP_SECONDS, read_provenance
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import create as create_dataset
from ganforge.report import build_report

RATE, LENGTH = 8000, 2048
GAP = int(GAP_SECONDS * RATE)  # 2,000 samples of silence between clips
CLASSES = ["high", "low", "mid"]


@pytest.fixture(scope="module")
def run(tiny_audio_run) -> Path:
    return tiny_audio_run.dir


@pytest.fixture(scope="module")
def generator(run):
    return ganforge.load(run)


def read(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(str(path), dtype="float32")
    return samples, rate


def sample(run: Path, out: Path | str, *args: str) -> None:
    assert main(["sample", str(run), *args, "--out", str(out)]) == 0


# --------------------------------------------------------------------------- ganforge sample


def test_sampling_a_folder_is_deterministic(run, tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((first, "3"), (second, "3"), (other, "4")):
        sample(run, f"{out}/", "--n", "4", "--seed", seed)
    names = ["000.wav", "001.wav", "002.wav", "003.wav", "spectrograms.png"]
    assert sorted(p.name for p in first.iterdir()) == names
    for name in names:  # same seed, same bytes; another seed, other clips
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert all((first / n).read_bytes() != (other / n).read_bytes() for n in names[:4])
    for name in names[:4]:
        samples, rate = read(first / name)
        assert rate == RATE and samples.shape == (LENGTH,) and np.isfinite(samples).all() and np.abs(samples).max() > 0


def test_wav_provenance_is_read_back(run, generator, tmp_path):
    sample(run, f"{tmp_path}/", "--n", "4", "--seed", "3")
    for i in range(4):
        fields = read_provenance(tmp_path / f"{i:03d}.wav")
        assert fields["synthetic"] == "true" and fields["generator"] == generator.meta["weights_id"]
        assert fields["seed"] == "3" and fields["index"] == str(i) and fields["sample_rate"] == str(RATE)
        assert fields["run"] == "cspecgan-fsdd" and fields["label"] == ""  # classes cycle without --label
    picture = Image.open(tmp_path / "spectrograms.png")
    assert picture.text["synthetic"] == "true" and picture.text["sample_rate"] == str(RATE)
    assert picture.mode == "RGB" and picture.width > 0
    real = tmp_path / "real.wav"
    soundfile.write(real, np.zeros(100, np.float32), RATE)
    assert read_provenance(real) == {}  # a WAV ganforge did not write has none


def test_one_wav_holds_the_clips_with_silence_between(run, generator, tmp_path):
    n = 4
    out = tmp_path / "clips.wav"
    sample(run, out, "--n", str(n), "--seed", "3")
    samples, rate = read(out)
    assert rate == RATE and len(samples) == n * LENGTH + (n - 1) * GAP
    expected = generator.sample(n, seed=3)[:, 0].numpy()  # classes cycle: high, low, mid, high
    for i in range(n):
        start = i * (LENGTH + GAP)
        assert np.abs(samples[start : start + LENGTH] - expected[i]).max() <= 1 / 32768 + 1e-6  # 16-bit rounding
        if i < n - 1:
            assert not samples[start + LENGTH : start + LENGTH + GAP].any()  # silence in the gap
    fields = read_provenance(out)
    assert fields["clips"] == str(n) and fields["seed"] == "3" and fields["synthetic"] == "true"
    assert fields["sample_rate"] == str(RATE)
    # the same clips as the folder of single files
    sample(run, f"{tmp_path}/single/", "--n", str(n), "--seed", "3")
    assert np.array_equal(samples[:LENGTH], read(tmp_path / "single" / "000.wav")[0])


def test_label_by_name_or_index(run, generator, tmp_path):
    by_name, by_index = tmp_path / "name.wav", tmp_path / "index.wav"
    sample(run, by_name, "--n", "2", "--seed", "5", "--label", "low")
    sample(run, by_index, "--n", "2", "--seed", "5", "--label", "1")
    assert by_name.read_bytes() == by_index.read_bytes()
    assert read_provenance(by_name)["label"] == "1"  # class index 1: 'low'
    assert generator.meta["class_names"] == CLASSES
    samples, _ = read(by_name)
    expected = generator.sample(2, seed=5, labels=1)[:, 0].numpy()
    assert np.abs(samples[:LENGTH] - expected[0]).max() <= 1 / 32768 + 1e-6
    other = tmp_path / "mid.wav"
    sample(run, other, "--n", "2", "--seed", "5", "--label", "mid")
    assert other.read_bytes() != by_name.read_bytes() and read_provenance(other)["label"] == "2"
    assert main(["sample", str(run), "--n", "2", "--label", "loud", "--out", str(tmp_path / "x.wav")]) == 2
    assert not (tmp_path / "x.wav").exists()


# --------------------------------------------------------------------------- the trainer's previews, report.html


def test_the_trainer_writes_a_playable_file_beside_each_preview(run):
    pictures = sorted((run / "samples").glob("step-*.png"))
    sounds = sorted((run / "samples").glob("step-*.wav"))
    assert [p.stem for p in pictures] == [p.stem for p in sounds] == ["step-000010", "step-000020"]
    for path in sounds:
        samples, rate = read(path)
        assert rate == RATE and len(samples) == 6 * LENGTH + 5 * GAP  # train.sample_count 6
        fields = read_provenance(path)
        assert fields["clips"] == "6" and fields["step"] == str(int(path.stem[5:])) and fields["seed"] == "fixed:0"
        assert fields["synthetic"] == "true" and fields["sample_rate"] == str(RATE)
        assert Image.open(path.with_suffix(".png")).text["sample_rate"] == str(RATE)


def test_report_plays_the_clips_over_training(run, run_copy):
    page = (run / "report.html").read_text()
    assert not re.search(r'(src|href)="(?!data:)', page)  # still self-contained
    players = re.findall(r'<audio controls[^>]*src="data:audio/wav;base64,([^"]+)"', page)
    sounds = sorted((run / "samples").glob("step-*.wav"))
    assert len(players) == len(sounds) == 2 and page.count("<img ") == 2  # a picture and a player per step
    for encoded, path in zip(players, sounds):
        data = base64.b64decode(encoded)
        assert data == path.read_bytes()
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")  # decodes as WAV
        assert rate == RATE and len(samples) == 6 * LENGTH + 5 * GAP
    assert "Spectrograms of the same fixed inputs" in page
    # rebuilt by hand (the modality read from generator/), the same page
    copy = run_copy(run)
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").read_text().count('<audio controls') == 2
    # a preview without its sound (an older run) is shown without a player
    (copy / "samples" / "step-000010.wav").unlink()
    assert build_report(copy).count("<audio") == 1


# --------------------------------------------------------------------------- ganforge synthesize


def test_synthesize_writes_a_labelled_folder_that_audio_folder_reads(run, generator, tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synthesize", str(run), "--per-class", "3", "--out", str(out), "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert "plan: 3 classes, 9 clips" in printed and "wrote 9 clips" in printed
    assert sorted(p.name for p in out.iterdir()) == sorted([*CLASSES, "manifest.json"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "wav" and manifest["counts"] == {name: 3 for name in CLASSES}
    files = sorted(out.rglob("*.wav"))
    assert len(files) == 9 and not list(out.rglob("*.png"))
    for path in files:
        fields = read_provenance(path)
        assert fields["class"] == path.parent.name and fields["label"] == str(CLASSES.index(path.parent.name))
        assert fields["synthetic"] == "true" and fields["generator"] == generator.meta["weights_id"]
        assert fields["sample_rate"] == str(RATE) and path.stem == f"{int(fields['index']):06d}"
        samples, rate = read(path)  # each file is Generator.sample(1, its seed, its label)
        expected = generator.sample(1, seed=int(fields["seed"]), labels=int(fields["label"]))[0, 0].numpy()
        # up to rounding to 16 bits (half a step) and float32 sums in a batch of 9 against one of 1
        # (Griffin-Lim's iterations amplify those): within two steps of 1/32768
        assert rate == RATE and np.abs(samples - expected).max() <= 2 / 32768, np.abs(samples - expected).max() * 32768

    data = create_dataset(DataConfig(name="audio-folder", root=str(out), sample_rate=RATE, length=LENGTH))
    assert data.modality == "audio" and data.class_names == CLASSES and data.data.shape == (9, 1, LENGTH)
    assert torch.bincount(data.labels).tolist() == [3, 3, 3]
    synthesized = {read(p)[0].tobytes(): CLASSES.index(p.parent.name) for p in files}
    for clip, label in zip(data.data, data.labels):  # every clip back under its own label
        assert synthesized[clip[0].numpy().tobytes()] == int(label)


def test_synthesize_balances_an_audio_folder(run, tone_folder, tmp_path, capsys):
    real = tmp_path / "real"
    for name, count in (("high", 3), ("low", 1)):
        (real / name).mkdir(parents=True)
        for i in range(count):
            (real / name / f"{i}.wav").write_bytes((tone_folder / name / f"{i:02d}.wav").read_bytes())
    assert main(["synthesize", str(run), "--balance", str(real), "--out", str(tmp_path / "top-up")]) == 0
    assert "high  3 + 0 = 3" in capsys.readouterr().out
    counts = {p.name: len(list(p.glob("*.wav"))) for p in (tmp_path / "top-up").iterdir() if p.is_dir()}
    assert counts == {"low": 2, "mid": 3}


def test_synthesize_refuses_another_format(run, tmp_path, capsys):
    out = tmp_path / "png"
    assert main(["synthesize", str(run), "--n", "2", "--format", "png", "--out", str(out)]) == 2
    assert "--format png: this generator's clips are written as wav files" in capsys.readouterr().err
    assert not out.exists()
    assert main(["synthesize", str(run), "--n", "2", "--format", "wav", "--out", str(out)]) == 0
    assert len(list(out.rglob("*.wav"))) == 2
