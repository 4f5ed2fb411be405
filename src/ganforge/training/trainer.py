"""The training loop: schedule, EMA, checkpoints, divergence guard, progress and logging.

The trainer is method-agnostic: a registered :class:`~ganforge.training.recipes.Recipe`
performs each step, and it is modality-agnostic: the data set's
:class:`~ganforge.modality.Modality` previews the samples. Everything a run produces lands
in its run directory, whose layout :class:`~ganforge.rundir.RunDir` owns.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .. import data as data_module
from .. import distributed
from .. import modality as modalities
from ..config import Config, apply_overrides, from_dict, parse_override
from ..core import atomic_write_bytes, atomic_write_text, check_writable_dir, fault_point, is_temporary, resolve_device, shorten
from ..data import Dataset
from ..errors import ConfigError, DivergenceError, TrainingError, UserError
from ..evaluation import Evaluator, SourceOptions, choose_extractor, dataset_source, generated_source, resolve_metrics
from ..layers.sync_batchnorm import set_sync
from ..models import Generator, save_generator, weights_hash
from ..models.loading import check_state_shapes
from ..report import write_report
from ..rundir import RunDir, load_generator
from ..safeguards import manifest
from ..sampling import provenance
from ..validate import check_config, load_config
from ..viz import save_png
from . import loggers
from .checkpoint import CHECKPOINT_FORMAT, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .ema import EMA, standing_stats
from .recipes import RECIPES, Recipe
from .schedule import apply_lr_factor, lr_factor

#: Config keys that may change when a run is resumed (nothing that alters the trajectory).
RESUMABLE_KEYS = {
    "train.steps",
    "train.log_every",
    "train.sample_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.tensorboard",
    "train.loggers",
    "train.progress",
    "train.device",
    "train.threads",
    "train.sync_batchnorm",
    "train.compile",
    "eval.every",
    "eval.batch_size",
}


#: What :func:`train` returns: the run directory, with the config and the step reached.
Run = RunDir


def compile_networks(networks: Any) -> None:
    """``torch.compile`` each network in place (same parameters and state-dict keys).

    Compilation happens at the first call; where it cannot (no C++ compiler for the CPU
    backend, an unsupported op), dynamo falls back to eager execution with a warning
    instead of stopping the run.
    """
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    for net in networks:
        net.compile()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (what Slurm and Kubernetes send) like Ctrl-C: save, say how to resume, exit 1."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def preserved_rng(generators: dict[str, torch.Generator] | None = None) -> Iterator[None]:
    """Restore every random state on exit, so side work (evaluation) never moves the trajectory."""
    state = rng_state(generators)
    try:
        yield
    finally:
        set_rng_state(state, generators)


def resume_config(run_dir: Path, overrides: dict[str, Any]) -> Config:
    """The saved config of ``run_dir`` with the allowed overrides applied, checked (see :func:`check_config`)."""
    saved = RunDir(run_dir).config_data()
    changed = {k: v for k, v in overrides.items() if _lookup(saved, k) != v}
    forbidden = sorted(set(changed) - RESUMABLE_KEYS)
    if forbidden:
        raise ConfigError(
            f"cannot change {', '.join(forbidden)} when resuming (allowed: {', '.join(sorted(RESUMABLE_KEYS))})"
        )
    return check_config(from_dict(apply_overrides(saved, changed)))


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def initialise_from(recipe: Recipe, source: str, device: torch.device) -> dict[str, Any]:
    """Load a trained run's generator and discriminator (``RUN/checkpoints/latest.pt``) or a generator folder's
    generator (the discriminator stays fresh) into ``recipe``'s networks (``train.init_from``); returns what the
    new run's metadata records of its parent.

    Raises:
        ConfigError: nothing to load at ``source``, or a tensor whose name or shape differs (the first one named).
    """
    path = Path(source).expanduser()
    checkpoint = RunDir(path).latest_checkpoint
    if checkpoint.is_file():
        state = load_checkpoint(checkpoint, map_location=device)
        weights = {name: state["recipe"]["networks"].get(name) for name in ("generator", "discriminator")}
        parent = {"run": str(path), "step": state["step"]}
    else:
        try:
            generator = load_generator(path, device)
        except UserError as err:
            raise ConfigError(f"train.init_from: {err}") from None
        weights = {"generator": generator.state_dict()}
        parent = {"run": str(path), "step": generator.meta.get("step"), "weights_id": generator.meta.get("weights_id")}
    for name, saved in weights.items():
        network = recipe.networks.get(name)
        if network is None or saved is None:
            raise ConfigError(f"train.init_from: '{path}' has no {name} for this recipe's")
        try:
            check_state_shapes({k: v.shape for k, v in network.state_dict().items()}, {k: v.shape for k, v in saved.items()},
                               f"the {name} of '{path}'")
        except UserError as err:
            raise ConfigError(f"train.init_from: {err} (model and data must match)") from None
        network.load_state_dict(saved)
    return parent


class Trainer:
    """Runs a recipe for ``config.train.steps`` generator steps in ``run_dir``.

    Args:
        config: a checked configuration (:func:`ganforge.load_config` or :func:`ganforge.check_config`).
        run_dir: the run directory (created; must be new or empty unless resuming).
        resume: continue from ``run_dir/checkpoints/latest.pt``.
        dataset: a data set to train on instead of ``config.data``'s (``ganforge bench`` times
            presets on synthetic images when their data is absent).
    """

    def __init__(self, config: Config, run_dir: str | Path, *, resume: bool = False, dataset: Dataset | None = None) -> None:
        self.config = config
        self.dir = Path(run_dir)
        self.run = RunDir(self.dir, config)
        self.resume = resume
        t = config.train
        check_writable_dir(self.dir, "run directory")
        with self._signing():  # a missing or bad train.sign_cert / sign_key fails now, not at the first sample grid
            pass
        self.device = resolve_device(t.device, "train.device")
        self.dist = distributed.setup(self.device)  # a single process unless launched by torchrun
        self.device = distributed.local_device(self.device, self.dist)
        threads = t.threads or distributed.default_threads(self.dist)
        if threads:
            torch.set_num_threads(threads)

        self.checkpoint_path = self.run.latest_checkpoint
        if self.dist.is_main:  # the only writer; a killed one left the temporaries of its atomic writes
            self.run.remove_stale_temps(include_own=True)
        if resume and not self.checkpoint_path.is_file():
            # Stopped before its first checkpoint: nothing to continue, so start it again from step 0.
            print(f"{self.dir}: no checkpoint yet, starting the run from step 0", file=sys.stderr)
            self.resume = resume = False
            if self.dist.is_main:
                self.run.truncate_metrics(0)
        elif not resume and self.dir.exists() and any(not is_temporary(p.name) for p in self.dir.iterdir()):
            raise UserError(f"run directory '{self.dir}' already exists and is not empty (use --resume or another --out)")
        if self.dist.enabled:
            distributed.barrier()  # every process has checked the directory before rank 0 writes to it
            distributed.check_global_batch(t.batch_size, self.dist.world_size)

        # Read before the data set is decoded: a --set that contradicts it fails first.
        state = load_checkpoint(self.checkpoint_path, map_location=self.device) if resume else None
        reached = state["step"] if state is not None else 0  # its layout was checked by load_checkpoint
        if reached > t.steps:
            raise ConfigError(
                f"train.steps={t.steps} is below step {reached}, where '{self.dir}' stopped: "
                f"give train.steps >= {reached} to continue it"
            )
        seed_everything(t.seed)
        self.dataset = dataset if dataset is not None else data_module.create(config.data)
        # The extractor of the evaluations, chosen once; missing weights fail now, not after eval.every steps.
        self._extractor = choose_extractor(config, modality=self.dataset.modality) if config.eval.every > 0 else None
        if self._extractor is not None:
            self._extractor.check_weights(resolve_metrics(config.eval.metrics))
        self.recipe: Recipe = RECIPES.get(config.recipe)(config, self.dataset, self.device)
        # fine-tuning: the parent's weights before the EMA copy is made (a resumed run has its own in the checkpoint)
        self.parent = initialise_from(self.recipe, t.init_from, self.device) if t.init_from and not resume else None
        if resume and t.init_from:
            self.parent = RunDir(self.dir).generator_meta().get("parent") or {"run": t.init_from}
        if self.dist.enabled:
            self.recipe.distribute(self.dist, sync_batchnorm=t.sync_batchnorm)
        self.ema = EMA(self.recipe.generator, t.ema_decay, t.ema_start)
        set_sync(self.ema.model, False)  # the EMA copy only runs on rank 0 (samples, exports)
        if t.compile:  # after the EMA copy, which stays eager (it runs a few times per checkpoint)
            compile_networks(self.recipe.networks.values())
        self.loader = data_module.BatchLoader(
            self.dataset, t.batch_size, seed=t.seed, hflip=config.data.hflip, device=self.device,
            rank=self.dist.rank, world_size=self.dist.world_size, crop=config.data.crop,
        )
        self.step = 0
        self.images_per_step = t.batch_size * t.n_critic
        self._fixed = self.recipe.fixed_inputs(t.sample_count)  # the inputs of every sample grid
        self._pending: list[dict[str, torch.Tensor]] = []
        self._last_good: tuple[int, Path] | None = None
        self._loggers: list[loggers.Logger] = []
        self._bar: Any = None
        self._evaluator: Any = None  # ganforge.evaluation.Evaluator, built at the first evaluation
        self.best: dict[str, Any] | None = None  # {"key", "value", "step"} of the best evaluation

        if state is not None:
            self._load(state, self.checkpoint_path)
        if self.dist.enabled:
            self.recipe.split_streams(self.step)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "recipe": self.recipe.state_dict(),
            "ema": self.ema.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": rng_state(self.recipe.rngs),
            "config": self.config.to_yaml(),
            "eval_best": self.best,
        }

    def _load(self, state: dict[str, Any], path: Path) -> None:
        """Restore ``state``, read (and its layout checked) from ``path``; one error line when it does not fit this run."""
        self._check_networks(state, path)
        restore = {
            "recipe": lambda: self.recipe.load_state_dict(state["recipe"]),
            "ema": lambda: self.ema.load_state_dict(state["ema"]),
            "loader": lambda: self.loader.load_state_dict(state["loader"]),
            "rng": lambda: set_rng_state(state["rng"], self.recipe.rngs),
            "recipe.optimizers": self._check_optimizers,
        }
        for section, apply in restore.items():
            try:
                apply()
            except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
                reason = f"missing {shorten(repr(err.args[0]))}" if isinstance(err, KeyError) and err.args else (
                    (str(err).strip().splitlines() or [type(err).__name__])[0])
                raise UserError(f"'{path}' does not fit this run: {section}: {shorten(reason, 120)}") from None
        self.step = state["step"]
        self.best = state.get("eval_best")
        self._last_good = (self.step, path)
        if self.dist.is_main:
            self._truncate_metrics(self.step)

    def _check_networks(self, state: dict[str, Any], path: Path) -> None:
        """Every network of the recipe (and the EMA copy) has its tensors, of its shapes, in ``state``."""
        saved = {f"recipe.networks.{name}": state["recipe"]["networks"].get(name) for name in self.recipe.networks}
        saved["ema"] = state["ema"]
        current = {**{f"recipe.networks.{k}": net for k, net in self.recipe.networks.items()}, "ema": self.ema.model}
        for where, tensors in saved.items():
            if tensors is None:
                raise UserError(f"'{path}' is not a checkpoint of this run: missing '{where}'")
            if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
                raise UserError(f"'{path}' is not a checkpoint of this run: '{where}' holds more than tensors")
            try:
                check_state_shapes({k: v.shape for k, v in current[where].state_dict().items()},
                                   {k: v.shape for k, v in tensors.items()}, "the checkpoint")
            except UserError as err:
                raise UserError(f"'{path}' does not fit this run: {where}: {err}") from None

    def _check_optimizers(self) -> None:
        """Each restored optimizer moment has its parameter's shape (a wrong one would fail at the next step)."""
        for name, optimizer in self.recipe.optimizers.items():
            for param, slots in optimizer.state.items():
                for slot, value in slots.items():
                    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                        raise ValueError(f"optimizer '{name}': state '{slot}' has shape {list(value.shape)}, "
                                         f"not that of its parameter {list(param.shape)}")

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines written after the checkpoint we resume from (they will be redone)."""
        self.run.truncate_metrics(step)

    # ------------------------------------------------------------------ outputs

    def ema_snapshot(self) -> Generator:
        """A standalone copy of the EMA generator with standing BatchNorm statistics
        (re-estimated on the recipe's :meth:`~ganforge.training.recipes.Recipe.calibration_inputs`)."""
        g = copy.deepcopy(self.ema.model).eval()
        standing_stats(g, self.recipe.calibration_inputs(self.config.train.batch_size))
        return g.eval()

    def generator_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "run": self.config.name,
            "step": self.step,
            "data": self.config.data.name,
            "modality": self.dataset.modality,
            **modalities.get(self.dataset.modality).generator_meta(self.dataset),
            "class_names": self.dataset.class_names if self.config.model.conditional else None,
            **self.recipe.generator_meta(),
        }
        if self.parent:
            meta["parent"] = self.parent  # fine-tuned: what it started from (train.init_from)
        return meta

    @torch.no_grad()
    def save_samples(self, generator: Generator) -> Path:
        """Write samples/step-N.png (and, at the last step, the recipe's ``final_grid``), and beside it the
        same samples as a file a person plays (``samples/step-N.wav``) where the modality has one."""
        kind = modalities.get(self.dataset.modality)
        metadata = provenance(seed=f"fixed:{self.config.train.seed}", generator=weights_hash(generator),
                              run=self.config.name, step=self.step, **kind.output_fields(kind.generator_meta(self.dataset)))
        with self._signing():
            return self._write_samples(generator, metadata, kind)

    def _signing(self) -> contextlib.AbstractContextManager[None]:
        """``train.sign_cert``/``sign_key`` as the active C2PA signer (else whatever the caller set: ``--sign-cert``)."""
        t = self.config.train
        if not (t.sign_cert or t.sign_key):
            return contextlib.nullcontext()
        return manifest.signing(t.sign_cert, t.sign_key, ("train.sign_cert", "train.sign_key"))

    def _write_samples(self, generator: Generator, metadata: dict[str, str], kind: Any) -> Path:
        image, playable = self.recipe.render_previews(generator, self._fixed, metadata)
        path = save_png(image, self.run.samples_path(self.step), metadata)
        if playable is not None:
            suffix, data = playable
            atomic_write_bytes(self.run.samples_path(self.step).with_suffix(suffix), data)
        if self.recipe.final_grid and self.step >= self.config.train.steps:
            save_png(image, self.dir / self.recipe.final_grid, metadata)
        for logger in self._loggers:  # the preview picture, whatever the modality
            logger.image("samples", image, self.step)
        return path

    def save_checkpoint(self, exported: Generator | None = None) -> Path:
        """Write checkpoints/latest.pt (+ step-N.pt) and generator/, only if the state is finite.

        Args:
            exported: the output of :meth:`ema_snapshot` for this step, if already made.
        """
        self._check_finite()
        state = self.state_dict()
        latest = self.run.latest_checkpoint
        save_checkpoint(state, latest)
        if self.config.train.keep_checkpoints:
            save_checkpoint(state, self.run.step_checkpoint(self.step))
        fault_point("trainer:checkpoint")
        exported = exported if exported is not None else self.ema_snapshot()
        save_generator(exported, self.run.generator_dir, self.generator_meta())
        self._last_good = (self.step, latest)
        return latest

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, exported: Generator) -> dict[str, Any]:
        """Score ``exported`` with the ``eval`` config against the training data; keep the best.

        Logs ``eval/<key>`` to metrics.jsonl and TensorBoard. A new best primary value
        writes ``checkpoints/best.pt`` and ``generator-best/``. Random states are restored
        afterwards, so evaluating never changes the training trajectory.
        """
        self._check_finite()  # a diverged state is reported as such, not as a failing metric
        e = self.config.eval
        choice = self._extractor
        assert choice is not None, "evaluate() runs only with eval.every > 0"
        n = choice.n(e)
        with preserved_rng(self.recipe.rngs):
            if self._evaluator is None:
                real = dataset_source(self.dataset, self.config.data, n)
                self._evaluator = Evaluator(
                    real, e.metrics, extractor=choice.name or "inception", extractor_weights=choice.weights,
                    device=self.device, batch_size=e.batch_size,
                )
            exported.meta = {**(getattr(exported, "meta", None) or {}), **self.generator_meta()}  # modality, context (vocabulary)
            fake = generated_source(exported, SourceOptions(n=n, batch_size=e.batch_size), f"step {self.step}")
            results = self._evaluator(fake)
        values = {k: v for k, v in results.items() if k not in ("n_real", "n_fake", "extractor")}
        logged = {f"eval/{k}": v for k, v in values.items()}
        self._write_record({"step": self.step, "kimg": self._kimg(), **logged})
        key, higher = self._evaluator.primary
        value = float(values[key])
        improved = self.best is None or (value > self.best["value"] if higher else value < self.best["value"])
        if math.isfinite(value) and improved:
            self.best = {"key": key, "value": value, "step": self.step}
            save_checkpoint(self.state_dict(), self.run.best_checkpoint)
            save_generator(exported, self.run.best_generator_dir, {**self.generator_meta(), "eval": {key: value}})
        if self._bar is not None:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
            self._bar.write(f"step {self.step}: {shown}" + (" (best)" if self.best and self.best["step"] == self.step else ""))
        return results

    # ------------------------------------------------------------------ guard + logging

    def _pending_losses(self) -> tuple[list[str], torch.Tensor]:
        """Names and mean values ``[names]`` of the losses logged since the last log line.

        A name may be missing from some steps (a lazy regularizer runs every k-th update):
        it is averaged over the steps that have it. A non-finite value makes its mean
        non-finite, which is what the divergence guard checks.
        """
        names = list(dict.fromkeys(k for p in self._pending for k in p))
        return names, torch.stack([torch.stack([p[k].float() for p in self._pending if k in p]).mean() for k in names])

    def _check_finite(self, pending: tuple[list[str], torch.Tensor] | None = None) -> None:
        """Raise :class:`DivergenceError` if a pending loss or a weight is NaN/inf.

        Args:
            pending: :meth:`_pending_losses`, when the caller has already stacked them.
        """
        bad: list[str] = []
        if pending is None and self._pending:
            pending = self._pending_losses()
        if pending is not None:
            names, values = pending
            bad = [k for k, ok in zip(names, torch.isfinite(values).tolist()) if not ok]
        if not bad:
            for name, net in self.recipe.networks.items():
                if not all(torch.isfinite(p).all() for p in net.parameters()):
                    bad.append(f"{name} weights")
        if bad:
            where = (
                f"the last good checkpoint is '{self._last_good[1]}' (step {self._last_good[0]})"
                if self._last_good
                else "no checkpoint was written yet"
            )
            raise DivergenceError(
                f"training diverged by step {self.step}: non-finite {', '.join(bad)}; {where}. "
                "Try a lower learning rate or another loss."
            )

    def _log(self, elapsed: float, steps: int) -> dict[str, Any]:
        names, values = self._pending_losses()
        if self.dist.enabled:  # every process logs the same means, so all stop together on divergence
            values = distributed.all_mean(values, self.dist.world_size)
        self._check_finite((names, values))
        means = dict(zip(names, values.tolist()))  # one host sync per log line
        self._pending.clear()
        record = {
            "step": self.step,
            "kimg": self._kimg(),
            **{k: round(v, 6) for k, v in means.items()},
            "img_per_s": round(steps * self.images_per_step / max(elapsed, 1e-9), 2),
            "sec_per_step": round(elapsed / max(steps, 1), 6),
        }
        self._write_record(record)
        return record

    def _kimg(self) -> float:
        return round(self.step * self.images_per_step / 1000, 3)

    def _write_record(self, record: dict[str, Any]) -> None:
        """Append ``record`` to metrics.jsonl and hand it to the loggers of ``train.loggers`` (rank 0)."""
        if not self.dist.is_main:
            return
        self.run.append_metrics(record)
        for logger in self._loggers:
            logger.record(record, self.step)

    def _open_loggers(self) -> None:
        """Start the trackers of ``train.loggers`` (rank 0; a missing package is a one-line error before training)."""
        if not self.dist.is_main:
            return
        t = self.config.train
        for logger in loggers.create(t.loggers, t.tensorboard):
            logger.open(self.dir, self.config, self.step)
            self._loggers.append(logger)

    # ------------------------------------------------------------------ loop

    def fit(self) -> Run:
        """Train until ``train.steps``; returns the :class:`Run`."""
        if self.dist.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run.config_path, self.config.to_yaml())
        with sigterm_as_interrupt():
            if self.resume and self.dist.is_main:
                self._repair_outputs()
            self._open_loggers()
            return self._loop(self._open_bar())

    def _open_bar(self) -> Any:
        """The progress bar (``train.progress``, rank 0), or None."""
        t = self.config.train
        bar = None
        if t.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            # Redraw at most twice a second on a terminal, every 30 s into a log file.
            interval = 0.5 if sys.stderr.isatty() else 30.0
            bar = tqdm(
                total=t.steps, initial=self.step, desc=self.config.name, unit="step",
                dynamic_ncols=True, file=sys.stderr, mininterval=interval,
            )
        self._bar = bar
        return bar

    def _loop(self, bar: Any) -> RunDir:
        t = self.config.train
        main = self.dist.is_main
        window_start, window_steps = time.perf_counter(), 0
        try:
            o = self.config.optim
            while self.step < t.steps:
                if o.lr_schedule != "constant":
                    apply_lr_factor(self.recipe.optimizers.values(), lr_factor(o.lr_schedule, self.step, t.steps, o.decay_start))
                losses = self.recipe.train_step(self.loader, self.step)
                self.step += 1
                self.ema.update(self.recipe.generator, self.step)
                fault_point("trainer:step")
                self._pending.append(losses)
                window_steps += 1
                done = self.step == t.steps
                if self.step % t.log_every == 0 or done:
                    now = time.perf_counter()
                    record = self._log(now - window_start, window_steps)
                    window_start, window_steps = now, 0
                    if bar is not None:
                        shown = {k[0]: f"{record[k]:.3f}" for k in ("d_loss", "g_loss") if k in record}
                        bar.set_postfix(**shown, img_s=f"{record['img_per_s']:.0f}", refresh=False)
                if bar is not None:
                    bar.update(1)
                checkpoint = self.step % t.checkpoint_every == 0 or done
                samples = self.step % t.sample_every == 0 or done
                every = self.config.eval.every
                evaluating = every > 0 and (self.step % every == 0 or done)
                if (checkpoint or samples or evaluating) and main:  # the other processes hold the same state
                    self._write_outputs(checkpoint, samples, evaluating)
        except KeyboardInterrupt:
            if main:
                self._on_interrupt()
            raise TrainingError(f"process {self.dist.rank} interrupted at step {self.step}") from None
        finally:
            if bar is not None:
                bar.close()
            self._bar = None
            for logger in self._loggers:
                logger.close()
            self._loggers.clear()
        return RunDir(self.dir, self.config, self.step)

    def _write_outputs(self, checkpoint: bool, samples: bool, evaluating: bool) -> None:
        """This step's outputs from one EMA snapshot: evaluation, checkpoint + generator/, samples + report."""
        exported = self.ema_snapshot()  # shared by all outputs
        if evaluating:  # before the checkpoint, which then holds this step's best
            self.evaluate(exported)
        if checkpoint:
            self.save_checkpoint(exported)
        if samples:
            self.save_samples(exported)
            fault_point("trainer:samples")
            write_report(self.dir, modality=self.dataset.modality, training=self.dataset.data)

    def _repair_outputs(self) -> None:
        """On resume: redo the outputs of the checkpoint's step that a kill may have cut short.

        ``latest.pt`` is written first, then ``generator/``, then the samples and the report;
        a run killed in between resumes from ``latest.pt``, and the loop only writes the
        outputs of later steps. So ``generator/`` is rewritten when it holds another step, and
        a sample step (the last step included) redraws its samples and the report. All come
        from the resumed state, so they are exactly what the run would have written.
        """
        t = self.config.train
        stale = self.run.generator_meta().get("step") != self.step
        samples = self.step % t.sample_every == 0 or self.step >= t.steps
        if not (stale or samples):
            return
        try:
            exported = self.ema_snapshot()
            if stale:
                save_generator(exported, self.run.generator_dir, self.generator_meta())
            if samples:
                self.save_samples(exported)
                write_report(self.dir, modality=self.dataset.modality, training=self.dataset.data)
        except KeyboardInterrupt:
            raise TrainingError(
                f"interrupted while rewriting the outputs of step {self.step} ('{self.checkpoint_path}' is unchanged). "
                f"Continue with: ganforge train --resume {self.dir}"
            ) from None

    def _on_interrupt(self) -> None:
        """Save what we have (if it is sound) so that ``--resume`` continues from here.

        An interrupt between steps resumes exactly; one that lands inside a step may keep
        that step's discriminator update, which is safe but leaves the exact trajectory.
        """
        path = self.save_checkpoint()  # raises DivergenceError instead if the state is not finite
        raise TrainingError(
            f"interrupted at step {self.step}; state saved to '{path}'. Continue with: ganforge train --resume {self.dir}"
        ) from None


def train(
    config: Config | str | Path | dict[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    resume: str | Path | None = None,
) -> Run:
    """Train a GAN and return its :class:`Run`.

    Args:
        config: a :class:`Config`, preset name, YAML path, mapping, or None (``dcgan-digits``).
        out: run directory; default ``runs/<name>`` (a numbered suffix if it exists).
        overrides: ``["train.steps=100"]`` or ``{"train.steps": 100}``.
        resume: a run directory to continue (its saved config is used; ``train.steps`` and
            other non-trajectory keys may be overridden).
    """
    if resume is not None:
        if config is not None:
            raise UserError("give either a config or --resume RUN_DIR, not both")
        pairs = dict(overrides.items()) if isinstance(overrides, dict) else dict(parse_override(o) for o in overrides or [])
        run = RunDir(resume)
        if not run.config_path.is_file():
            raise UserError(f"cannot resume: '{run.dir}' is not a run directory (no {run.config_path.name})")
        return Trainer(resume_config(run.dir, pairs), run.dir, resume=True).fit()
    if overrides and isinstance(config, Config):
        raise UserError("pass overrides together with a preset name, path or mapping, not a Config object")
    cfg = check_config(config) if isinstance(config, Config) else load_config(config, overrides)
    run_dir = Path(out) if out is not None else default_run_dir(cfg.name)
    if not _names_itself(config, cfg, overrides):
        cfg = dataclasses.replace(cfg, name=run_dir.name)  # samples, generator meta, report and serve name the run
    return Trainer(cfg, run_dir).fit()


def _names_itself(source: Any, cfg: Config, overrides: list[str] | dict[str, Any] | None) -> bool:
    """Whether ``cfg.name`` was chosen for this run (``--set name=...``, a user's YAML) rather than
    borrowed from the preset it started from (or the default ``run``); a borrowed name gives way to
    the run directory's."""
    keys = set(overrides) if isinstance(overrides, dict) else {parse_override(o)[0] for o in overrides or []}
    if "name" in keys:
        return True
    preset = source is None or (isinstance(source, str) and not source.endswith((".yaml", ".yml")))
    return not preset and cfg.name != Config.name


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    """``runs/<name>``, or ``runs/<name>-2``, ``-3``, ... if taken."""
    base = Path(root) / name
    if not base.exists():
        return base
    for i in range(2, 10_000):
        candidate = Path(root) / f"{name}-{i}"
        if not candidate.exists():
            return candidate
    raise UserError(f"too many runs named '{name}' in '{root}'")


__all__ = ["Run", "Trainer", "default_run_dir", "train"]
