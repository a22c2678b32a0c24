"""Canceling a job (DELETE): a queued job never runs, a finished one loses its result at once.

RQ's own `Job.cancel` takes a job off the queue and marks it canceled, but a worker that is
already running it would still write its result and mark it finished. So a cancel also leaves a
marker that outlives the job's run: the worker checks it before it starts and before it stores
anything, and the status routes show a marked job as canceled, without a result, whatever RQ says.
"""

from __future__ import annotations

import contextlib

from redis import Redis
from rq.exceptions import InvalidJobOperation
from rq.job import Job
from rq.results import Result

from imgclf.images.adjustments import from_job
from imgclf.jobs import uploads
from imgclf.jobs.cache import cache_key, forget_in_flight, in_flight_key
from imgclf.jobs.queue import IMAGE_META_KEY

PREFIX = "imgclf:canceled:"


def cancel_job(connection: Redis, job: Job, ttl: int) -> None:
    """Cancel `job`: off the queue, its result deleted, its uploaded photo released; it stays
    readable as canceled for `ttl` seconds. Canceling it again changes nothing (DELETE is idempotent)."""
    mark(connection, job.id, ttl)
    with contextlib.suppress(InvalidJobOperation):  # canceled before
        job.cancel()  # off the queue: a queued job never runs
    Result.delete_all(job)
    connection.expire(job.key, ttl)
    image = job.meta.get(IMAGE_META_KEY) or {}
    model_id = job.args[0] if job.args else None
    if image.get("kind") == "upload":
        sha256 = str(image["sha256"])
        uploads.release(connection, sha256, job.id)
        if model_id:
            # The person deleted their photo's job: the service keeps no answer about that photo either.
            adjustments = from_job(job.args[2] if len(job.args) > 2 else None)
            connection.delete(cache_key(model_id, sha256, adjustments))
            forget_in_flight(connection, in_flight_key(model_id, sha256, adjustments), job.id)


def mark(connection: Redis, job_id: str, ttl: int) -> None:
    connection.set(PREFIX + job_id, 1, ex=ttl)


def is_canceled(connection: Redis, job_id: str) -> bool:
    return bool(connection.exists(PREFIX + job_id))
