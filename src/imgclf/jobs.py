"""The only module that knows RQ: the queue, enqueueing a classification, reading a job back.

Jobs are stored with RQ's JSON serializer, so nothing read back from Redis is unpickled.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imgclf.cache import cached_ticket
from imgclf.errors import QueueUnavailable, UnknownJob

log = logging.getLogger(__name__)

QUEUE_NAME = "classification"
"""The FIFO queue web processes push to and workers pop from."""

CLASSIFY_TASK = "imgclf.tasks.classify"
"""The job function, by dotted path, so the web process never imports the worker side (torch)."""

ERROR_META_KEY = "error"
"""Job meta key where a worker leaves a message a person can read when a job fails."""

GENERIC_FAILURE = "The classification failed inside the worker; the operators can find the job id in its log."

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""RQ gives jobs uuid4 ids; anything else cannot be one of ours."""


def make_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def enqueue_classification(queue: Queue, model_id: str, image_id: str, *, job_timeout: int, result_ttl: int) -> str:
    """Put one classification on the queue and return its job id (the user's ticket)."""
    try:
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
    except RedisError as exc:
        raise QueueUnavailable() from exc
    log.info("queued %s on %s", model_id, image_id, extra={"job_id": job.id})
    return job.id


@dataclass(frozen=True)
class JobView:
    """What GET /classifications/{job_id} answers."""

    task_status: str
    data: list[list[Any]] | None
    error: str | None = None
    model_id: str | None = None
    image_id: str | None = None
    cached: bool = False

    def as_contract(self) -> dict[str, Any]:
        """The lesson's JSON: task_status and data, plus error when the job failed and
        `cached: true` when the result came from the result cache."""
        body: dict[str, Any] = {"task_status": self.task_status, "data": self.data}
        if self.error is not None:
            body["error"] = self.error
        if self.cached:
            body["cached"] = True
        return body


MAX_WAIT_SECONDS = 30
"""Longest a status request may wait for its job to end (long polling)."""

PENDING = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED})


def fetch_job_view(connection: Redis, job_id: str, wait: int = 0) -> JobView:
    """Status and, once finished, the top-5 of one job; UnknownJob if there is no such job.

    With `wait` seconds, a job that has not ended yet is waited for (up to that long) on its
    RQ result stream, so a client gets the result in one request instead of polling.
    """
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise UnknownJob(job_id)
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        status = job.get_status(refresh=False)
        if wait and status in PENDING:
            job.latest_result(timeout=min(wait, MAX_WAIT_SECONDS))
            status = job.get_status(refresh=True)
        data = job.return_value() if status == JobStatus.FINISHED else None
    except NoSuchJobError as exc:
        cached = _cached(connection, job_id)
        if cached is None:
            raise UnknownJob(job_id) from exc
        return cached
    except RedisError as exc:
        raise QueueUnavailable() from exc
    error = None
    if status == JobStatus.FAILED:
        error = str(job.meta.get(ERROR_META_KEY) or GENERIC_FAILURE)
    model_id, image_id = [*list(job.args or ()), None, None][:2]
    return JobView(status.value, data, error, model_id, image_id)


def _cached(connection: Redis, job_id: str) -> JobView | None:
    try:
        data = cached_ticket(connection, job_id)
    except RedisError as exc:
        raise QueueUnavailable() from exc
    return None if data is None else JobView(JobStatus.FINISHED.value, data, cached=True)
