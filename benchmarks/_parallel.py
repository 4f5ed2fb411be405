"""Run many independent training runs of a study at once, saving figures as they finish."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

#: Overrides that change how a run is executed, not what it learns (left out of its identity).
EXECUTION_KEYS = ("train.threads", "train.progress", "data.root")


def run_key(preset: str, seed: int, overrides: dict[str, Any]) -> str:
    """``preset/seedN/DIGEST``: DIGEST hashes the resolved config's values that differ from ganforge's
    defaults, so a measured run is reused only while its preset (and the study's overrides) stay the
    same, and a new config key added with a default does not orphan earlier measurements."""
    from ganforge.config import Config
    from ganforge.validate import load_config

    config = load_config(preset, {k: v for k, v in overrides.items() if k not in EXECUTION_KEYS}).to_dict()
    changed = _differences(config, Config().to_dict())
    digest = hashlib.sha256(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{preset}/seed{seed}/{digest}"


def _differences(config: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``config`` (nested dicts) whose values differ from ``default``'s."""
    out = {}
    for key, value in config.items():
        base = default.get(key)
        if isinstance(value, dict) and isinstance(base, dict):
            inner = _differences(value, base)
            if inner:
                out[key] = inner
        elif value != base:
            out[key] = value
    return out


def study_overrides(preset: str, seed: int, threads: int, root: str, steps: int | None) -> dict[str, Any]:
    """What a study sets on top of a preset: the data, the seed, and ``--steps`` for quick looks only."""
    overrides: dict[str, Any] = {"data.root": root, "train.seed": seed, "train.threads": threads,
                                 "train.progress": False, "eval.every": 0}
    if steps:
        overrides["train.steps"] = steps
    return overrides


def study_run(preset: str, seed: int, threads: int, root: str, steps: int | None, reuse: bool, runs_dir: str | None,
              tmp: Path, *, train: bool = True) -> tuple[Path, dict[str, Any], float | None]:
    """A study's run of ``preset`` at ``seed`` trained in this process (``train_once``; with ``train=False`` only
    located): its folder (``runs_dir`` or ``tmp``), the overrides it trains with, and its training seconds."""
    import torch

    torch.set_num_threads(threads)
    run_dir = Path(runs_dir or tmp) / f"{preset}-seed{seed}"
    overrides = study_overrides(preset, seed, threads, root, steps)
    return run_dir, overrides, train_once(preset, run_dir, overrides, reuse) if train else None


def study_key(preset: str, seed: int, threads: int, root: str, n: int, steps: int | None, *_: Any) -> str:
    """``run_key`` of a study's run tuple ``(preset, seed, threads, root, n, steps, ...)``."""
    return run_key(preset, seed, study_overrides(preset, seed, threads, root, steps))


def measured(json_path: Path | None) -> dict[str, list[dict[str, Any]]]:
    """Rows of an earlier study's JSON grouped by their ``run`` key (rows without one, such as baselines, dropped)."""
    if json_path is None or not json_path.is_file():
        return {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in json.loads(json_path.read_text()):
        if row.get("run"):
            groups.setdefault(row["run"], []).append(row)
    return groups


def run_all(fn: Callable[..., list[dict[str, Any]]], runs: Sequence[tuple], jobs: int, json_path: Path | None,
            describe: Callable[[list[dict[str, Any]]], str],
            key: Callable[..., str] | None = None, keep: dict[str, list[dict[str, Any]]] | None = None
            ) -> list[dict[str, Any]]:
    """``fn(*run, tmp_dir)`` for every run in ``jobs`` spawned processes (fn must be picklable).

    ``fn`` returns the run's rows, each tagged ``run: key(*run)`` (see :func:`run_key`). Runs whose key
    is in ``keep`` (rows measured by an earlier, interrupted study: ``measured(json_path)``) are
    not trained again, so a study spread over several sessions adds up. Each run's rows are
    printed with ``describe`` and everything so far rewritten to ``json_path`` as soon as a run
    finishes, so a study cut short keeps what it measured. Rows of ``keep`` for presets that ``runs``
    does not train (a study run again with ``--presets`` naming some of them) are kept as they are.
    """
    keep = keep or {}
    training = {run[0] for run in runs}
    results = [row for key_rows in keep.values() for row in key_rows if row["run"].split("/")[0] not in training]
    todo = []
    for run in runs:
        rows = keep.get(key(*run)) if key else None
        if rows:
            results += rows
            print(describe(rows) + "  (measured before)", flush=True)
        else:
            todo.append(run)
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(max(1, jobs), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *run, Path(tmp)) for run in todo]
        for future in as_completed(futures):
            rows = future.result()
            results += rows
            print(describe(rows), flush=True)
            if json_path:
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps(results, indent=1))
    return results


def train_once(preset: str, run_dir: Path, overrides: dict[str, Any], reuse: bool) -> float | None:
    """Train ``preset`` into ``run_dir`` and return the seconds it took (kept in ``run_dir/train_seconds.txt``).

    With ``reuse``, a finished run (its generator saved at the study's last step) is kept as
    it is, and an interrupted one, or one the preset now trains for longer, is resumed from its
    last checkpoint to the preset's step count (its time is then not known: None).
    """
    import time

    import ganforge
    from ganforge.validate import load_config

    timing = run_dir / "train_seconds.txt"
    if reuse and (run_dir / "config.yaml").is_file():
        target = load_config(preset, {k: v for k, v in overrides.items() if k not in EXECUTION_KEYS}).train.steps
        done = (run_dir / "generator" / "config.json").is_file() and ganforge.load(run_dir).meta.get("step") == target
        if not done:
            timing.unlink(missing_ok=True)
            ganforge.train(resume=run_dir, overrides={"train.threads": overrides.get("train.threads"), "train.steps": target})
        return float(timing.read_text()) if timing.is_file() else None
    start = time.perf_counter()
    ganforge.train(preset, out=run_dir, overrides=overrides)
    seconds = time.perf_counter() - start
    timing.write_text(f"{seconds:.1f}\n")
    return seconds


def study_arguments(parser: Any, presets: Sequence[str], samples: str) -> None:
    """The arguments every study shares: presets, seeds, ``--n`` (``samples`` names what is drawn), threads, jobs,
    steps, the runs folder, ``--reuse`` and ``--json``."""
    parser.add_argument("--presets", default=",".join(presets))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n", type=int, default=1000, help=f"{samples} per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    parser.add_argument("--steps", type=int, default=None, help="override the presets' step counts (quick looks only)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep finished runs of --runs-dir, resume interrupted ones, keep rows of --json with the same config")
    parser.add_argument("--json", type=Path, default=None)


def mean_sd(rows: Sequence[dict[str, Any]], key: str, fmt: str) -> str:
    """A table cell: the mean of ``rows[i][key]`` (``± std`` over several rows), ``-`` where no row has it."""
    import statistics

    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "-"
    text = format(statistics.mean(values), fmt)
    return f"{text} ± {format(statistics.stdev(values), fmt)}" if len(values) > 1 else text
