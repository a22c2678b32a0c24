"""Jobs whose worker died: put back on the queue within seconds, or failed after the last try.

Why not RQ's own mechanism: RQ 3's StartedJobRegistry keeps a running job under a score of
`job_timeout + 60` s from its start, a `SimpleWorker` never extends it while a job runs (only
the forking worker heartbeats), and the registry is cleaned on the maintenance interval (600 s):
a killed worker's job stayed `started` for 11 minutes, then failed. Its `Retry` would also retry
jobs that fail for a good reason (a file that is not an image). And `cleanup()` imports the
callbacks named in the job hash, which a job pushed by someone else could name.

So: each worker refreshes a heartbeat key with a 10 s TTL (`liveness`), and every worker runs
`reap` every few seconds. A job in the started registry whose worker has no fresh heartbeat is
requeued at the front of the queue (it was taken first) with its attempt counted up in its meta,
or, once `retries` requeues are spent, failed with a message a person can act on. A WATCH on the
job makes one reaper win when several find the same job. Delivery is at least once: a worker cut
off from Redis for longer than the TTL has its job run again elsewhere; classifying twice is
harmless.

A job can also be stranded before it starts: a worker moves it from the queue to RQ's
intermediate list, then loses Redis (or dies) before it marks it started, so it is in neither
the queue nor the started registry, and RQ's own clean-up fails it a minute later ("stuck in
intermediate queue"; measured in the Redis-kill chaos test). `reap` puts such a job back at the
front of the queue once it has sat there, not started, for `STRANDED_AFTER` seconds: a worker
that is alive starts a job it took within milliseconds.
"""

from __future__ import annotations

import logging

from redis import Redis, WatchError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.serializers import JSONSerializer
from rq.utils import as_text, parse_composite_key

from imgclf.jobs.liveness import is_alive
from imgclf.jobs.metrics import record_retry
from imgclf.jobs.queue import ATTEMPT_META_KEY, ERROR_META_KEY, make_queue

log = logging.getLogger(__name__)

REAP_INTERVAL = 3.0
"""Seconds between two looks for orphaned jobs: with the heartbeat's TTL of 10 s, a dead
worker's job is back on the queue within about 13 s."""


def gave_up_message(attempts: int) -> str:
    return (
        f"The worker classifying this image stopped unexpectedly {attempts} times in a row (it may have run "
        "out of memory on this image); the service gave up. Try a smaller image, or ask the operators."
    )


STRANDED_AFTER = 5.0
"""Seconds a job may sit taken off the queue but not started before it is put back."""

STRANDED_PREFIX = "imgclf:stranded:"
"""`imgclf:stranded:<job id>`: when a reaper first saw the job taken but not started."""


def reap(connection: Redis, retries: int, stranded_after: float = STRANDED_AFTER) -> int:
    """Requeue (or, past `retries`, fail) every started job whose worker is dead, and requeue jobs
    stranded between the queue and a start; returns how many jobs were handled."""
    queue = make_queue(connection)
    registry = queue.started_job_registry
    handled = 0
    started_ids = set()
    for raw in connection.zrange(registry.key, 0, -1):
        member = as_text(raw)  # type: ignore[arg-type]  # members, no scores asked
        job_id, execution_id = parse_composite_key(member)
        started_ids.add(job_id)
        owner = connection.hget(f"rq:execution:{member}", "worker_name") or connection.hget(
            Job.key_for(job_id), "worker_name"
        )
        worker_name = as_text(owner) if owner else ""
        if worker_name and is_alive(connection, worker_name):
            continue
        outcome = _recover(connection, queue, member, job_id, execution_id, worker_name, retries)
        if outcome:
            handled += 1
            record_retry(connection, outcome)
    for raw in connection.lrange(queue.intermediate_queue_key, 0, -1):
        job_id = as_text(raw)
        stranded = job_id not in started_ids and _stranded_for(connection, job_id) >= stranded_after
        if stranded and _return_to_queue(connection, queue, job_id):
            handled += 1
            record_retry(connection, "requeued")
    return handled


def _stranded_for(connection: Redis, job_id: str) -> float:
    """Seconds since a reaper first saw this job taken but not started (0 the first time), by the
    Redis server's clock: workers on other machines may have clocks of their own."""
    seconds, microseconds = connection.time()
    seen = seconds + microseconds / 1e6
    if connection.set(STRANDED_PREFIX + job_id, seen, nx=True, ex=STRANDED_MARK_TTL):
        return 0.0
    first = connection.get(STRANDED_PREFIX + job_id)
    return seen - float(first) if first else 0.0


STRANDED_MARK_TTL = 3600
"""Seconds a first-seen mark lives (a bound: marks are deleted when their job is put back)."""


def _return_to_queue(connection: Redis, queue: Queue, job_id: str) -> bool:
    """Move a stranded job from the intermediate list back to the front of the queue, unless a
    worker started it meanwhile (WATCH); a job whose hash expired is only dropped from the list."""
    job_key = Job.key_for(job_id)
    with connection.pipeline() as pipe:
        try:
            pipe.watch(queue.intermediate_queue_key, job_key)
            status = pipe.hget(job_key, "status")
            if pipe.lpos(queue.intermediate_queue_key, job_id) is None:
                return False
            exists = status is not None
            if status is not None and as_text(status) != JobStatus.QUEUED:
                return False  # started: the started registry is its way back
            pipe.multi()
            pipe.lrem(queue.intermediate_queue_key, 1, job_id)
            if exists:
                pipe.lpush(queue.key, job_id)
            pipe.delete(STRANDED_PREFIX + job_id)
            pipe.execute()
        except WatchError:
            return False
    if exists:
        log.warning("this job was taken off the queue but never started; queued again", extra={"job_id": job_id})
    return exists


def _recover(
    connection: Redis, queue: Queue, member: str, job_id: str, execution_id: str, worker_name: str, retries: int
) -> str | None:
    registry_key = queue.started_job_registry.key
    with connection.pipeline() as pipe:
        try:
            pipe.watch(Job.key_for(job_id), registry_key)
            if pipe.zscore(registry_key, member) is None:
                return None  # another reaper, or the worker itself, got there first
            try:
                job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
            except NoSuchJobError:
                pipe.multi()
                pipe.zrem(registry_key, member)
                pipe.execute()
                return None
            attempt = int(job.meta.get(ATTEMPT_META_KEY, 1))
            started = job.get_status(refresh=False) == JobStatus.STARTED
            pipe.multi()
            Execution(execution_id, job_id, connection, worker_name=worker_name).delete(job, pipe)
            outcome: str | None = None
            pipe.delete(STRANDED_PREFIX + job_id)
            if started and attempt <= retries:
                job.meta[ATTEMPT_META_KEY] = attempt + 1
                job.started_at = job.ended_at = None
                queue._enqueue_job(job, pipeline=pipe, at_front=True)
                outcome = "requeued"
            elif started:
                message = gave_up_message(attempt)
                job.meta[ERROR_META_KEY] = message
                pipe.hset(job.key, "meta", JSONSerializer.dumps(job.meta))
                record_job_failure(job, message, pipe)
                outcome = "gave_up"
            pipe.execute()
        except WatchError:
            return None
    if outcome == "requeued":
        log.warning(
            "worker %s died running this job; try %d queued", worker_name, attempt + 1, extra={"job_id": job_id}
        )
    elif outcome == "gave_up":
        log.error("worker %s died running this job on try %d; failed", worker_name, attempt, extra={"job_id": job_id})
    return outcome
