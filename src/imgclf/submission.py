"""Submitting a classification: answered from the result cache when the same model has already
classified the same image bytes, queued for a worker otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import RedisError

from imgclf.cache import answer_from_cache, cache_key, image_digest
from imgclf.dependencies import AppState
from imgclf.errors import QueueUnavailable
from imgclf.jobs import enqueue_classification


@dataclass(frozen=True)
class Ticket:
    job_id: str
    cached: bool


def submit(state: AppState, model_id: str, image_id: str) -> Ticket:
    """A ticket for one classification of a catalogue image (both ids already validated)."""
    settings = state.settings
    if settings.result_cache_ttl:
        key = cache_key(model_id, image_digest(state.catalogue.path(image_id)))
        try:
            ticket = answer_from_cache(state.redis, key, settings.result_ttl)
        except RedisError as exc:
            raise QueueUnavailable() from exc
        if ticket is not None:
            return Ticket(ticket, cached=True)
    job_id = enqueue_classification(
        state.queue, model_id, image_id, job_timeout=settings.job_timeout, result_ttl=settings.result_ttl
    )
    return Ticket(job_id, cached=False)
