"""RQ's SimpleWorker, made to run nothing but the service's own tasks, with their context."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.job_lifecycle import record_job_failure

from imgclf.errors import ServiceError
from imgclf.jobs.liveness import beat, forget
from imgclf.jobs.queue import CALLBACK_META_KEY
from imgclf.jobs.resource import describe
from imgclf.jobs.webhooks import WebhookSender
from imgclf.worker.context import WorkerContext
from imgclf.worker.tasks import TASKS
from imgclf.worker.upkeep import Upkeep

log = logging.getLogger(__name__)

RQ_HEARTBEAT_EVERY = 1.0
"""Seconds between two of RQ's own worker heartbeats, at most one a second (see
`ClassificationWorker.heartbeat`)."""

RECONNECT_BACKOFF_MAX = 10.0
"""Longest wait between two attempts to reach a Redis that went away (doubling from 1 s): a
worker is back at most this long after Redis is."""


class ContextJob(Job):
    """A job whose function is looked up in `TASKS` and called with the worker's context.

    RQ would import whatever dotted path a job names; this class never imports anything a job
    says: the name only selects one of the service's own functions, which gets the context the
    worker built at start (models, catalogue) as its first argument. No module-level state.
    """

    context: WorkerContext | None = None

    @property
    def func(self) -> Callable[..., Any] | None:
        task = TASKS.get(self.func_name or "")
        if task is None or self.context is None:
            return None  # RQ fails the job: "Cannot execute job: function is None"
        return functools.partial(task, self.context)


class ClassificationWorker(SimpleWorker):
    """RQ's SimpleWorker that runs only the service's own tasks and beats while registered.

    SimpleWorker runs each job in this process. RQ's default Worker forks a child per job, and a
    forked child hangs in torch once the parent has run a model (OpenMP's thread pool does not
    survive fork); forking would also lose the point of loading the models once.
    """

    job_class = ContextJob
    # RQ's own retry while idle in dequeue would otherwise double up to 60 s.
    max_connection_wait_time = RECONNECT_BACKOFF_MAX

    def __init__(
        self, *args: Any, upkeep: Upkeep, context: WorkerContext, webhooks: WebhookSender | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.upkeep = upkeep
        self.context = context
        self._last_rq_beat = -RQ_HEARTBEAT_EVERY
        self.webhooks = webhooks

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, sent at most once every RQ_HEARTBEAT_EVERY seconds on its own.

        RQ beats before and after every dequeue, three round trips each: six of a job's 24 round
        trips at full speed. The key it refreshes lives `worker_ttl` + 60 s (8 minutes), so a beat a
        second keeps the worker exactly as alive. A beat inside a pipeline (no round trip of its
        own) or with a timeout of its own always goes. The service's liveness is its own heartbeat
        (`jobs.liveness`), not this one.
        """
        if pipeline is None and timeout is None and time.monotonic() - self._last_rq_beat < RQ_HEARTBEAT_EVERY:
            return
        super().heartbeat(timeout, pipeline)
        if pipeline is None:
            self._last_rq_beat = time.monotonic()

    def register_birth(self) -> None:
        super().register_birth()
        beat(self.connection, self.name, self.context.runtimes)
        self.upkeep.runtimes = self.context.runtimes
        self.upkeep.worker_name = self.name

    def register_death(self) -> None:
        self.upkeep.worker_name = None
        with contextlib.suppress(RedisError):
            forget(self.connection, self.name)
        super().register_death()

    def execute_job(self, job: Job, queue: Queue) -> None:
        # The earliest point after dequeueing, before RQ runs anything the job names: a job
        # pushed into Redis by someone else fails here without running.
        refusal = refusal_reason(job)
        if refusal is None:
            assert isinstance(job, ContextJob)
            job.context = self.context
            super().execute_job(job, queue)
            self._announce_end(job)
            return
        log.error("refused a job: %s", refusal, extra={"job_id": job.id})
        with self.connection.pipeline() as pipe:
            record_job_failure(job, f"Refused by the worker: {refusal}", pipe)
            pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            pipe.execute()

    def _announce_end(self, job: Job) -> None:
        """POST the ended job's resource to its callback_url, if it has one (in the background)."""
        url = job.meta.get(CALLBACK_META_KEY)
        if not url or self.webhooks is None:
            return
        try:
            body = json.dumps(describe(self.connection, job)).encode()
        except (RedisError, ServiceError):
            log.warning("could not describe the job for its webhook", exc_info=True, extra={"job_id": job.id})
            return
        self.webhooks.send(str(url), body)


def refusal_reason(job: Job) -> str | None:
    """None if `job` calls one of the service's own tasks and nothing else, else why not."""
    try:
        if job.func_name not in TASKS:
            return f"{job.func_name!r} is not one of the service's tasks"
        if job.instance is not None:
            return "a job may not name an object to call"
    except DeserializationError:
        return "the job is not JSON the service wrote"
    callbacks = (job._success_callback_name, job._failure_callback_name, job._stopped_callback_name)
    if any(callbacks):
        return "a job may not name callbacks"
    return None


def unique_name() -> str:
    """<host>.<pid>.<random>: a worker restarted in a container has the same host name and pid 1,
    and RQ refuses a name whose previous owner died without unregistering."""
    return f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"
