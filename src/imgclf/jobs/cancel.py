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
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job
from rq.results import Result
from rq.utils import as_text

from imgclf.images.adjustments import from_job
from imgclf.jobs import uploads
from imgclf.jobs.cache import cache_key, forget_in_flight, in_flight_key
from imgclf.jobs.queue import IMAGE_META_KEY

PREFIX = "imgclf:canceled:"


def cancel_job(connection: Redis, job: Job, ttl: int) -> None:
    """Cancel `job`: off the queue, its result deleted, its uploaded photo released; it stays
    readable as canceled for `ttl` seconds. Canceling it again changes nothing (DELETE is idempotent)."""
    mark(connection, job.id, ttl)
    _cancel_in_rq(connection, job)  # off the queue: a queued job never runs
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


def _cancel_in_rq(connection: Redis, job: Job) -> None:
    """RQ's `Job.cancel`, made safe against a run that ends while it reads.

    RQ reads a job's execution ids, then each execution's record, in separate round trips, and
    raises ValueError for an id whose record is gone: a run that ended between the two reads (a
    DELETE of a job just finishing answered 500 once in CI), or a record that expired, since RQ
    keeps the ids 60 s longer than the records. Such an id names nothing: it is forgotten and the
    cancel tried again. An execution's record and its id are written in one transaction, so an id
    without a record never belongs to a run still going."""
    with contextlib.suppress(InvalidJobOperation):  # canceled before
        try:
            job.cancel()
        except ValueError:
            _forget_vanished_executions(connection, job.id)
            job.cancel()


def _forget_vanished_executions(connection: Redis, job_id: str) -> None:
    registry = ExecutionRegistry(job_id, connection)
    for raw in connection.zrange(registry.key, 0, -1):
        execution_id = as_text(raw)  # type: ignore[arg-type]  # members, no scores asked
        if not connection.exists(Execution(execution_id, job_id, connection).key):
            connection.zrem(registry.key, execution_id)


def mark(connection: Redis, job_id: str, ttl: int) -> None:
    connection.set(PREFIX + job_id, 1, ex=ttl)


def is_canceled(connection: Redis, job_id: str) -> bool:
    return bool(connection.exists(PREFIX + job_id))
