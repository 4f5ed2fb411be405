"""Shared pytest fixtures.

Tests run on small CPU budgets (2 threads), never write to the user's real cache
(``GANFORGE_CACHE`` points at a per-session temporary folder), and find the real data sets
in ``../shared/data`` next to the project (skipped with a reason where it is absent).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

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
