"""Micro-batching: concurrent requests share one generator call.

Each request draws its own latents (its seeds and truncation) and labels, then submits them.
A single worker task takes the first waiting job, waits a few milliseconds for others, and
runs the generator once, in a worker thread, on everything gathered (up to ``max_batch``
samples); each job gets its slice of the output back.

:func:`padded_forward` runs the generator on fixed-size batches (padding the last one), so a
sample's pixels depend only on its own latent and label, never on which requests it happened
to share a batch with: batched and unbatched results are bit-identical.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..models.base import Generator

#: ``run(z [N, D], labels [N] or None) -> samples [N, ...]`` on the CPU.
Runner = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


@torch.no_grad()
def padded_forward(generator: Generator, z: torch.Tensor, labels: torch.Tensor | None, batch_size: int) -> torch.Tensor:
    """Samples ``[N, ...]`` for ``z [N, D]`` computed in batches of exactly ``batch_size`` (zero padded).

    Kernels may pick different algorithms for different batch sizes (last-bit differences);
    one fixed size makes every sample's result independent of its batch-mates.
    """
    out = []
    for start in range(0, len(z), batch_size):
        chunk = z[start : start + batch_size]
        count = len(chunk)
        padded = torch.zeros((batch_size, *chunk.shape[1:]), dtype=chunk.dtype)
        padded[:count] = chunk
        padded_labels = None
        if labels is not None:
            padded_labels = torch.zeros(batch_size, dtype=torch.long)
            padded_labels[:count] = labels[start : start + batch_size]
            padded_labels = padded_labels.to(generator.device)
        out.append(generator.decode(generator(padded.to(generator.device), padded_labels)[:count]).float().cpu())
    return torch.cat(out)


@dataclass
class _Job:
    z: torch.Tensor  # [n, D]
    labels: torch.Tensor | None  # [n]
    future: asyncio.Future[torch.Tensor]


@dataclass
class BatchStats:
    """Counters: requests submitted, generator calls (batches) run, samples generated."""

    requests: int = 0
    batches: int = 0
    samples: int = 0
    largest_batch: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class MicroBatcher:
    """Merges jobs arriving within ``wait_ms`` of each other into one call of ``run`` (at most ``max_batch`` samples).

    Calls of ``run`` happen one at a time in a worker thread (``asyncio.to_thread``), so the
    event loop keeps accepting requests while the generator works. The worker starts on the
    first :meth:`submit` in the running event loop (and again if the loop changes).
    """

    run: Runner
    max_batch: int = 64
    wait_ms: float = 5.0
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Samples for latents ``z [n, D]`` (and labels ``[n]``), computed in a shared batch."""
        queue = self._ensure_worker()
        future: asyncio.Future[torch.Tensor] = asyncio.get_running_loop().create_future()
        self.stats.requests += 1
        await queue.put(_Job(z, labels, future))
        return await future

    async def close(self) -> None:
        """Stop the worker (pending jobs are cancelled)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def _ensure_worker(self) -> asyncio.Queue[_Job]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._task is None or self._task.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._work(self._queue), name="ganforge-microbatcher")
        return self._queue

    async def _work(self, queue: asyncio.Queue[_Job]) -> None:
        carry: _Job | None = None
        while True:
            first = carry if carry is not None else await queue.get()
            carry = None
            jobs, size = [first], len(first.z)
            if size < self.max_batch and self.wait_ms > 0:
                await asyncio.sleep(self.wait_ms / 1000)  # let concurrent requests arrive
            while size < self.max_batch and not queue.empty():
                job = queue.get_nowait()
                if size + len(job.z) > self.max_batch:
                    carry = job  # starts the next batch
                    break
                jobs.append(job)
                size += len(job.z)
            jobs = [job for job in jobs if not job.future.done()]  # drop requests whose client went away
            if jobs:
                await self._run_batch(jobs)

    async def _run_batch(self, jobs: list[_Job]) -> None:
        z = torch.cat([job.z for job in jobs])
        labels = None if jobs[0].labels is None else torch.cat([job.labels for job in jobs])  # type: ignore[misc]
        self.stats.batches += 1
        self.stats.samples += len(z)
        self.stats.largest_batch = max(self.stats.largest_batch, len(z))
        try:
            out = await asyncio.to_thread(self.run, z, labels)
        except Exception as err:  # surfaces in each request; the worker lives on
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(err)
            return
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(out[start : start + len(job.z)])
            start += len(job.z)
