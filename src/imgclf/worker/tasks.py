"""The job functions: the only code a job may run (`TASKS`, looked up by the name a job carries).

Each gets the worker's context (models loaded once at start, the catalogue) as its first
argument from `rq_worker.ContextJob`; the web process names them by `imgclf.jobs.queue.CLASSIFY_TASK`
and never imports this module (it would import torch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from imgclf.errors import ClassificationError, ServiceError
from imgclf.jobs.cache import cache_key, remember
from imgclf.jobs.metrics import record_job
from imgclf.jobs.queue import CLASSIFY_TASK, ERROR_META_KEY, GENERIC_FAILURE
from imgclf.models.pipeline import Outcome
from imgclf.worker.context import WorkerContext

log = logging.getLogger(__name__)

TIMED_OUT = "The classification took longer than the job time limit; the workers may be overloaded. Please try again."


def classify(context: WorkerContext, model_id: str, image_id: str) -> list[list[object]]:
    """Top-5 [label, percent] of one catalogue image with one loaded model."""
    job = get_current_job()
    durations: dict[str, float] = {}
    if job is not None and job.enqueued_at and job.started_at:
        durations["queue_wait"] = max(0.0, (job.started_at - job.enqueued_at).total_seconds())
    status = "failed"
    try:
        image = context.catalogue.path(image_id)  # once: the run and the cache key both need it
        outcome = _run(context, model_id, image)
        # The metrics' "preprocess" phase has always included the decode (see jobs.metrics.PHASES).
        durations["preprocess"] = outcome.seconds["decode"] + outcome.seconds["preprocess"]
        durations["inference"] = outcome.seconds["inference"]
        status = "finished"
    except ServiceError as exc:  # the image or the request: a message for the person who asked
        log.warning("classification refused: %s", exc.message)
        _leave_error(exc.message)
        raise
    except JobTimeoutException:
        log.warning("classification timed out")
        _leave_error(TIMED_OUT)
        raise
    except Exception:
        log.exception("classification failed unexpectedly")
        _leave_error(GENERIC_FAILURE)
        raise
    finally:
        if job is not None:
            _record(job.connection, status, durations)
    label, percent = outcome.top[0]
    log.info("%s on %s -> %s (%.1f %%)", model_id, image_id, label, percent)
    top: list[list[object]] = [[label, percent] for label, percent in outcome.top]
    if job is not None and context.result_cache_ttl:
        _fill_cache(job.connection, context, model_id, image, top)
    return top


TASKS: dict[str, Callable[..., Any]] = {CLASSIFY_TASK: classify}
"""The job name a client may enqueue -> the function a worker runs for it."""


def _run(context: WorkerContext, model_id: str, image: Path) -> Outcome:
    pipeline = context.pipelines.get(model_id)
    if pipeline is None:
        raise ClassificationError(
            f"Model {model_id!r} is not loaded by the worker that took this job; "
            "its weights may have been added after the worker started (restart the workers)."
        )
    return pipeline.run(image)


def _fill_cache(connection: Redis, context: WorkerContext, model_id: str, image: Path, top: list[list[object]]) -> None:
    # The cache only saves work; a failure to fill it must not fail the job.
    try:
        digest = context.digests.of(image)
        remember(connection, cache_key(model_id, digest), top, context.result_cache_ttl)
    except (RedisError, OSError, ServiceError):
        log.warning("could not fill the result cache", exc_info=True)


def _record(connection: Redis, status: str, durations: dict[str, float]) -> None:
    # Metrics must never fail a job that worked.
    try:
        record_job(connection, status, durations)
    except RedisError:
        log.warning("could not record job metrics", exc_info=True)


def _leave_error(message: str) -> None:
    job = get_current_job()
    if job is not None:
        job.meta[ERROR_META_KEY] = message
        job.save_meta()
