"""One worker thread in front of the one model: admission by a pixel budget, a bounded queue and
micro-batching.

Memory grows with pixels, not with requests (a 4096² mask costs ~300 MB on its way through
decoding, the model's framing and encoding; a 512² one ~5 MB), so a request reserves its mask's
pixel count from a ``Budget`` before it is decoded and returns it once its answer is encoded;
past the budget it is refused at once with Busy (503). Admitted jobs wait in a queue of at most
``queue_size`` (also Busy when full). The worker only runs the model (``Predictor.forward``):
framing, unframing and PNG encoding happen in the requests' own threads, in parallel. It takes
the first job, then keeps collecting for ``window_s`` or until ``max_batch`` jobs, and runs them
in as few ``Predictor.forward`` calls as their seeds allow
(a call is seeded once, so jobs are grouped by seed). If a batch fails, its jobs are retried one
by one so one bad job cannot fail its neighbours.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from maskel.errors import Busy, MaskelError
from maskel.infer import Drawn, Predictor, Prepared

log = logging.getLogger("maskel.serve")


class Budget:
    """Pixels in flight across all requests (thread-safe); ``reserve`` raises Busy past ``limit``.

    One request larger than the whole budget is still admitted when nothing else is in flight, so
    the budget bounds concurrency, never the largest allowed mask (that is ``--max-pixels``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def reserve(self, pixels: int) -> None:
        with self._lock:
            if self.used and self.used + pixels > self.limit:
                raise Busy(f"the server is busy with {self.used} pixels of masks in flight (budget {self.limit}); retry shortly")
            self.used += pixels

    def release(self, pixels: int) -> None:
        with self._lock:
            self.used -= pixels


@dataclass
class Job:
    prepared: Prepared  # framed in the request's thread: the worker only runs the model
    seed: int
    labels: bool
    enqueued: float = field(default_factory=time.perf_counter)
    future: Future = field(default_factory=Future)


def _fail(job: Job, error: Exception) -> None:
    if not isinstance(error, MaskelError):
        log.error("prediction failed", exc_info=error)
    job.future.set_exception(error)


class Batcher:
    def __init__(self, predictor: Predictor, max_batch: int = 8, queue_size: int = 64, window_s: float = 0.01) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self.window_s = window_s
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self.dropped = 0  # jobs cancelled before they ran (their clients left)
        self._thread = threading.Thread(target=self._run, name="maskel-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Future:
        """Queue a job; raises Busy when the queue is at capacity. Cancelling the returned future
        (its client went away) before its batch starts drops the job unrun."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Busy("the request queue is full; retry shortly") from None
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs, then stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _collect(self, first: Job) -> tuple[list[Job], bool]:
        jobs, deadline = [first], time.perf_counter() + self.window_s
        while len(jobs) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._collect(first)
            groups: dict[int, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.seed, []).append(job)
            for group in groups.values():
                self._predict(group)
            if stop:
                return

    def _predict(self, jobs: list[Job]) -> None:
        live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        if len(live) < len(jobs):
            self.dropped += len(jobs) - len(live)
            log.info("dropped %d queued request(s) whose clients left (%d in all)", len(jobs) - len(live), self.dropped)
        if not live:
            return
        try:
            results = self._call(live)
        except Exception as e:
            if len(live) == 1:
                _fail(live[0], e)
                return
            for job in live:  # isolate the failing job(s)
                try:
                    job.future.set_result(self._call([job])[0])
                except Exception as e1:
                    _fail(job, e1)
            return
        for job, result in zip(live, results, strict=True):
            job.future.set_result(result)

    def _call(self, jobs: list[Job]) -> list[Drawn]:
        start = time.perf_counter()
        results = self.predictor.forward([j.prepared for j in jobs], seed=jobs[0].seed, labels=any(j.labels for j in jobs))
        for job, r in zip(jobs, results, strict=True):
            r.timings["queue_ms"] = round((start - job.enqueued) * 1000, 2)
            if not job.labels:
                r.labels = None
        return results
