"""Submitting a classification: refused past the client's rate limit, answered from the result
cache when the same model has already classified the same image bytes, else queued for a worker
(refused when the queue is at its bound)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from redis.exceptions import RedisError

from imgclf.errors import QueueFull, QueueUnavailable, TooManyRequests
from imgclf.jobs import rate_limit
from imgclf.jobs.cache import answer_from_cache, cache_key, image_digest
from imgclf.jobs.metrics import record_rejection
from imgclf.jobs.queue import enqueue_classification
from imgclf.web.state import AppState


@dataclass(frozen=True)
class Ticket:
    job_id: str
    cached: bool


def submit(state: AppState, model_id: str, image_id: str, client: str | None = None) -> Ticket:
    """A ticket for one classification of a catalogue image (both ids already validated)."""
    try:
        return _submit(state, model_id, image_id, client)
    except (TooManyRequests, QueueFull) as exc:
        with contextlib.suppress(RedisError):  # a metric must not hide the real answer
            record_rejection(state.redis, "rate_limited" if isinstance(exc, TooManyRequests) else "queue_full")
        raise


def _submit(state: AppState, model_id: str, image_id: str, client: str | None) -> Ticket:
    settings = state.settings
    try:
        if settings.rate_limit_per_minute and client:
            rate_limit.take(state.redis, client, settings.rate_limit_per_minute)
        if settings.result_cache_ttl:
            key = cache_key(model_id, image_digest(state.catalogue.path(image_id)))
            ticket = answer_from_cache(state.redis, key, settings.result_ttl)
            if ticket is not None:
                return Ticket(ticket, cached=True)
    except RedisError as exc:
        raise QueueUnavailable() from exc
    job_id = enqueue_classification(
        state.queue,
        model_id,
        image_id,
        job_timeout=settings.job_timeout,
        result_ttl=settings.result_ttl,
        max_queued=settings.max_queued_jobs,
    )
    return Ticket(job_id, cached=False)
