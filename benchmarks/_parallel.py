"""Run many independent training runs of a study at once, saving figures as they finish."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any


def run_all(fn: Callable[..., dict[str, Any]], runs: Sequence[tuple], jobs: int, json_path: Path | None,
            describe: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """``fn(*run, tmp_dir)`` for every run in ``jobs`` spawned processes (fn must be picklable).

    Each result is printed with ``describe`` and the list so far rewritten to ``json_path``
    as soon as a run finishes, so a study cut short keeps what it measured.
    """
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *run, Path(tmp)) for run in runs]
        for future in as_completed(futures):
            results.append(future.result())
            print(describe(results[-1]), flush=True)
            if json_path:
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps(results, indent=1))
    return results
