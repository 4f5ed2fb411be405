"""ganforge: train, evaluate, explore and serve Generative Adversarial Networks.

Quick start::

    import ganforge
    run = ganforge.train("dcgan-digits", overrides={"train.steps": 500})
    generator = ganforge.load(run.dir)
    images = generator.sample(16, seed=0)   # [16, 1, 32, 32] in [-1, 1]
    scores = ganforge.evaluate("digits", run.dir, metrics=["fid", "kid"], extractor="digits")
"""

from __future__ import annotations

from pathlib import Path

from .config import Config  # noqa: E402
from .errors import ConfigError, DataError, DivergenceError, GanforgeError, TrainingError, UserError  # noqa: E402
from .evaluation import evaluate, evaluate_run  # noqa: E402
from .models import Generator  # noqa: E402
from .models import create as create_model
from .rundir import RunDir, load_generator  # noqa: E402
from .training import Run, Trainer, train  # noqa: E402
from .validate import check_config, load_config  # noqa: E402
from .version import __version__  # noqa: E402


def load(path: str | Path, device: str = "cpu") -> Generator:
    """Load a generator from a run directory or from its ``generator/`` folder alone."""
    return load_generator(path, device)


__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "GanforgeError",
    "Generator",
    "Run",
    "RunDir",
    "Trainer",
    "TrainingError",
    "UserError",
    "__version__",
    "check_config",
    "create_model",
    "evaluate",
    "evaluate_run",
    "load",
    "load_config",
    "train",
]
