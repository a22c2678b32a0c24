"""The worker process: load every available model once, then take jobs from the queue, beating
a heartbeat, requeueing dead workers' jobs, and running nothing but the service's own tasks."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
import time
from typing import Any

import torch
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.job_lifecycle import record_job_failure
from rq.serializers import JSONSerializer

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.jobs.liveness import HEARTBEAT_INTERVAL, beat, forget
from imgclf.jobs.metrics import record_runtimes
from imgclf.jobs.queue import ALLOWED_TASKS, make_queue
from imgclf.jobs.recovery import REAP_INTERVAL, reap
from imgclf.models.classifier import Classifier
from imgclf.models.loading import load_classifier, use_model_cache
from imgclf.models.registry import MODELS, model_availability
from imgclf.models.runtimes import accelerate, probe_batch
from imgclf.worker import tasks

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_MAX = 10.0
"""Longest wait between two attempts to reach a Redis that went away (doubling from 1 s): a
worker is back at most this long after Redis is."""


def load_models(settings: Settings) -> dict[str, Classifier]:
    """Every configured model whose weights are present, each on the runtime `settings.runtime`
    picks for it; the others are logged and skipped."""
    availability = model_availability(settings.models, settings.models_path)
    for model_id, reason in availability.unavailable.items():
        log.warning("model %s skipped: %s", model_id, reason)
    classifiers: dict[str, Classifier] = {}
    for model_id in availability.available:
        started = time.perf_counter()
        spec = MODELS[model_id]
        reference = load_classifier(spec, settings.models_path)
        classifier, report = accelerate(
            reference,
            spec,
            settings.models_path,
            probe_batch(reference),
            settings.runtime,
            settings.threads_per_worker(),
        )
        classifiers[model_id] = classifier
        speeds = ", ".join(f"{runtime} {rate:.0f}/s" for runtime, rate in report.images_per_s.items())
        log.info(
            "model %s ready in %.1f s on %s (batch-1 speed: %s)",
            model_id,
            time.perf_counter() - started,
            report.chosen,
            speeds,
        )
    return classifiers


def build_context(settings: Settings, connection: Redis) -> tasks.WorkerContext:
    """Load the models into this process (once) for every job it will run."""
    threads = settings.threads_per_worker()
    torch.set_num_threads(threads)
    use_model_cache(settings.models_path)
    classifiers = load_models(settings)
    record_runtimes(connection, {model_id: classifier.runtime for model_id, classifier in classifiers.items()})
    log.info("worker ready: %d inference threads", threads)
    return tasks.WorkerContext(
        classifiers=classifiers,
        catalogue=ImageCatalogue(settings.images_path),
        max_image_pixels=settings.max_image_pixels,
        result_cache_ttl=settings.result_cache_ttl,
    )


class Upkeep(threading.Thread):
    """The worker's heartbeat and the reaper of dead workers' jobs, beside the job thread.

    It has a Redis connection of its own, so a job in progress never delays a heartbeat, and it
    runs from the process's start: a worker restarted after a crash requeues its predecessor's
    job while it is still loading its models.
    """

    def __init__(self, connection: Redis, retries: int) -> None:
        super().__init__(name="upkeep", daemon=True)
        self.connection = connection
        self.queue = make_queue(connection)
        self.retries = retries
        self.worker_name: str | None = None
        """The name to beat for: set once the worker has registered with its models loaded."""
        self._stopped = threading.Event()
        self._failing = False

    def run(self) -> None:
        next_reap = 0.0
        while not self._stopped.wait(HEARTBEAT_INTERVAL if self.worker_name else 0.5):
            try:
                if self.worker_name:
                    beat(self.connection, self.worker_name)
                if time.monotonic() >= next_reap:
                    reap(self.connection, self.queue, self.retries)
                    next_reap = time.monotonic() + REAP_INTERVAL
                self._failing = False
            except RedisError as exc:
                if not self._failing:  # once per outage, not every second
                    log.warning("heartbeat: Redis unreachable (%s)", exc)
                self._failing = True

    def stop(self) -> None:
        self._stopped.set()


class ClassificationWorker(SimpleWorker):
    """RQ's SimpleWorker that runs only the service's own tasks and beats while registered.

    SimpleWorker runs each job in this process. RQ's default Worker forks a child per job, and a
    forked child hangs in torch once the parent has run a model (OpenMP's thread pool does not
    survive fork); forking would also lose the point of loading the models once.
    """

    # RQ's own retry while idle in dequeue would otherwise double up to 60 s.
    max_connection_wait_time = RECONNECT_BACKOFF_MAX

    def __init__(self, *args: Any, upkeep: Upkeep, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.upkeep = upkeep

    def register_birth(self) -> None:
        super().register_birth()
        beat(self.connection, self.name)
        self.upkeep.worker_name = self.name

    def register_death(self) -> None:
        self.upkeep.worker_name = None
        with contextlib.suppress(RedisError):
            forget(self.connection, self.name)
        super().register_death()

    def execute_job(self, job: Job, queue: Queue) -> None:
        # The earliest point after dequeueing, before RQ imports anything the job names: a job
        # pushed into Redis by someone else fails here without running.
        refusal = refusal_reason(job)
        if refusal is None:
            super().execute_job(job, queue)
            return
        log.error("refused a job: %s", refusal, extra={"job_id": job.id})
        with self.connection.pipeline() as pipe:
            record_job_failure(job, f"Refused by the worker: {refusal}", pipe)
            pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            pipe.execute()


def refusal_reason(job: Job) -> str | None:
    """None if `job` calls one of the service's own tasks and nothing else, else why not."""
    try:
        if job.func_name not in ALLOWED_TASKS:
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


def run_worker(settings: Settings) -> None:
    """`imgclf worker`: serve jobs until stopped (SIGINT or SIGTERM: finish the current job).

    A worker that loses Redis does not exit: it connects again with a back-off and registers
    under a new name (its job, if it had one, is requeued by the reaper).
    """
    if not settings.redis_url:
        raise SystemExit("imgclf worker needs IMGCLF_REDIS_URL (or use `imgclf serve`).")
    connection = Redis.from_url(settings.redis_url)
    _wait_for_redis(connection)
    upkeep_connection = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    upkeep = Upkeep(upkeep_connection, settings.job_retries)
    upkeep.start()
    tasks.install(build_context(settings, connection))
    while True:
        worker = ClassificationWorker(
            [make_queue(connection)],
            connection=connection,
            serializer=JSONSerializer,
            name=unique_name(),
            upkeep=upkeep,
        )
        try:
            worker.work(logging_level=settings.log_level.upper())
            upkeep.stop()
            return
        except RedisError as exc:
            upkeep.worker_name = None
            # RQ's handlers only set flags its loop reads; while we wait, SIGTERM must just stop us.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            log.warning("lost Redis (%s); connecting again", exc)
            _wait_for_redis(connection)


def _wait_for_redis(connection: Redis) -> None:
    delay = 1.0
    while True:
        try:
            connection.ping()
            return
        except RedisError as exc:
            log.warning("Redis unreachable (%s); trying again in %.0f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, RECONNECT_BACKOFF_MAX)
