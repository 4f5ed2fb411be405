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


def train_once(preset: str, run_dir: Path, overrides: dict[str, Any], reuse: bool) -> float | None:
    """Train ``preset`` into ``run_dir`` and return the seconds it took (kept in ``run_dir/train_seconds.txt``).

    With ``reuse``, a finished run (its generator saved at the config's last step) is kept as
    it is, and an interrupted one is resumed from its last checkpoint (its time is then not
    known: None).
    """
    import time

    import ganforge
    from ganforge.validate import load_config

    timing = run_dir / "train_seconds.txt"
    if reuse and (run_dir / "config.yaml").is_file():
        target = load_config(run_dir / "config.yaml").train.steps
        done = (run_dir / "generator" / "config.json").is_file() and ganforge.load(run_dir).meta.get("step") == target
        if not done:
            timing.unlink(missing_ok=True)
            ganforge.train(resume=run_dir, overrides={"train.threads": overrides.get("train.threads")})
        return float(timing.read_text()) if timing.is_file() else None
    start = time.perf_counter()
    ganforge.train(preset, out=run_dir, overrides=overrides)
    seconds = time.perf_counter() - start
    timing.write_text(f"{seconds:.1f}\n")
    return seconds


def mean_sd(rows: Sequence[dict[str, Any]], key: str, fmt: str) -> str:
    """A table cell: the mean of ``rows[i][key]`` (``± std`` over several rows), ``-`` where no row has it."""
    import statistics

    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "-"
    text = format(statistics.mean(values), fmt)
    return f"{text} ± {format(statistics.stdev(values), fmt)}" if len(values) > 1 else text
