"""What a worker loads once, at start, and hands to every job it runs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.digests import FileDigests
from imgclf.models.pipeline import Pipeline
from imgclf.models.registry import MODELS, model_availability
from imgclf.models.serving import ModelNotServable, load_for_serving

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """The loaded models and what jobs need besides them; built once per worker process."""

    pipelines: dict[str, Pipeline]
    """Model id -> its pipeline on the runtime chosen for it."""
    catalogue: ImageCatalogue
    digests: FileDigests
    result_cache_ttl: int = 0

    @property
    def runtimes(self) -> dict[str, str]:
        """Model id -> the runtime serving it here (sent with every heartbeat, for /metrics)."""
        return {model_id: pipeline.runtime for model_id, pipeline in self.pipelines.items()}


def load_pipelines(settings: Settings) -> dict[str, Pipeline]:
    """Every configured model whose export or weights are present, each on the runtime
    `settings.runtime` picks for it (`serving.load_for_serving`); the others are logged and skipped."""
    availability = model_availability(settings.models, settings.model_dir)
    for model_id, reason in availability.unavailable.items():
        log.warning("model %s skipped: %s", model_id, reason)
    pipelines: dict[str, Pipeline] = {}
    for model_id in availability.available:
        started = time.perf_counter()
        try:
            classifier, report = load_for_serving(
                MODELS[model_id], settings.model_dir, settings.runtime, settings.threads_per_worker()
            )
        except ModelNotServable as exc:
            log.warning("model %s skipped: %s", model_id, exc)
            continue
        pipelines[model_id] = Pipeline(classifier, settings.max_image_pixels)
        log.info("model %s ready in %.2f s on %s", model_id, time.perf_counter() - started, report.chosen)
    return pipelines


def build_context(settings: Settings) -> WorkerContext:
    """Load the models into this process (once) for every job it will run."""
    threads = settings.threads_per_worker()
    pipelines = load_pipelines(settings)
    log.info("worker ready: %d inference threads", threads)
    return WorkerContext(
        pipelines=pipelines,
        catalogue=ImageCatalogue(settings.image_dir),
        digests=FileDigests(),
        result_cache_ttl=settings.result_cache_ttl,
    )
