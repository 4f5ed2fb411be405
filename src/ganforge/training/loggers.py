"""Experiment trackers the trainer logs to (``train.loggers``): TensorBoard, Weights & Biases, MLflow.

``metrics.jsonl`` in the run directory is always written: it is the run's own record (resume cuts
it back to the checkpoint's step), so ``jsonl`` in the list is accepted and changes nothing. Every
other logger receives the same records, one per log line and evaluation (the keys of
``metrics.jsonl``, at the same step), the sample grids as images, and the config once:

* ``tensorboard``: event files in ``RUN/tensorboard`` (``pip install tensorboard``; also
  ``train.tensorboard: true``), scalars tagged ``train/...`` and ``eval/...``;
* ``wandb``: a Weights & Biases run (``pip install wandb``) named after the run, in ``RUN/wandb``;
  its id is kept in ``RUN/wandb_id.txt`` so a resumed run continues the same W&B run.
  ``WANDB_MODE=offline`` logs without a network (``wandb sync`` uploads later);
* ``mlflow``: an MLflow run (``pip install mlflow-skinny``) in ``$MLFLOW_TRACKING_URI``, by
  default the file store ``RUN/mlruns`` (opted into with ``MLFLOW_ALLOW_FILE_STORE=true``, which
  MLflow 3 asks for); its id is kept in ``RUN/mlflow_id.txt`` for resumes.

A logger is a class registered in :data:`LOGGERS`; the trainer calls :meth:`Logger.open`,
:meth:`Logger.record`, :meth:`Logger.image` and :meth:`Logger.close` and knows no tracker.
"""

from __future__ import annotations

import importlib.util
import os
import re
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..config import Config
from ..core import atomic_write_text
from ..errors import ConfigError
from ..registry import Registry
from ..rundir import RunDir


class Logger:
    """Base class: a tracker that receives a run's records (all methods no-ops here)."""

    def open(self, run_dir: Path, config: Config, step: int) -> None:
        """Start (or, with ``step`` > 0, continue) logging the run in ``run_dir`` with ``config``."""

    def record(self, record: dict[str, Any], step: int) -> None:
        """One line of ``metrics.jsonl`` (``step`` and ``kimg`` included): numbers only are logged."""

    def image(self, name: str, image: Image.Image, step: int) -> None:
        """A picture (the sample grid) at ``step``."""

    def close(self) -> None:
        """Finish the run (flush files)."""


LOGGERS: Registry[type[Logger]] = Registry("logger")


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numeric fields of a record, ``step`` left out (it is the x axis)."""
    return {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _require(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(f"train.loggers names {extra}, which is not installed: pip install {extra}") from None


def saved_id(run_dir: Path, tracker: str) -> str | None:
    """The id this run was given in ``tracker`` by an earlier start (None on the first)."""
    path = RunDir(run_dir).tracker_id_path(tracker)
    return path.read_text().strip() if path.is_file() else None


def save_id(run_dir: Path, tracker: str, run_id: str) -> None:
    atomic_write_text(RunDir(run_dir).tracker_id_path(tracker), run_id + "\n")


@LOGGERS.register("jsonl", help="metrics.jsonl in the run directory (always written)")
class JsonlLogger(Logger):
    """``metrics.jsonl`` is the trainer's own record: nothing more to do."""


@LOGGERS.register("tensorboard", help="TensorBoard event files in RUN/tensorboard (pip install tensorboard)")
class TensorBoardLogger(Logger):
    def open(self, run_dir: Path, config: Config, step: int) -> None:
        _require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(RunDir(run_dir).tensorboard_dir), purge_step=step + 1 if step else None)

    def record(self, record: dict[str, Any], step: int) -> None:
        values = scalars(record)
        evaluation = any("/" in k for k in values)  # an evaluation's record: eval/fid, ... (its kimg is the log's)
        tags = {k: v for k, v in values.items() if "/" in k} if evaluation else {f"train/{k}": v for k, v in values.items()}
        for tag, value in tags.items():
            self.writer.add_scalar(tag, value, step)

    def image(self, name: str, image: Image.Image, step: int) -> None:
        self.writer.add_image(name, np.asarray(image), step, dataformats="HW" if image.mode == "L" else "HWC")

    def close(self) -> None:
        self.writer.close()


@LOGGERS.register("wandb", help="a Weights & Biases run in RUN/wandb (pip install wandb; WANDB_MODE=offline without network)")
class WandbLogger(Logger):
    def open(self, run_dir: Path, config: Config, step: int) -> None:
        wandb = _require("wandb", "wandb")
        run_id = saved_id(run_dir, "wandb")
        resuming = run_id is not None
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            save_id(run_dir, "wandb", run_id)
        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "ganforge"), name=config.name, id=run_id,
                              dir=str(run_dir), config=config.to_dict(), resume="allow" if resuming else None,
                              settings=wandb.Settings(silent=True))

    def record(self, record: dict[str, Any], step: int) -> None:
        self.run.log(scalars(record), step=step)

    def image(self, name: str, image: Image.Image, step: int) -> None:
        self.run.log({name: self.wandb.Image(image)}, step=step)

    def close(self) -> None:
        self.run.finish()


@LOGGERS.register("mlflow", help="an MLflow run in $MLFLOW_TRACKING_URI, default RUN/mlruns (pip install mlflow-skinny)")
class MLflowLogger(Logger):
    def open(self, run_dir: Path, config: Config, step: int) -> None:
        mlflow = _require("mlflow", "mlflow-skinny")
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # the run's own file store (MLflow 3 asks for an explicit opt-in to it)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (run_dir / "mlruns").resolve().as_uri()
        self.client = mlflow.MlflowClient(uri)
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "ganforge")
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        run_id = saved_id(run_dir, "mlflow")
        if run_id is not None:
            self.run_id = run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(experiment_id, run_name=config.name).info.run_id
            save_id(run_dir, "mlflow", self.run_id)
            for key, value in _flatten(config.to_dict()).items():
                self.client.log_param(self.run_id, key, str(value)[:500])

    def record(self, record: dict[str, Any], step: int) -> None:
        for key, value in scalars(record).items():
            self.client.log_metric(self.run_id, re.sub(r"[^\w\-./ ]", "_", key), value, step=step)

    def image(self, name: str, image: Image.Image, step: int) -> None:
        self.client.log_image(self.run_id, image, key=name, step=step)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def create(names: list[str], tensorboard: bool = False) -> list[Logger]:
    """The loggers of ``train.loggers`` (plus TensorBoard with ``train.tensorboard``, skipped with a warning where
    it is not installed, as before ``train.loggers`` existed), jsonl left out."""
    wanted = [LOGGERS.canonical(n) for n in names]
    if tensorboard and "tensorboard" not in wanted:
        if importlib.util.find_spec("tensorboard") is None:
            warnings.warn("train.tensorboard is true but tensorboard is not installed (pip install tensorboard)", stacklevel=2)
        else:
            wanted.append("tensorboard")
    return [LOGGERS.get(name)() for name in dict.fromkeys(wanted) if name != "jsonl"]
