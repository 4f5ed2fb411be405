"""Shared pytest fixtures.

Tests run on small CPU budgets (one torch thread each, ``tiny_configs.THREADS``; one pytest-xdist
worker per core), never write to the user's real cache (``GANFORGE_CACHE`` points at a per-session
temporary folder), and find the real data sets in ``../shared/data`` next to the project (skipped with a reason where it is absent).

The tiny runs of ``tiny_configs.TINY_RUNS`` are trained once per session, on first use, and
shared read-only by every module that needs "some trained run": a test that changes a run
directory works on ``run_copy(run)``; a changed shared run fails the session at its end.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import ganforge
from tiny_configs import THREADS, TINY_RUNS

torch.set_num_threads(THREADS)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data copies (``../shared/data`` relative to the repository root)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is missing (copies of public data sets, never in the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ganforge-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(_session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep decode caches and downloads out of ``~/.cache`` (shared within the session)."""
    monkeypatch.setenv("GANFORGE_CACHE", str(_session_cache))


# --------------------------------------------------------------------------- shared tiny runs


def _fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


TONES = {"low": 220.0, "mid": 660.0, "high": 1980.0}  # Hz: the classes of tone_folder


def write_tones(folder: Path, per_class: int = 24, rate: int = 8000, length: int = 2048, seed: int = 0) -> Path:
    """``folder/<class>/<i>.wav``: sine tones of each :data:`TONES` frequency, random phase, loudness and onset."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(length) / rate
    for name, hz in TONES.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            onset = rng.integers(0, length // 4)
            wave = rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)) * (np.arange(length) >= onset)
            sf.write(folder / name / f"{i:02d}.wav", wave.astype(np.float32), rate, subtype="PCM_16")
    return folder


@pytest.fixture(scope="session")
def tone_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled audio folder (``audio-folder`` data): 3 classes x 24 tones of 2,048 samples at 8 kHz. Read-only."""
    return write_tones(tmp_path_factory.mktemp("tones"))


def write_table(path: Path, rows: int = 200, seed: int = 0) -> Path:
    """A CSV of ``rows`` rows of each column kind: ``age``, ``income`` (continuous; a tenth of the incomes missing),
    ``visits`` (discrete), ``joined`` (date), ``smoker`` (boolean), ``city`` (categorical; a name holds a comma)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    income = np.round(rng.lognormal(10, 0.5, rows), 2)
    table = pd.DataFrame({
        "age": np.round(rng.normal(45, 12, rows), 1), "income": np.where(rng.random(rows) < 0.1, np.nan, income),
        "visits": rng.integers(0, 60, rows),
        "joined": (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, rows), unit="D")).strftime("%Y-%m-%d"),
        "smoker": rng.random(rows) < 0.3, "city": rng.choice(["Paris", "Lyon", "Washington, D.C."], rows),
    })
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def table_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small table of every column kind (:func:`write_table`: 200 rows, 6 columns) as a CSV file. Read-only."""
    return write_table(tmp_path_factory.mktemp("table") / "people.csv")


@pytest.fixture(scope="session")
def _tiny_runs(tmp_path_factory: pytest.TempPathFactory, _session_cache: Path,
               request: pytest.FixtureRequest) -> Iterator[Callable[[str], ganforge.Run]]:
    """``get(name)``: the run ``TINY_RUNS[name]``, trained on the first call of the session.

    An override value ``"{fixture}"`` is replaced by the path of that session fixture (``{tone_folder}``).
    """
    root = tmp_path_factory.mktemp("tiny-runs")
    runs, prints = {}, {}

    def get(name: str) -> ganforge.Run:
        if name not in runs:
            preset, overrides = TINY_RUNS[name]
            overrides = {k: str(request.getfixturevalue(v[1:-1])) if isinstance(v, str) and v.startswith("{") else v
                         for k, v in overrides.items()}
            with pytest.MonkeyPatch.context() as patch:  # session fixtures run before the autouse cache fixture
                patch.setenv("GANFORGE_CACHE", str(_session_cache))
                runs[name] = ganforge.train(preset, out=root / preset, overrides=overrides)  # named as its preset
            prints[name] = _fingerprint(runs[name].dir)
        return runs[name]

    yield get
    changed = [name for name, run in runs.items() if _fingerprint(run.dir) != prints[name]]
    assert not changed, f"tests changed the shared tiny runs {changed}: work on run_copy(run) instead"


@pytest.fixture(scope="session")
def tiny_dcgan_run(_tiny_runs: Callable[[str], ganforge.Run]) -> ganforge.Run:
    """An unconditional DCGAN on the digits (``TINY_DIGITS``, 20 steps), shared: do not change it."""
    return _tiny_runs("dcgan")


@pytest.fixture(scope="session")
def tiny_cdcgan_run(_tiny_runs: Callable[[str], ganforge.Run]) -> ganforge.Run:
    """A conditional DCGAN on the digits (``TINY_DIGITS``, 20 steps), shared: do not change it."""
    return _tiny_runs("cdcgan")


@pytest.fixture(scope="session")
def tiny_ring8_run(_tiny_runs: Callable[[str], ganforge.Run]) -> ganforge.Run:
    """The ``gan-ring8`` preset for 10 steps (hidden 32; evaluated at step 10), shared: do not change it."""
    return _tiny_runs("ring8")


@pytest.fixture(scope="session")
def tiny_audio_run(_tiny_runs: Callable[[str], ganforge.Run]) -> ganforge.Run:
    """A conditional SpecGAN on ``tone_folder`` (``TINY_RUNS["cspecgan"]``, 20 steps), shared: do not change it."""
    return _tiny_runs("cspecgan")


@pytest.fixture(scope="session")
def tiny_table_run(_tiny_runs: Callable[[str], ganforge.Run]) -> ganforge.Run:
    """A CTGAN on ``table_csv`` (``TINY_RUNS["ctgan"]``, 20 steps), shared: do not change it."""
    return _tiny_runs("ctgan")


@pytest.fixture(scope="session")
def tiny_video_run(_tiny_runs: Callable[[str], ganforge.Run]) -> ganforge.Run:
    """A conditional MoCoGAN on moving digits (``TINY_RUNS["cmocogan"]``: 16x16, 8 frames, 20 steps), shared: do not change it."""
    return _tiny_runs("cmocogan")


@pytest.fixture
def run_copy(tmp_path: Path) -> Callable[[object], Path]:
    """``run_copy(run)``: a private copy of a run directory (a ``Run`` or a path) under ``tmp_path``."""

    def copy(run: object) -> Path:
        source = Path(getattr(run, "dir", run))
        return Path(shutil.copytree(source, tmp_path / "run-copies" / source.name))

    return copy
