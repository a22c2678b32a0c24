"""The job functions RQ runs, by dotted path, inside an `imgclf worker`.

The models are loaded once when the worker starts (`install`), never per job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rq import get_current_job
from rq.timeouts import JobTimeoutException

from imgclf.errors import ClassificationError, UnknownImage
from imgclf.images import ImageCatalogue
from imgclf.jobs import ERROR_META_KEY, GENERIC_FAILURE
from imgclf.models.classifier import Classifier
from imgclf.models.decoding import open_rgb

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What a worker process loaded at start-up and every job uses."""

    classifiers: dict[str, Classifier]
    catalogue: ImageCatalogue
    max_image_pixels: int


_context: WorkerContext | None = None


def install(context: WorkerContext | None) -> None:
    """Make the loaded models available to the jobs of this process (None: unload)."""
    global _context
    _context = context


def classify(model_id: str, image_id: str) -> list[list[object]]:
    """Top-5 [label, percent] of one catalogue image with one loaded model."""
    job = get_current_job()
    job_id = job.id if job else "-"
    try:
        result = _classify(model_id, image_id)
    except ClassificationError as exc:
        log.warning("job %s: %s", job_id, exc.message)
        _leave_error(exc.message)
        raise
    except JobTimeoutException:
        log.warning("job %s: timed out", job_id)
        _leave_error(
            "The classification took longer than the job time limit; the workers may be overloaded. "
            "Please try again."
        )
        raise
    except Exception:
        log.exception("job %s: unexpected failure", job_id)
        _leave_error(GENERIC_FAILURE)
        raise
    log.info("job %s: %s on %s -> %s", job_id, model_id, image_id, result[0][0])
    return [[label, percent] for label, percent in result]


def _classify(model_id: str, image_id: str) -> list[tuple[str, float]]:
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
    image = open_rgb(path, _context.max_image_pixels)
    return classifier.classify([image])[0]


def _leave_error(message: str) -> None:
    job = get_current_job()
    if job is not None:
        job.meta[ERROR_META_KEY] = message
        job.save_meta()
