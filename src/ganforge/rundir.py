"""The run directory: the one place that knows its layout.

Everything a training run produces lands in one folder::

    RUN/config.yaml               the resolved config
    RUN/checkpoints/latest.pt     full training state (atomic; --resume continues from it)
    RUN/checkpoints/best.pt       state at the best eval score (with eval.every > 0)
    RUN/checkpoints/step-N.pt     kept checkpoints (train.keep_checkpoints)
    RUN/generator/                config.json + model.safetensors (EMA weights), written as one unit
    RUN/generator-best/           the generator of the best eval step
    RUN/samples/step-NNNNNN.png   a preview of the fixed samples (grid, plot, ...), by step
    RUN/samples/step-NNNNNN.wav   the same samples to play, where the modality has a playable form (audio)
    RUN/metrics.jsonl             one JSON record per log line / evaluation
    RUN/report.html               curves, previews and config in one self-contained page
    RUN/tensorboard/              when train.tensorboard is true (or tensorboard in train.loggers)
    RUN/wandb/, RUN/mlruns/       the W&B run and the default MLflow store (train.loggers)
    RUN/TRACKER_id.txt            the run's id in a tracker (wandb, mlflow), so a resumed run continues it
    RUN/encoder-SPACE/            the encoder of ganforge project --encoder (z, w, wplus)

Files are written atomically (``core.atomic_write_bytes`` / ``atomic_write_files``) through
hidden temporaries beside them; a killed writer's are removed by :meth:`RunDir.remove_stale_temps`.
The trainer writes through :class:`RunDir`; evaluation, report, serve, the CLI and the
CycleGAN loader read through it; nothing else spells these paths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from . import hub
from .config import Config, from_dict, read_yaml
from .core import atomic_write_text, remove_stale_temps
from .errors import ConfigError, UserError
from .models.base import GENERATOR_CONFIG, Generator, Translator
from .models.loading import load_generator as load_folder_generator

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
REPORT = "report.html"
GENERATOR = "generator"
GENERATOR_BEST = "generator-best"
#: Sections that every saved ``config.yaml`` has.
RUN_CONFIG_SECTIONS = ("data", "model")


class RunDir:
    """A run directory and what it holds.

    Attributes:
        dir: the folder.
        config: the resolved config (read from ``config.yaml`` on first use when not given).
        step: the step the run reached (set by the trainer; None when only read from disk).
    """

    def __init__(self, dir: str | Path, config: Config | None = None, step: int | None = None) -> None:
        self.dir, self._config, self.step = Path(dir), config, step

    # ------------------------------------------------------------------ paths

    @property
    def config_path(self) -> Path:
        return self.dir / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.dir / METRICS

    @property
    def report_path(self) -> Path:
        return self.dir / REPORT

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def latest_checkpoint(self) -> Path:
        return self.checkpoints_dir / "latest.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints_dir / "best.pt"

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:06d}.pt"

    @property
    def generator_dir(self) -> Path:
        return self.dir / GENERATOR

    @property
    def best_generator_dir(self) -> Path:
        """The generator with the best primary eval score (written when ``eval.every > 0``)."""
        return self.dir / GENERATOR_BEST

    @property
    def samples_dir(self) -> Path:
        return self.dir / "samples"

    def samples_path(self, step: int) -> Path:
        return self.samples_dir / f"step-{step:06d}.png"

    def sample_grids(self) -> list[Path]:
        """Every sample preview, in step order."""
        return sorted(self.samples_dir.glob("step-*.png"))

    @property
    def latest_samples(self) -> Path | None:
        grids = self.sample_grids()
        return grids[-1] if grids else None

    @property
    def tensorboard_dir(self) -> Path:
        return self.dir / "tensorboard"

    def tracker_id_path(self, tracker: str) -> Path:
        """Where the run's id in an experiment tracker (``wandb``, ``mlflow``) is kept."""
        return self.dir / f"{tracker}_id.txt"

    def encoder_dir(self, space: str) -> Path:
        """The projection encoder of latent space ``space`` (``z``, ``w``, ``w+``)."""
        return self.dir / f"encoder-{space.replace('+', 'plus')}"

    # ------------------------------------------------------------------ contents

    @property
    def config(self) -> Config:
        """The run's config (``config.yaml``); a one-line error when there is none."""
        if self._config is None:
            self._config = from_dict(self.config_data())
        return self._config

    def config_data(self) -> dict[str, Any]:
        """``config.yaml`` as plain data (types unchecked), for resuming with overrides.

        Raises:
            UserError: there is none, it is not a YAML mapping, or it lacks a section that every
                saved config has (an empty file must not silently mean the default preset).
        """
        if not self.config_path.is_file():
            raise UserError(f"'{self.dir}' is not a run directory (no {CONFIG})")
        data = read_yaml(self.config_path)
        missing = [section for section in RUN_CONFIG_SECTIONS if section not in data]
        if missing:
            what = "is empty" if not data else f"has no '{missing[0]}' section"
            raise ConfigError(f"'{self.config_path}' {what}: it is not the saved config of a run")
        return data

    def is_run(self) -> bool:
        """Whether the folder holds a run (a config) or a saved generator."""
        return self.dir.is_dir() and (
            self.config_path.is_file() or (self.generator_dir / GENERATOR_CONFIG).is_file()
        )

    def metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl``; a torn or corrupt line (a crash mid-write) is skipped."""
        records = []
        if self.metrics_path.is_file():
            for line in self.metrics_path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
        return records

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """Keep the records up to ``step`` (a resumed run redoes the later ones); drops torn lines."""
        if self.metrics_path.exists():
            keep = [r for r in self.metrics() if r.get("step", 0) <= step]
            atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))  # a kill keeps the old log

    def remove_stale_temps(self, include_own: bool = False) -> list[Path]:
        """Delete the temporaries of killed writers in the folders the trainer writes to
        (see :func:`ganforge.core.remove_stale_temps`); returns what was removed."""
        folders = (self.dir, self.checkpoints_dir, self.samples_dir)
        return [path for folder in folders for path in remove_stale_temps(folder, include_own=include_own)]

    def generator_config(self) -> dict[str, Any]:
        """``generator/config.json`` (class, constructor arguments, metadata) without the weights."""
        path = self.generator_dir / GENERATOR_CONFIG
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read the generator config '{path}' ({err})") from None
        if not isinstance(config, dict):
            raise UserError(f"'{path}' is not a valid generator config")
        return config

    def generator_meta(self) -> dict[str, Any]:
        """The metadata saved beside the generator's weights (``{}`` when unreadable)."""
        try:
            meta = self.generator_config().get("meta")
        except UserError:
            return {}
        return meta if isinstance(meta, dict) else {}

    def load_generator(self, device: str | torch.device = "cpu", *, best: bool = False) -> Generator | Translator:
        """The run's exported generator (``generator-best/`` with ``best``)."""
        return load_folder_generator(self.best_generator_dir if best else self.generator_dir, device)


def generator_folder(path: str | Path) -> Path:
    """The generator folder of ``path``: ``path`` itself when it holds one, else ``path/generator``; an
    ``hf://OWNER/REPO`` path is its cached snapshot on this machine (:mod:`ganforge.hub`)."""
    path = hub.resolve(path)
    if not (path / GENERATOR_CONFIG).is_file() and (path / GENERATOR / GENERATOR_CONFIG).is_file():
        return path / GENERATOR
    return path


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator | Translator:
    """A generator from a run directory or from its ``generator/`` folder alone."""
    return load_folder_generator(generator_folder(path), device)


__all__ = ["RunDir", "generator_folder", "load_generator"]
