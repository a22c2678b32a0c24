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
from imgclf.models.classifier import Classifier
from imgclf.models.loading import load_classifier, use_model_cache
from imgclf.models.registry import MODELS, model_availability

log = logging.getLogger(__name__)

WORKER_TTL = 30
"""Seconds between a worker's heartbeats, plus RQ's 60 s grace: a worker that died without
unregistering stops counting as alive (for /readyz and metrics) after about 90 s."""


def load_models(settings: Settings) -> dict[str, Classifier]:
    """Every configured model whose weights are present; the others are logged and skipped."""
    availability = model_availability(settings.models, settings.models_path)
    for model_id, reason in availability.unavailable.items():
        log.warning("model %s skipped: %s", model_id, reason)
    classifiers: dict[str, Classifier] = {}
    for model_id in availability.available:
        started = time.perf_counter()
        classifiers[model_id] = load_classifier(MODELS[model_id], settings.models_path)
        log.info("model %s loaded in %.1f s", model_id, time.perf_counter() - started)
    return classifiers


def build_worker(settings: Settings, connection: Redis) -> SimpleWorker:
    """Load the models into this process and return an RQ worker bound to the queue."""
    threads = settings.threads_per_worker()
    torch.set_num_threads(threads)
    use_model_cache(settings.models_path)
    tasks.install(
        tasks.WorkerContext(
            classifiers=load_models(settings),
            catalogue=ImageCatalogue(settings.images_path),
            max_image_pixels=settings.max_image_pixels,
            result_cache_ttl=settings.result_cache_ttl,
        )
    )
    log.info("worker ready: %d torch threads", threads)
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
