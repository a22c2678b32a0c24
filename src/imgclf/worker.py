"""Worker start-up: load every available model once, then take jobs from the queue."""

from __future__ import annotations

import logging
import os
import socket
import time

import torch
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from imgclf import tasks
from imgclf.config import Settings
from imgclf.images import ImageCatalogue
from imgclf.jobs import make_queue
from imgclf.metrics import record_runtimes
from imgclf.models.classifier import Classifier
from imgclf.models.loading import load_classifier, use_model_cache
from imgclf.models.registry import MODELS, model_availability
from imgclf.models.runtimes import accelerate, probe_batch

log = logging.getLogger(__name__)

WORKER_TTL = 30
"""Seconds between a worker's heartbeats, plus RQ's 60 s grace: a worker that died without
unregistering stops counting as alive (for /readyz and metrics) after about 90 s."""


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


def build_worker(settings: Settings, connection: Redis) -> SimpleWorker:
    """Load the models into this process and return an RQ worker bound to the queue."""
    threads = settings.threads_per_worker()
    torch.set_num_threads(threads)
    use_model_cache(settings.models_path)
    classifiers = load_models(settings)
    record_runtimes(connection, {model_id: classifier.runtime for model_id, classifier in classifiers.items()})
    tasks.install(
        tasks.WorkerContext(
            classifiers=classifiers,
            catalogue=ImageCatalogue(settings.images_path),
            max_image_pixels=settings.max_image_pixels,
            result_cache_ttl=settings.result_cache_ttl,
        )
    )
    log.info("worker ready: %d inference threads", threads)
    # SimpleWorker runs each job in this process. RQ's default Worker forks a child per job, and
    # a forked child hangs in torch once the parent has run a model (OpenMP's thread pool does not
    # survive fork); forking would also lose the point of loading the models once.
    return SimpleWorker(
        [make_queue(connection)],
        connection=connection,
        serializer=JSONSerializer,
        name=f"{socket.gethostname()}.{os.getpid()}",
        worker_ttl=WORKER_TTL,
    )


def run_worker(settings: Settings) -> None:
    """`imgclf worker`: serve jobs until stopped (SIGINT or SIGTERM: finish the current job)."""
    if not settings.redis_url:
        raise SystemExit("imgclf worker needs IMGCLF_REDIS_URL (or use `imgclf serve`).")
    connection = Redis.from_url(settings.redis_url)
    worker = build_worker(settings, connection)
    worker.work(logging_level=settings.log_level.upper())
