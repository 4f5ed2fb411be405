"""Runs killed with SIGKILL at any moment finish on ``--resume`` exactly as if never stopped (issue 16).

Child processes train a tiny ring8 run and die by SIGKILL at named points (``core.fault_point``, armed
through ``$GANFORGE_FAULT``): before the first checkpoint, between a temporary and its rename, between
``latest.pt`` and ``generator/`` (at the last step too), inside a folder swap, between the samples and the
report, and while ``--resume`` cuts the log back or repairs the outputs. A few more die from outside at
seeded moments. After every kill the checkpoints load with ``weights_only=True``, a copy of the run is
resumed to the end in this process, and it must match an uninterrupted run: ``latest.pt`` at the last
step, ``generator/`` holding its EMA weights under the right ``weights_id``, samples, report and log.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

import ganforge
from ganforge import cli
from ganforge.core import FAULT_ENV
from ganforge.models import load_generator, weights_hash
from ganforge.report import build_report
from ganforge.rundir import RunDir

STEPS = 12
#: Checkpoints at every 2nd step, samples at every 4th, evaluations (best.pt, generator-best/) at 6 and 12;
#: one thread (a tiny MLP gains nothing from two, and loses much on a busy machine).
SETTINGS = {
    "model.hidden_dim": 32, "train.steps": STEPS, "train.log_every": 2, "train.checkpoint_every": 2,
    "train.sample_every": 4, "eval.every": 6, "train.progress": False, "train.threads": 1,
}
SETS = ["--set", *(f"{k}={v}" for k, v in SETTINGS.items())]
TEMPORARY = re.compile(r"^\..+\.(tmp|old)-\d+")

#: One run killed again and again, each child resuming what the last one left:
#: (fault, step of latest.pt after the kill or None, temporary it leaves, relative to the run, or None).
CHAIN = [
    ("trainer:step:1", None, None),  # before the first checkpoint
    ("atomic-write:latest.pt:1", None, "checkpoints/.latest.tmp-{pid}.pt"),  # first latest.pt synced, not renamed
    ("trainer:checkpoint:1", 2, None),  # latest.pt at step 2, no generator/ at all
    ("atomic-swap:generator:1", 2, ".generator.tmp-{pid}"),  # --resume writing the missing generator/
    ("atomic-swap:generator:2", 4, ".generator.tmp-{pid}"),  # swapping in step 4's generator/
    ("atomic-write:best.pt:1", 4, "checkpoints/.best.tmp-{pid}.pt"),  # the evaluation at step 6
    ("atomic-swap:generator-best:1", 4, ".generator-best.tmp-{pid}"),  # best.pt at 6 written, generator-best/ not
    ("trainer:samples:1", 8, None),  # step 8's samples drawn, the report not yet
    ("atomic-write:report.html:1", 8, ".report.tmp-{pid}.html"),  # --resume redrawing step 8's report
    ("atomic-write:metrics.jsonl:1", 8, ".metrics.tmp-{pid}.jsonl"),  # --resume cutting the log back to step 8
    ("trainer:checkpoint:2", STEPS, None),  # the last step: latest.pt written, generator/ still step 10's
    ("atomic-swap:generator:1", STEPS, ".generator.tmp-{pid}"),  # --resume repairing that generator/
    ("atomic-write:report.html:1", STEPS, ".report.tmp-{pid}.html"),  # ... and redrawing the last report
]


@dataclass(frozen=True)
class Reference:
    """What the uninterrupted run ends with."""

    weights_id: str
    best_weights_id: str
    best_step: int
    logged_steps: list[int]


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    """The trainer sets torch's thread count (train.threads); the tests after these keep theirs."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, _session_cache: Path) -> Reference:
    with pytest.MonkeyPatch.context() as patch:  # module fixtures run before the autouse cache fixture
        patch.setenv("GANFORGE_CACHE", str(_session_cache))
        run = ganforge.train("gan-ring8", out=tmp_path_factory.mktemp("reference") / "run", overrides=SETTINGS)
    best = load_generator(run.best_generator_dir)
    return Reference(load_generator(run.generator_dir).meta["weights_id"], best.meta["weights_id"], best.meta["step"],
                     [r["step"] for r in run.metrics()])


#: Children are forked from a server that has imported ganforge once (a fresh interpreter would pay
#: seconds of imports per kill), before any torch thread pool exists.
_CHILDREN = multiprocessing.get_context("forkserver")
_CHILDREN.set_forkserver_preload(["torch._dynamo", "ganforge.cli", "ganforge.training", __name__])  # torch.optim imports dynamo


def _run_child(args: list[str], env: dict[str, str], log: str) -> None:
    """The child's body: ``ganforge ARGS`` in the environment ``env``, its output into the file ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.clear()
    os.environ.update(env)
    sys.exit(cli.main(args))


@dataclass
class Child:
    process: multiprocessing.process.BaseProcess
    log: Path

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def killed(self, what: str) -> None:
        """Wait for the end; it must be death by SIGKILL."""
        self.process.join(300)
        output = self.log.read_text()[-3000:] if self.log.exists() else ""
        assert self.process.exitcode == -signal.SIGKILL, f"{what}: exit {self.process.exitcode}, not killed\n{output}"


def _child(args: list[str], log: Path, fault: str | None = None) -> Child:
    """``ganforge ARGS`` in a child process, armed to kill itself at ``fault``."""
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    process = _CHILDREN.Process(target=_run_child, args=(args, env, str(log)))
    process.start()
    return Child(process, log)


def _temporaries(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob(".*") if TEMPORARY.match(p.name))


def _checkpoint_step(path: Path) -> int | None:
    """The step of a checkpoint, loaded the safe way; None when there is none."""
    if not path.exists():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def _resume_and_check(run_dir: Path, reference: Reference) -> None:
    """``ganforge train --resume RUN_DIR`` here, then the run must equal the uninterrupted one."""
    assert cli.main(["train", "--resume", str(run_dir)]) == 0
    run = RunDir(run_dir)
    assert _temporaries(run_dir) == []
    state = torch.load(run.latest_checkpoint, map_location="cpu", weights_only=True)
    assert state["step"] == STEPS
    generator = load_generator(run.generator_dir)
    weights = generator.state_dict()
    assert generator.meta["step"] == STEPS and generator.meta["weights_id"] == weights_hash(generator)
    assert weights.keys() == state["ema"].keys() and all(torch.equal(weights[k], state["ema"][k]) for k in weights)
    assert generator.meta["weights_id"] == reference.weights_id  # exact resume: the same weights as never stopped
    best = torch.load(run.best_checkpoint, map_location="cpu", weights_only=True)
    best_generator = load_generator(run.best_generator_dir)
    assert best["step"] == best_generator.meta["step"] == reference.best_step
    assert best_generator.meta["weights_id"] == reference.best_weights_id
    assert [p.name for p in run.sample_grids()] == [f"step-{s:06d}.png" for s in range(4, STEPS + 1, 4)]
    with Image.open(run.samples_path(STEPS)) as picture:
        assert picture.text["generator"] == reference.weights_id  # provenance names the weights in generator/
    assert run.report_path.read_text() == build_report(run_dir)  # the report shows the final state
    assert [r["step"] for r in run.metrics()] == reference.logged_steps


def test_a_run_killed_at_every_awkward_point_resumes_to_the_same_end(tmp_path, reference):
    """Thirteen SIGKILLs in a row; after each one a copy of the run resumes to the uninterrupted result."""
    run_dir = tmp_path / "run"
    for i, (fault, step, temporary) in enumerate(CHAIN):
        args = ["train", "gan-ring8", "--out", str(run_dir), *SETS] if i == 0 else ["train", "--resume", str(run_dir)]
        logged = RunDir(run_dir).metrics()
        proc = _child(args, tmp_path / f"kill-{i}.log", fault)
        proc.killed(fault)
        what = f"kill {i} at {fault}"
        assert _checkpoint_step(run_dir / "checkpoints" / "latest.pt") == step, what
        _checkpoint_step(run_dir / "checkpoints" / "best.pt")  # loads, where there is one
        left = [temporary.format(pid=proc.pid)] if temporary else []
        assert _temporaries(run_dir) == left, what  # the next start removed the last child's leftovers
        if fault.startswith("atomic-write:metrics.jsonl"):
            assert RunDir(run_dir).metrics() == logged, what  # cutting the log back is all or nothing
        _resume_and_check(Path(shutil.copytree(run_dir, tmp_path / f"resumed-{i}")), reference)
    _resume_and_check(run_dir, reference)


def test_runs_killed_at_seeded_moments_resume_to_the_same_end(tmp_path, reference):
    """SIGKILL from outside, at moments drawn from a seeded generator (where it lands does not matter)."""
    rng = random.Random(16)
    for i in range(3):
        run_dir = tmp_path / f"run-{i}"
        proc = _child(["train", "gan-ring8", "--out", str(run_dir), *SETS], tmp_path / f"kill-{i}.log")
        while not (run_dir / "config.yaml").exists() and proc.process.is_alive():  # training is about to start
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.process.kill()
        proc.process.join(300)
        _checkpoint_step(run_dir / "checkpoints" / "latest.pt")
        _checkpoint_step(run_dir / "checkpoints" / "best.pt")
        _resume_and_check(run_dir, reference)


def test_a_run_killed_writing_its_config_starts_again_in_the_same_folder(tmp_path, reference):
    """Killed before config.yaml had its name: the folder holds only a dead temporary, which a new start removes."""
    run_dir = tmp_path / "run"
    proc = _child(["train", "gan-ring8", "--out", str(run_dir), *SETS], tmp_path / "kill.log", "atomic-write:config.yaml:1")
    proc.killed("atomic-write:config.yaml")
    assert _temporaries(run_dir) == [f".config.tmp-{proc.pid}.yaml"]
    assert cli.main(["train", "gan-ring8", "--out", str(run_dir), *SETS]) == 0
    _resume_and_check(run_dir, reference)
