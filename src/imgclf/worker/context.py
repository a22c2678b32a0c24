"""What a worker loads once, at start, and hands to every job it runs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from redis import Redis

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.digests import FileDigests
from imgclf.jobs.metrics import record_runtimes
from imgclf.models.pipeline import Pipeline
from imgclf.models.registry import MODELS, model_availability
from imgclf.models.serving import load_for_serving

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """The loaded models and what jobs need besides them; built once per worker process."""

    pipelines: dict[str, Pipeline]
    """Model id -> its pipeline on the runtime chosen for it."""
    catalogue: ImageCatalogue
    digests: FileDigests
    result_cache_ttl: int = 0


def load_pipelines(settings: Settings) -> dict[str, Pipeline]:
    """Every configured model whose weights are present, each on the runtime `settings.runtime`
    picks for it; the others are logged and skipped."""
    availability = model_availability(settings.models, settings.model_dir)
    for model_id, reason in availability.unavailable.items():
        log.warning("model %s skipped: %s", model_id, reason)
    pipelines: dict[str, Pipeline] = {}
    for model_id in availability.available:
        started = time.perf_counter()
        classifier, report = load_for_serving(
            MODELS[model_id], settings.model_dir, settings.runtime, settings.threads_per_worker()
        )
        pipelines[model_id] = Pipeline(classifier, settings.max_image_pixels)
        speeds = ", ".join(f"{runtime} {rate:.0f}/s" for runtime, rate in report.images_per_s.items())
        log.info(
            "model %s ready in %.1f s on %s (batch-1 speed: %s)",
            model_id,
            time.perf_counter() - started,
            report.chosen,
            speeds,
        )
    return pipelines


def build_context(settings: Settings, connection: Redis) -> WorkerContext:
    """Load the models into this process (once) for every job it will run."""
    threads = settings.threads_per_worker()
    torch.set_num_threads(threads)
    pipelines = load_pipelines(settings)
    record_runtimes(connection, {model_id: pipeline.runtime for model_id, pipeline in pipelines.items()})
    log.info("worker ready: %d inference threads", threads)
    return WorkerContext(
        pipelines=pipelines,
        catalogue=ImageCatalogue(settings.image_dir),
        digests=FileDigests(),
        result_cache_ttl=settings.result_cache_ttl,
    )
