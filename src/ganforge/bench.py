"""``ganforge bench train PRESET``: the trainer's real step, timed, with FLOPs and peak memory.

The step measured is the recipe's ``train_step`` as ``ganforge train`` runs it (the
preset's networks, loss, regularizers, precision, memory format and compile settings),
fed by the real data loader. Reported:

* ``img_per_s``: real images shown to the discriminator per second (``batch * n_critic``
  per step), and ``ms_per_step``, medians over ``repeats`` timed blocks of ``steps``;
* ``gflop_per_step``, counted once by :class:`torch.utils.flop_counter.FlopCounterMode`
  (matrix products and convolutions, forward and backward: the work that dominates), and
  ``gflop_per_s`` = that over the median step time;
* ``peak_mem_mib``: on CUDA the peak of memory allocated by tensors during the timed steps;
  on the CPU the peak resident size of the process (everything: interpreter, data set,
  networks, activations), from ``getrusage``.

Timings are wall-clock: run it on an otherwise idle machine.

A preset whose data is absent (``dcgan64-celeba`` without ``data.root``, CIFAR-10 offline) is
timed on random images of the size it asks for (:func:`synthetic_dataset`): the step reads
an in-memory uint8 tensor either way, so its speed does not depend on the pixels. The report
says so; ``--set data.root=DIR`` times it on the real data.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from typing import Any

import torch

from .config import Config
from .data import Dataset
from .errors import DataError, GanforgeError, UserError
from .sampling import shorten
from .training.trainer import Trainer
from .validate import load_config


def sync_device(device: torch.device) -> None:
    """Wait for queued GPU work (timings must include it); nothing to wait for on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mib() -> float:
    """Peak resident size of this process in MiB.

    On Linux this is ``VmHWM`` of the process's own address space. ``getrusage``'s ``ru_maxrss``
    would be wrong for a child process: the kernel carries the parent's high-water mark across
    fork and exec, so a small child of a 4 GiB parent reports 4 GiB.
    """
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def count_step_flops(recipe: Any, loader: Any, step: int) -> float:
    """FLOPs of one ``recipe.train_step`` (matmuls and convolutions, forward + backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    # Compiled networks run eagerly here: the counter sees each aten op (the FLOPs are the maths').
    with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
        recipe.train_step(loader, step)
    return float(counter.get_total_flops())


def bench_train(
    preset: str,
    *,
    steps: int = 20,
    repeats: int = 3,
    warmup: int = 3,
    batch_size: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time ``preset``'s training step; returns the figures listed in the module docstring."""
    if steps < 1 or repeats < 1 or warmup < 0:
        raise UserError(f"bench needs steps >= 1, repeats >= 1 and warmup >= 0, got {steps}, {repeats}, {warmup}")
    changes = {**(overrides or {}), "train.progress": False}
    if batch_size is not None:
        changes["train.batch_size"] = batch_size
    config = load_config(preset, changes)
    t = config.train
    with tempfile.TemporaryDirectory() as tmp:
        try:
            trainer, data = Trainer(config, f"{tmp}/run"), config.data.name
        except DataError as err:
            found = synthetic_trainer(config, f"{tmp}/synthetic") if config.data.root is None else None
            if found is None:
                raise DataError(f"{err}; time it with: ganforge bench train {preset} --set data.root=DIR") from None
            trainer, shape = found
            data = f"synthetic {shape} random images (no {config.data.name} data: {shorten(str(err).split(':')[0], 60)})"
        recipe, loader, device = trainer.recipe, trainer.loader, trainer.device
        step = 0
        for _ in range(warmup):  # allocator, oneDNN primitive caches, compilation, CUDA graphs
            recipe.train_step(loader, step)
            step += 1
        flops = count_step_flops(recipe, loader, step)
        step += 1
        sync_device(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                recipe.train_step(loader, step)
                step += 1
            sync_device(device)
            times.append((time.perf_counter() - start) / steps)
        peak = torch.cuda.max_memory_allocated(device) / (1 << 20) if device.type == "cuda" else peak_rss_mib()
    per_step = statistics.median(times)
    images = t.batch_size * t.n_critic
    return {
        "preset": preset,
        "data": data,
        "device": str(device),
        "batch_size": t.batch_size,
        "n_critic": t.n_critic,
        "precision": t.precision,
        "channels_last": t.channels_last,
        "compile": t.compile,
        "threads": torch.get_num_threads(),
        "ms_per_step": per_step * 1000,
        "img_per_s": images / per_step,
        "gflop_per_step": flops / 1e9,
        "gflop_per_s": flops / 1e9 / per_step,
        "peak_mem_mib": peak,
        "peak_mem_kind": "cuda allocated" if device.type == "cuda" else "process RSS",
        "step_ms_all": [x * 1000 for x in times],
    }


def synthetic_dataset(config: Config, count: int = 256) -> Dataset | None:
    """``count`` random uint8 images of the size ``config.data`` asks for (10 classes for conditional
    models), or None when the config does not say the size (no ``data.resolution``)."""
    d = config.data
    if d.resolution is None:
        return None
    rng = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, d.channels or 3, d.resolution, d.resolution), dtype=torch.uint8, generator=rng)
    labels = torch.arange(count) % 10 if config.model.conditional else None
    return Dataset("synthetic", images, labels, [str(i) for i in range(10)] if labels is not None else None)


def synthetic_trainer(config: Config, run_dir: str) -> tuple[Trainer, str] | None:
    """A trainer of ``config`` on :func:`synthetic_dataset` and the images' shape, or None where the
    recipe needs more than images (pix2pix: paired inputs) or the size is unknown."""
    dataset = synthetic_dataset(config)
    if dataset is None:
        return None
    try:
        trainer = Trainer(config, run_dir, dataset=dataset)
    except GanforgeError:
        return None
    return trainer, "x".join(map(str, dataset.data.shape[1:]))


def format_report(r: dict[str, Any]) -> str:
    """A short human-readable summary of :func:`bench_train`'s result."""
    synthetic = f"\n  data: {r['data']}; --set data.root=DIR times the real data" if r["data"].startswith("synthetic") else ""
    return (
        f"{r['preset']} on {r['device']} ({r['threads']} threads), batch {r['batch_size']}"
        f"{' x ' + str(r['n_critic']) + ' D steps' if r['n_critic'] > 1 else ''}, {r['precision']}"
        f"{', channels-last' if r['channels_last'] else ''}{', compiled' if r['compile'] else ''}\n"
        f"  {r['img_per_s']:.1f} images/s   {r['ms_per_step']:.1f} ms/step   "
        f"{r['gflop_per_step']:.2f} GFLOP/step   {r['gflop_per_s']:.1f} GFLOP/s   "
        f"peak memory {r['peak_mem_mib']:.0f} MiB ({r['peak_mem_kind']})"
        f"{synthetic}"
    )
