"""Submitting a classification: refused past the client's rate limit, answered from the result
cache when the same model has already classified the same image bytes, else queued for a worker
(refused when the queue is at its bound)."""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from imgclf.config import Settings
from imgclf.errors import QueueFull, TooManyRequests
from imgclf.images.digests import FileDigests
from imgclf.jobs import rate_limit
from imgclf.jobs.cache import answer_from_cache, cache_key
from imgclf.jobs.liveness import live_workers
from imgclf.jobs.metrics import mean_job_seconds, record_rejection
from imgclf.jobs.queue import CLASSIFY_TASK, make_queue, queue_errors

log = logging.getLogger(__name__)

RETRY_AFTER_MAX = 60
"""Longest Retry-After the service suggests; past it a client should just try again later."""


def submit(
    connection: Redis,
    settings: Settings,
    digests: FileDigests,
    model_id: str,
    image_id: str,
    image: Path,
    client: str | None = None,
) -> str:
    """The job id (the user's ticket) of one classification of the catalogue image `image_id`
    (the file `image`); both ids already validated. `client` is counted against the rate limit.

    Raises TooManyRequests, QueueFull or QueueUnavailable, each with a Retry-After.
    """
    try:
        with queue_errors():
            if settings.rate_limit_per_minute and client:
                rate_limit.take(connection, client, settings.rate_limit_per_minute)
            if settings.result_cache_ttl:
                key = cache_key(model_id, digests.of(image))
                cached = answer_from_cache(connection, key, model_id, image_id, settings.result_ttl)
                if cached is not None:
                    return cached
            return _enqueue(make_queue(connection), settings, model_id, image_id)
    except (TooManyRequests, QueueFull) as exc:
        with contextlib.suppress(RedisError):  # a metric must not hide the real answer
            record_rejection(connection, "rate_limited" if isinstance(exc, TooManyRequests) else "queue_full")
        raise


def _enqueue(queue: Queue, settings: Settings, model_id: str, image_id: str) -> str:
    """Put one classification on the queue; QueueFull when `max_queued_jobs` wait already: a
    bound, so a flood gets a clear "come back later" instead of a queue that grows until Redis
    runs out of memory."""
    bound = settings.max_queued_jobs
    _refuse_past(queue, bound, queue.count)
    job = queue.enqueue(
        CLASSIFY_TASK,
        model_id,
        image_id,
        job_timeout=settings.job_timeout,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.result_ttl,
        # A job nobody picked up within this time is dropped instead of running for nobody.
        ttl=settings.result_ttl,
    )
    # Requests in flight together all pass the first check; looking again after the push keeps
    # the bound exact. The job is withdrawn only if no worker has taken it yet.
    waiting = queue.count
    if waiting > bound and queue.connection.lrem(queue.key, 1, job.id):
        job.delete()
        _refuse_past(queue, bound, waiting)
    log.info("queued %s on %s", model_id, image_id, extra={"job_id": job.id})
    return job.id


def _refuse_past(queue: Queue, bound: int, waiting: int) -> None:
    if waiting >= bound:
        raise QueueFull(waiting, seconds_to_drain(queue.connection, waiting - bound + 1))


def seconds_to_drain(connection: Redis, jobs: int) -> int:
    """Seconds the ready workers need for `jobs` more jobs, from the measured mean job time."""
    workers = len(live_workers(connection))
    mean = mean_job_seconds(connection)
    if not workers or mean is None:
        return 5 if workers else 30
    return max(1, min(RETRY_AFTER_MAX, math.ceil(jobs * mean / workers)))
