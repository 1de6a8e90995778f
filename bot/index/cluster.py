"""Hash a build's batches on a Dask distributed cluster; the shards are still written here.

Each batch becomes one task that reads its slice of the source ON THE WORKER (so the sources must
be reachable from every worker under the same path: a shared filesystem, or URL lists), hashes it
and sends back the compact arrays of :class:`bot.index.batches.BatchResult`. The client keeps a
bounded number of tasks in flight and writes the shards in unit order as their results arrive,
with the same resume and append rules as a local build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.config import Settings
from bot.index.batches import BatchResult, BatchRunner, HashingProcessDiedError, hash_batch
from bot.index.units import ReadTask

# Tasks in flight per worker thread: one running, one queued on the worker so it never waits for
# the scheduler, and slack for results waiting behind a slower batch at the head of the line.
_IN_FLIGHT_PER_THREAD = 3
_MIN_IN_FLIGHT = 8
# Batches 8x the local size (256 pictures, ~2 s of work): a scheduler spends about a millisecond per
# task, so at 32 pictures a task it would top out near 1,000 tasks/s = 32,000 pictures/s, the rate
# of ~250 cores; at 256 the same scheduler keeps ~2,000 cores fed.
_TASK_SCALE = 8


class DaskRunner:
    """Submits batches to a ``distributed.Client``; results come back in submission order."""

    def __init__(self, client: object, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        threads = sum(client.nthreads().values())  # type: ignore[attr-defined]
        self.max_in_flight = max(_MIN_IN_FLIGHT, _IN_FLIGHT_PER_THREAD * threads)
        self.task_scale = _TASK_SCALE

    def submit(self, task: ReadTask) -> Callable[[], BatchResult]:
        from distributed import KilledWorker

        # pure=False: two equal tasks (a source named twice) must still be two results.
        future = self._client.submit(hash_batch, task, self._settings, pure=False)  # type: ignore[attr-defined]

        def wait() -> BatchResult:
            try:
                return future.result()
            except KilledWorker as exc:  # the scheduler gave up after several workers died on it
                raise HashingProcessDiedError(
                    f"Dask workers kept dying on a batch of {task.path} (out of memory, or a picture "
                    "that crashes the decoder)"
                ) from exc

        return wait


@contextmanager
def dask_runner(address: str, settings: Settings) -> Iterator[BatchRunner]:
    """Connect to the scheduler at ``address`` (``tcp://host:8786``) for the length of a build."""
    from distributed import Client

    with Client(address) as client:
        yield DaskRunner(client, settings)
