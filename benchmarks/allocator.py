"""Effect of ``ganforge.runtime.tune_allocator`` (glibc keeps freed blocks for reuse).

Runs the same work in fresh processes with the allocator tuning off and on, alternating
over ``--rounds`` so machine noise hits both alike, and prints the median speed of each
and their ratio. Work items:

* ``inception``: FID Inception-v3 features of a batch of 64 CIFAR-size (32x32) images
  (resized to 299 inside), timed over ``--iters`` batches after one warm-up batch;
* ``train``: the ``dcgan-digits`` training step (batch 64, 32x32), images/s over
  ``--iters`` steps after 3 warm-up steps.

    python benchmarks/allocator.py [--work inception,train] [--rounds 3] [--iters 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CHILD = r"""
import os, sys, time, torch
torch.set_num_threads({threads})
if os.environ["TUNE"] == "1":
    from ganforge.runtime import tune_allocator
    assert tune_allocator()
work, iters = {work!r}, {iters}
if work == "inception":
    from ganforge.extractors import inception as inc
    extractor = inc.InceptionExtractor(inc.read_state_dict(inc.default_weights()))
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        extractor.extract(x)
        start = time.perf_counter()
        for _ in range(iters):
            extractor.extract(x)
    print(64 * iters / (time.perf_counter() - start))
else:
    import ganforge
    config = ganforge.load_config("dcgan-digits", {{"train.progress": False}})
    trainer = ganforge.Trainer(config, "/tmp/ganforge-allocator-bench-unused")
    for step in range(3):
        trainer.recipe.train_step(trainer.loader, step)
    start = time.perf_counter()
    for step in range(iters):
        trainer.recipe.train_step(trainer.loader, step)
    float(trainer.recipe.generator.net[0].weight.sum())  # wait for the last step
    print(config.train.batch_size * iters / (time.perf_counter() - start))
"""


def measure(work: str, tune: bool, args: argparse.Namespace) -> float:
    env = {**os.environ, "TUNE": "1" if tune else "0", "GANFORGE_MALLOC_TUNING": "1" if tune else "0"}
    code = CHILD.format(threads=args.threads, work=work, iters=args.iters)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="inception,train")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for work in args.work.split(","):
        speeds: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.rounds):
            for tune in ((False, True) if r % 2 == 0 else (True, False)):
                speeds[tune].append(measure(work, tune, args))
        off, on = statistics.median(speeds[False]), statistics.median(speeds[True])
        print(f"{work:9} default malloc {off:7.1f} img/s   tuned {on:7.1f} img/s   ratio {on / off:.2f}x   "
              f"(rounds: off {', '.join(f'{s:.1f}' for s in speeds[False])}; on {', '.join(f'{s:.1f}' for s in speeds[True])})",
              flush=True)


if __name__ == "__main__":
    main()
