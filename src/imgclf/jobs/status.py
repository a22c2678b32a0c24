"""A job id -> what its status route answers, and waiting (without a thread) for a job to end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import MaxConnectionsError
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer

from imgclf.errors import UnknownJob
from imgclf.jobs import cancel
from imgclf.jobs.queue import (
    ATTEMPT_META_KEY,
    CACHED_META_KEY,
    ERROR_META_KEY,
    GENERIC_FAILURE,
    JOB_ID_PATTERN,
    QUEUE_NAME,
    queue_errors,
)
from imgclf.jobs.results import as_lesson_data

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 30
"""Longest a status request of the lesson's route may wait for its job to end (long polling)."""

API_MAX_WAIT_SECONDS = 60
"""Longest GET /api/v1/classifications/{id}?wait=N may wait."""

MAX_LONG_POLLS = 1_000
"""Long polls one web process keeps waiting at once (each holds a Redis connection); past it a
status request answers at once, as without `wait`."""

PENDING = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED})


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


def fetch_job(connection: Redis, job_id: str) -> Job:
    """One of the service's jobs by id; UnknownJob if there is no such job of ours."""
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise UnknownJob(job_id)
    with queue_errors():
        return _ours(job_id, connection.hgetall(Job.key_for(job_id)), connection)


def _ours(job_id: str, raw: Mapping[Any, Any], connection: Redis) -> Job:
    """The job stored as `raw` (its hash), if it is one of the service's; else UnknownJob."""
    try:
        if not raw:
            raise NoSuchJobError(job_id)
        job = Job(job_id, connection=connection, serializer=JSONSerializer)
        job.restore(raw)
    except NoSuchJobError as exc:
        raise UnknownJob(job_id) from exc
    except DeserializationError as exc:  # a job of another application (pickled): not ours
        raise UnknownJob(job_id) from exc
    if job.origin != QUEUE_NAME:
        raise UnknownJob(job_id)
    return job


def read_status(connection: Redis, job: Job) -> tuple[str, Any]:
    """RQ's status (or `canceled` for a job DELETE canceled) and, once finished, the stored result."""
    with queue_errors():
        if cancel.is_canceled(connection, job.id):
            return JobStatus.CANCELED.value, None
        status = job.get_status(refresh=False)
        result = job.return_value() if status == JobStatus.FINISHED else None
    return status.value, result


async def read_job_view(connection: AsyncRedis, owner: Redis, job_id: str, wait: float = 0) -> JobView:
    """What GET /classifications/{job_id} answers; UnknownJob if there is no such job of ours.
    (`owner`: the synchronous connection RQ's Job objects must carry; nothing is sent on it.)

    With `wait`, a job still pending is waited for (`wait_for_end`), then read again. Each read is
    one pipelined round trip on the asyncio client (the job's hash, the cancel mark, its latest
    result), with no thread: this route is what every client polls, so it is kept the cheapest
    (RQ's `Job.fetch` + `return_value()` + the cancel check were three round trips in a thread).
    """
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise UnknownJob(job_id)
    with queue_errors():
        try:
            view = await _read_view(connection, owner, job_id)
            if wait and view.pending:
                await wait_for_end(connection, job_id, wait)
                view = await _read_view(connection, owner, job_id)
        except MaxConnectionsError:
            # MAX_LONG_POLLS requests hold every connection of the asyncio pool: this one answers
            # at once, read on the synchronous client in a thread, as without `wait`.
            log.info("status read on the synchronous client: %d long polls wait", MAX_LONG_POLLS)
            view = await asyncio.to_thread(_read_view_now, owner, job_id)
    return view


def _read_view_now(connection: Redis, job_id: str) -> JobView:
    job = fetch_job(connection, job_id)
    status, result = read_status(connection, job)
    return _view(job, status, result)


async def _read_view(connection: AsyncRedis, owner: Redis, job_id: str) -> JobView:
    pipe = connection.pipeline(transaction=False)
    pipe.hgetall(Job.key_for(job_id))
    pipe.exists(cancel.PREFIX + job_id)
    # After the hash: RQ writes a job's status and its result in one transaction, so a job read
    # as finished has its result here already.
    pipe.xrevrange(Result.get_key(job_id), "+", "-", count=1)
    raw, canceled, latest = await pipe.execute()
    job = _ours(job_id, raw, owner)
    if canceled:
        return _view(job, JobStatus.CANCELED.value, None)
    status = job.get_status(refresh=False)
    result = None
    if status == JobStatus.FINISHED and latest:
        result_id, payload = latest[0]
        stored = Result.restore(job_id, result_id.decode(), payload, connection=owner, serializer=JSONSerializer)
        result = stored.return_value if stored.type == Result.Type.SUCCESSFUL else None
    return _view(job, status.value, result)


def _view(job: Job, status: str, result: Any) -> JobView:
    error = None
    if status == JobStatus.FAILED:
        error = str(job.meta.get(ERROR_META_KEY) or GENERIC_FAILURE)
    return JobView(
        status,
        as_lesson_data(result),
        error,
        cached=bool(job.meta.get(CACHED_META_KEY)),
        attempt=int(job.meta.get(ATTEMPT_META_KEY, 1)),
    )


async def wait_if_unended(connection: AsyncRedis, job_id: str, seconds: float) -> None:
    """Long polling before reading the job: wait (`wait_for_end`) unless the job does not exist or
    was canceled; one that already has a result returns at once. The caller then reads the job
    once, where reading, waiting and reading again cost one read more per request (about 1 ms of
    the web process's CPU, and two round trips to Redis, per job)."""
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise UnknownJob(job_id)
    with queue_errors():
        pipe = connection.pipeline(transaction=False)
        pipe.exists(Job.key_for(job_id))
        pipe.exists(cancel.PREFIX + job_id)
        try:
            exists, canceled = await pipe.execute()
        except MaxConnectionsError:  # MAX_LONG_POLLS wait already: the caller reads the job at once
            return
    if exists and not canceled:
        await wait_for_end(connection, job_id, seconds)


async def wait_for_end(connection: AsyncRedis, job_id: str, seconds: float) -> None:
    """Return when the job has a result (finished or failed), or after `seconds`.

    Blocks on the job's RQ result stream (what `Job.latest_result(timeout)` reads) with the
    asyncio client, so a waiting request holds no thread: 200 long polls cost 200 idle sockets.
    """
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise UnknownJob(job_id)
    with queue_errors():
        try:
            # "0-0": a result written since the caller last looked is returned at once.
            await connection.xread({Result.get_key(job_id): "0-0"}, count=1, block=max(1, int(seconds * 1000)))
        except MaxConnectionsError:
            # MAX_LONG_POLLS are waiting already: this one answers at once and the client polls again.
            log.info("long poll answered at once: %d waiting already", MAX_LONG_POLLS, extra={"job_id": job_id})
