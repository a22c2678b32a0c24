"""The only module that knows RQ: the queue, enqueueing a classification, reading a job back.

Jobs are stored with RQ's JSON serializer, so nothing read back from Redis is unpickled.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import MaxConnectionsError, RedisError
from rq import Queue
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer

from imgclf.errors import QueueFull, QueueUnavailable, UnknownJob
from imgclf.jobs.cache import cached_ticket
from imgclf.jobs.liveness import live_workers
from imgclf.jobs.metrics import mean_job_seconds

log = logging.getLogger(__name__)

QUEUE_NAME = "classification"
"""The FIFO queue web processes push to and workers pop from."""

CLASSIFY_TASK = "imgclf.worker.tasks.classify"
"""The job function, by dotted path, so the web process never imports the worker side (torch)."""

ALLOWED_TASKS = frozenset({CLASSIFY_TASK})
"""The only functions a worker runs: anything else found on the queue fails without running."""

ERROR_META_KEY = "error"
"""Job meta key where a worker leaves a message a person can read when a job fails."""

GENERIC_FAILURE = "The classification failed inside the worker; the operators can find the job id in its log."

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""RQ gives jobs uuid4 ids; anything else cannot be one of ours."""


def make_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


ATTEMPT_META_KEY = "attempt"
"""Job meta key: which try this is (absent: the first); the reaper counts it up when it requeues."""


def enqueue_classification(
    queue: Queue, model_id: str, image_id: str, *, job_timeout: int, result_ttl: int, max_queued: int
) -> str:
    """Put one classification on the queue and return its job id (the user's ticket).

    Raises QueueFull when `max_queued` jobs wait already: a bound, so a flood gets a clear
    "come back later" instead of a queue that grows until Redis runs out of memory.
    """
    try:
        _refuse_past(queue, max_queued, queue.count)
        job = queue.enqueue(
            CLASSIFY_TASK,
            model_id,
            image_id,
            job_timeout=job_timeout,
            result_ttl=result_ttl,
            failure_ttl=result_ttl,
            # A job nobody picked up within this time is dropped instead of running for nobody.
            ttl=result_ttl,
        )
        # Requests in flight together all pass the first check; looking again after the push
        # keeps the bound exact. The job is withdrawn only if no worker has taken it yet.
        waiting = queue.count
        if waiting > max_queued and queue.connection.lrem(queue.key, 1, job.id):
            job.delete()
            _refuse_past(queue, max_queued, waiting)
    except RedisError as exc:
        raise QueueUnavailable() from exc
    log.info("queued %s on %s", model_id, image_id, extra={"job_id": job.id})
    return job.id


def _refuse_past(queue: Queue, max_queued: int, waiting: int) -> None:
    if waiting >= max_queued:
        raise QueueFull(waiting, seconds_to_drain(queue.connection, waiting - max_queued + 1))


RETRY_AFTER_MAX = 60
"""Longest Retry-After the service suggests; past it a client should just try again later."""


def seconds_to_drain(connection: Redis, jobs: int) -> int:
    """Seconds the ready workers need for `jobs` more jobs, from the measured mean job time."""
    workers = len(live_workers(connection))
    mean = mean_job_seconds(connection)
    if not workers or mean is None:
        return 5 if workers else 30
    return max(1, min(RETRY_AFTER_MAX, math.ceil(jobs * mean / workers)))


@dataclass(frozen=True)
class JobView:
    """What GET /classifications/{job_id} answers."""

    task_status: str
    data: list[list[Any]] | None
    error: str | None = None
    cached: bool = False
    attempt: int = 1

    @property
    def pending(self) -> bool:
        return self.task_status in PENDING

    def as_contract(self) -> dict[str, Any]:
        """The lesson's JSON: task_status and data, plus error when the job failed, `cached: true`
        when the result came from the result cache, and `attempt` from the second try on."""
        body: dict[str, Any] = {"task_status": self.task_status, "data": self.data}
        if self.error is not None:
            body["error"] = self.error
        if self.cached:
            body["cached"] = True
        if self.attempt > 1:
            body["attempt"] = self.attempt
        return body


MAX_WAIT_SECONDS = 30
"""Longest a status request may wait for its job to end (long polling)."""

MAX_LONG_POLLS = 1_000
"""Long polls one web process keeps waiting at once (each holds a Redis connection); past it a
status request answers at once, as without `wait`."""

PENDING = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED})


def fetch_job_view(connection: Redis, job_id: str) -> JobView:
    """Status and, once finished, the top-5 of one job; UnknownJob if there is no such job of ours."""
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise UnknownJob(job_id)
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        if job.origin != QUEUE_NAME:
            raise UnknownJob(job_id)
        status = job.get_status(refresh=False)
        data = job.return_value() if status == JobStatus.FINISHED else None
    except NoSuchJobError as exc:
        cached = _cached(connection, job_id)
        if cached is None:
            raise UnknownJob(job_id) from exc
        return cached
    except DeserializationError as exc:  # a job of another application (pickled): not ours
        raise UnknownJob(job_id) from exc
    except RedisError as exc:
        raise QueueUnavailable() from exc
    error = None
    if status == JobStatus.FAILED:
        error = str(job.meta.get(ERROR_META_KEY) or GENERIC_FAILURE)
    return JobView(status.value, data, error, attempt=int(job.meta.get(ATTEMPT_META_KEY, 1)))


async def wait_for_end(connection: AsyncRedis, job_id: str, seconds: float) -> None:
    """Return when the job has a result (finished or failed), or after `seconds`.

    Blocks on the job's RQ result stream (what `Job.latest_result(timeout)` reads) with the
    asyncio client, so a waiting request holds no thread: 200 long polls cost 200 idle sockets.
    """
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise UnknownJob(job_id)
    try:
        # "0-0": a result written since the caller last looked is returned at once.
        await connection.xread({Result.get_key(job_id): "0-0"}, count=1, block=max(1, int(seconds * 1000)))
    except MaxConnectionsError:
        # MAX_LONG_POLLS are waiting already: this one answers at once and the client polls again.
        log.info("long poll answered at once: %d waiting already", MAX_LONG_POLLS, extra={"job_id": job_id})
    except RedisError as exc:
        raise QueueUnavailable() from exc


def _cached(connection: Redis, job_id: str) -> JobView | None:
    try:
        data = cached_ticket(connection, job_id)
    except RedisError as exc:
        raise QueueUnavailable() from exc
    return None if data is None else JobView(JobStatus.FINISHED.value, data, cached=True)
