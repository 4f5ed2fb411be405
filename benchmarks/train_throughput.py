"""Training throughput: ganforge's step against the canonical PyTorch GAN loop, same networks, one run.

For each preset the canonical loop (float32, NCHW, eager, ``torch.optim.Adam`` with its
defaults, a fresh generator forward for the generator update, as in PyTorch's DCGAN
example) and ganforge's trainer step (the preset's own settings, or ``--set`` changes)
train the *same* networks on the same in-memory batches. Blocks of ``--steps`` steps
alternate between the two for ``--rounds`` rounds, so machine noise hits both alike; the
medians give images/s and the ratio. Both steps' FLOPs are counted with
``torch.utils.flop_counter`` and compared with this machine's measured matrix-product
peak (float32 and bf16 ``torch.mm`` of 2048x2048), giving the fraction of the hardware
limit each reaches.

    python benchmarks/train_throughput.py [--presets dcgan64-celeba,dcgan-cifar10,sngan-cifar10]
        [--batch-size 64] [--steps 5] [--rounds 5] [--threads 2] [--device cpu]
        [--set KEY=VALUE ...] [--json FILE]

Data: random images of the preset's shape (the loop's cost does not depend on pixel values),
so no data set is needed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ganforge import models
from ganforge.bench import count_step_flops
from ganforge.bench import sync_device as sync
from ganforge.config import parse_override
from ganforge.data import Dataset
from ganforge.training.ema import EMA
from ganforge.training.recipes import RECIPES
from ganforge.training.trainer import compile_networks
from ganforge.validate import load_config


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of a square ``torch.mm`` in ``dtype``: the machine's practical peak."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def d_losses(name: str) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    """The canonical loop's losses: BCE-with-logits (non-saturating) or hinge."""
    if name == "hinge":
        return (lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean()), (lambda f: -f.mean())
    if name in ("nonsaturating", "gan", "bce"):
        return (
            lambda r, f: F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
            + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)),
            lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)),
        )
    raise SystemExit(f"the canonical loop knows the nonsaturating and hinge losses, not '{name}'")


class CanonicalLoop:
    """The textbook GAN step: n_critic D updates, then a G update with a fresh G forward."""

    def __init__(self, config: Any, shape: tuple[int, ...], device: torch.device) -> None:
        m, o, t = config.model, config.optim, config.train
        g, d = models.create(m.name, shape, 0, **m.options)
        self.g, self.d = g.to(device), d.to(device)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=o.g_lr, betas=tuple(o.g_betas))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=o.d_lr, betas=tuple(o.d_betas))
        self.d_loss, self.g_loss = d_losses(config.loss.name)
        self.n_critic, self.device = t.n_critic, device

    def train_step(self, batches: Any, step: int) -> None:
        for _ in range(self.n_critic):
            real = next(batches)["image"]
            z = torch.randn(len(real), self.g.latent_dim, device=self.device)
            fake = self.g(z)
            self.opt_d.zero_grad()
            loss = self.d_loss(self.d(real).view(-1), self.d(fake.detach()).view(-1))
            loss.backward()
            self.opt_d.step()
        self.opt_g.zero_grad()
        z = torch.randn(len(real), self.g.latent_dim, device=self.device)
        loss = self.g_loss(self.d(self.g(z)).view(-1))
        loss.backward()
        self.opt_g.step()


class RandomBatches:
    """An endless stream of random image batches of a fixed shape (already on the device)."""

    def __init__(self, shape: tuple[int, ...], batch_size: int, device: torch.device, pool: int = 8) -> None:
        self.pool = [torch.rand(batch_size, *shape, device=device) * 2 - 1 for _ in range(pool)]
        self.i = 0

    def __next__(self) -> dict[str, torch.Tensor]:
        self.i += 1
        return {"image": self.pool[self.i % len(self.pool)]}


class GanforgeStep:
    """ganforge's recipe for ``config`` plus the trainer's EMA update: the work of one trainer step."""

    def __init__(self, config: Any, shape: tuple[int, ...], device: torch.device) -> None:
        dataset = Dataset(name="random", data=torch.zeros(config.train.batch_size, *shape, dtype=torch.uint8))
        self.recipe = RECIPES.get(config.recipe)(config, dataset, device)
        self.ema = EMA(self.recipe.generator, config.train.ema_decay)
        self.memory_format = self.recipe.memory_format
        if config.train.compile:
            compile_networks(self.recipe.networks.values())

    def train_step(self, batches: Any, step: int) -> None:
        self.recipe.train_step(batches, step)
        self.ema.update(self.recipe.generator, step + 1)


def measure(preset: str, args: argparse.Namespace, peaks: dict[str, float]) -> dict[str, Any]:
    changes = {"train.batch_size": args.batch_size, "train.device": args.device, "train.progress": False,
               **dict(parse_override(s) for s in args.set)}
    config = load_config(preset, changes)
    base = load_config(preset, {**changes, "train.precision": "fp32", "train.channels_last": False, "train.compile": False})
    res = config.data.resolution
    shape = (config.data.channels or 3, res, res)
    device = torch.device(args.device)
    torch.manual_seed(0)
    canonical = CanonicalLoop(base, shape, device)
    ours = GanforgeStep(config, shape, device)
    fmt = ours.memory_format
    runners = {
        "canonical": (canonical, RandomBatches(shape, args.batch_size, device)),
        "ganforge": (ours, _formatted(RandomBatches(shape, args.batch_size, device), fmt)),
    }
    flops = {name: count_step_flops(step, batches, 0) for name, (step, batches) in runners.items()}
    for name, (step, batches) in runners.items():  # warm-up (and compilation)
        for i in range(args.warmup):
            step.train_step(batches, i)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, (step, batches) in runners.items():
            sync(device)
            start = time.perf_counter()
            for i in range(args.steps):
                step.train_step(batches, i)
            sync(device)
            times[name].append((time.perf_counter() - start) / args.steps)
    images = args.batch_size * config.train.n_critic
    out: dict[str, Any] = {"preset": preset, "batch_size": args.batch_size, "n_critic": config.train.n_critic,
                           "settings": {"precision": config.train.precision, "channels_last": config.train.channels_last,
                                        "compile": config.train.compile}}
    peak = peaks["bf16"] if config.train.precision == "bf16" else peaks["fp32"]
    for name in runners:
        per_step = statistics.median(times[name])
        out[name] = {
            "ms_per_step": per_step * 1000, "img_per_s": images / per_step,
            "gflop_per_step": flops[name] / 1e9, "gflop_per_s": flops[name] / 1e9 / per_step,
            "all_ms": [t * 1000 for t in times[name]],
        }
    out["ratio"] = out["ganforge"]["img_per_s"] / out["canonical"]["img_per_s"]
    out["canonical"]["fraction_of_fp32_peak"] = out["canonical"]["gflop_per_s"] / peaks["fp32"]
    out["ganforge"]["fraction_of_peak"] = out["ganforge"]["gflop_per_s"] / peak
    # The limit: the canonical step's FLOPs at the best matrix-product rate this machine offers.
    out["limit_img_per_s"] = images / (flops["canonical"] / 1e9 / max(peaks.values()))
    return out


class _formatted:
    """Batches converted to the recipe's memory format, as ganforge's loader delivers them."""

    def __init__(self, batches: RandomBatches, fmt: torch.memory_format) -> None:
        for i, x in enumerate(batches.pool):
            batches.pool[i] = x.contiguous(memory_format=fmt)
        self.batches = batches

    def __next__(self) -> dict[str, torch.Tensor]:
        return next(self.batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="dcgan64-celeba,dcgan-cifar10,sngan-cifar10")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per block")
    parser.add_argument("--rounds", type=int, default=5, help="alternating blocks per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="ganforge-side config changes")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    peaks = {"fp32": matmul_peak(torch.float32, device), "bf16": matmul_peak(torch.bfloat16, device)}
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s "
          f"({torch.cuda.get_device_name() if device.type == 'cuda' else platform.processor() or 'CPU'}, "
          f"{args.threads} threads)")
    results = []
    for preset in args.presets.split(","):
        r = measure(preset, args, peaks)
        results.append(r)
        c, g = r["canonical"], r["ganforge"]
        print(f"{preset} (batch {r['batch_size']}, {r['settings']}): canonical {c['img_per_s']:.1f} img/s "
              f"({c['gflop_per_step']:.1f} GFLOP/step, {c['fraction_of_fp32_peak']:.0%} of fp32 peak), "
              f"ganforge {g['img_per_s']:.1f} img/s ({g['gflop_per_step']:.1f} GFLOP/step, "
              f"{g['fraction_of_peak']:.0%} of peak): {r['ratio']:.2f}x; limit ~{r['limit_img_per_s']:.0f} img/s",
              flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"peaks": peaks, "threads": args.threads, "device": str(device),
                                             "results": results}, indent=1))


if __name__ == "__main__":
    main()
