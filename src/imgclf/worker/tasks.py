"""The job functions: the only code a job may run (`TASKS`, looked up by the name a job carries).

Each gets the worker's context (models loaded once at start, the catalogue) as its first
argument from `rq_worker.ContextJob`; the web process names them by `imgclf.jobs.queue`'s task
names and never imports this module (it would import torch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from imgclf.errors import ClassificationError, ServiceError
from imgclf.images.adjustments import NONE, Adjustments, from_job
from imgclf.jobs import cancel, uploads
from imgclf.jobs.cache import cache_key, forget_in_flight, in_flight_key, remember
from imgclf.jobs.metrics import record_job
from imgclf.jobs.queue import (
    CLASSIFY_TASK,
    CLASSIFY_UPLOAD_TASK,
    ERROR_CODE_META_KEY,
    ERROR_META_KEY,
    GENERIC_FAILURE,
)
from imgclf.jobs.results import make_result
from imgclf.models.pipeline import Outcome
from imgclf.worker.context import WorkerContext

log = logging.getLogger(__name__)

TIMED_OUT = "The classification took longer than the job time limit; the workers may be overloaded. Please try again."
UPLOAD_GONE = "The uploaded photo is no longer stored (it expired or its job was deleted); upload it again."


class JobCanceled(ServiceError):
    def __init__(self) -> None:
        super().__init__("The job was canceled (DELETE) before its result was stored.")


def classify(
    context: WorkerContext, model_id: str, image_id: str, adjustments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Top 5 and histograms of one catalogue image, adjusted first, with one loaded model (see
    `imgclf.jobs.results`)."""

    def load() -> tuple[Path, str]:
        path = context.catalogue.path(image_id)  # once: the run and the cache key both need it
        return path, context.digests.of(path)

    return _classify(context, model_id, image_id, load, adjustments)


def classify_upload(
    context: WorkerContext, model_id: str, sha256: str, adjustments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """As `classify`, for an uploaded photo read from the upload store by its SHA-256."""

    def load() -> tuple[bytes, str]:
        job = get_current_job()
        data = uploads.original(job.connection, sha256) if job is not None else None
        if data is None:
            raise ClassificationError(UPLOAD_GONE)
        return data, sha256

    return _classify(context, model_id, f"upload {sha256[:12]}", load, adjustments)


TASKS: dict[str, Callable[..., Any]] = {CLASSIFY_TASK: classify, CLASSIFY_UPLOAD_TASK: classify_upload}
"""The job name a client may enqueue -> the function a worker runs for it."""


def _classify(
    context: WorkerContext,
    model_id: str,
    described: str,
    load: Callable[[], tuple[Path | bytes, str]],
    asked: dict[str, Any] | None,
) -> dict[str, Any]:
    job = get_current_job()
    durations: dict[str, float] = {}
    if job is not None and job.enqueued_at and job.started_at:
        durations["queue_wait"] = max(0.0, (job.started_at - job.enqueued_at).total_seconds())
    status = "failed"
    digest = None
    adjustments = NONE
    try:
        _stop_if_canceled(job)
        adjustments = from_job(asked)
        source, digest = load()
        outcome = _run(context, model_id, source, adjustments)
        # The metrics' "preprocess" phase has always included the decode (see jobs.metrics.PHASES).
        durations["preprocess"] = outcome.seconds["decode"] + outcome.seconds["preprocess"]
        durations["inference"] = outcome.seconds["inference"]
        _stop_if_canceled(job)
        status = "finished"
    except ServiceError as exc:  # the image or the request: a message for the person who asked
        log.warning("classification refused: %s", exc.message)
        _leave_error(job, exc.code, exc.message)
        raise
    except JobTimeoutException:
        log.warning("classification timed out")
        _leave_error(job, "timed_out", TIMED_OUT)
        raise
    except Exception:
        log.exception("classification failed unexpectedly")
        _leave_error(job, "internal_error", GENERIC_FAILURE)
        raise
    finally:
        if job is not None:
            _record(job, status, durations, in_flight_key(model_id, digest, adjustments) if digest else None)
    label, percent = outcome.top[0]
    log.info("%s on %s -> %s (%.1f %%)", model_id, described, label, percent)
    ranked = [
        (index, label, percent) for index, (label, percent) in zip(outcome.class_indices, outcome.top, strict=True)
    ]
    if job is not None and context.result_cache_ttl:
        key = cache_key(model_id, digest, adjustments)
        _fill_cache(job.connection, context, key, make_result(ranked, None, outcome.histogram))
    return make_result(ranked, outcome.seconds, outcome.histogram)


def _run(context: WorkerContext, model_id: str, source: Path | bytes, adjustments: Adjustments) -> Outcome:
    pipeline = context.pipelines.get(model_id)
    if pipeline is None:
        raise ClassificationError(
            f"Model {model_id!r} is not loaded by the worker that took this job; "
            "its weights may have been added after the worker started (restart the workers)."
        )
    return pipeline.run(source, adjustments=adjustments, histogram=True)


def _stop_if_canceled(job: Job | None) -> None:
    if job is not None and cancel.is_canceled(job.connection, job.id):
        raise JobCanceled()


def _fill_cache(connection: Redis, context: WorkerContext, key: str, result: dict[str, Any]) -> None:
    # The cache only saves work; a failure to fill it must not fail the job.
    try:
        remember(connection, key, result, context.result_cache_ttl)
    except RedisError:
        log.warning("could not fill the result cache", exc_info=True)


def _record(job: Job, status: str, durations: dict[str, float], in_flight: str | None) -> None:
    # Metrics must never fail a job that worked. One round trip: the metrics and, if the job was
    # the answer for its photo and model, that it no longer is (a new request gets a new job).
    try:
        pipe = job.connection.pipeline(transaction=False)
        record_job(pipe, status, durations)
        if in_flight is not None:
            forget_in_flight(pipe, in_flight, job.id)
        pipe.execute()
    except RedisError:
        log.warning("could not record job metrics", exc_info=True)


def _leave_error(job: Job | None, code: str, message: str) -> None:
    if job is not None:
        job.meta[ERROR_META_KEY] = message
        job.meta[ERROR_CODE_META_KEY] = code
        job.save_meta()
