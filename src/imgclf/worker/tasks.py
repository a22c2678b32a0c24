"""The job functions RQ runs, by dotted path, inside an `imgclf worker`.

The models are loaded once when the worker starts (`install`), never per job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from imgclf.errors import ClassificationError, UnknownImage
from imgclf.images.catalogue import ImageCatalogue
from imgclf.jobs.cache import cache_key, image_digest, remember
from imgclf.jobs.metrics import record_job
from imgclf.jobs.queue import ERROR_META_KEY, GENERIC_FAILURE
from imgclf.models.classifier import Classifier

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What a worker process loaded at start-up and every job uses."""

    classifiers: dict[str, Classifier]
    catalogue: ImageCatalogue
    max_image_pixels: int
    result_cache_ttl: int = 0


_context: WorkerContext | None = None


def install(context: WorkerContext | None) -> None:
    """Make the loaded models available to the jobs of this process (None: unload)."""
    global _context
    _context = context


def classify(model_id: str, image_id: str) -> list[list[object]]:
    """Top-5 [label, percent] of one catalogue image with one loaded model."""
    job = get_current_job()
    durations: dict[str, float] = {}
    if job is not None and job.enqueued_at and job.started_at:
        durations["queue_wait"] = max(0.0, (job.started_at - job.enqueued_at).total_seconds())
    status = "failed"
    try:
        result, path = _classify(model_id, image_id, durations)
        status = "finished"
    except ClassificationError as exc:
        log.warning("classification refused: %s", exc.message)
        _leave_error(exc.message)
        raise
    except JobTimeoutException:
        log.warning("classification timed out")
        _leave_error(
            "The classification took longer than the job time limit; the workers may be overloaded. Please try again."
        )
        raise
    except Exception:
        log.exception("classification failed unexpectedly")
        _leave_error(GENERIC_FAILURE)
        raise
    finally:
        if job is not None:
            _record(job.connection, status, durations)
    log.info("%s on %s -> %s (%.1f %%)", model_id, image_id, result[0][0], result[0][1])
    top = [[label, percent] for label, percent in result]
    if job is not None and _context is not None and _context.result_cache_ttl:
        _fill_cache(job.connection, model_id, path, top, _context.result_cache_ttl)
    return top


def _classify(model_id: str, image_id: str, durations: dict[str, float]) -> tuple[list[tuple[str, float]], Path]:
    if _context is None:
        raise ClassificationError("This process has no models loaded; run jobs with `imgclf worker`.")
    classifier = _context.classifiers.get(model_id)
    if classifier is None:
        raise ClassificationError(
            f"Model {model_id!r} is not loaded by the worker that took this job; "
            "its weights may have been added after the worker started (restart the workers)."
        )
    try:
        path = _context.catalogue.path(image_id)
    except UnknownImage as exc:
        raise ClassificationError(exc.message) from exc
    started = time.perf_counter()
    batch = classifier.prepare_file(path, _context.max_image_pixels)
    preprocessed = time.perf_counter()
    top = classifier.top_k(classifier.predict(batch))[0]
    durations["preprocess"] = preprocessed - started
    durations["inference"] = time.perf_counter() - preprocessed
    return top, path


def _fill_cache(connection: Redis, model_id: str, path: Path, top: list[list[object]], ttl: int) -> None:
    # The cache only saves work; a failure to fill it must not fail the job.
    try:
        remember(connection, cache_key(model_id, image_digest(path)), top, ttl)
    except (RedisError, OSError):
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
