"""The result cache: the same model (and weights) on the same image bytes gives the same top 5,
so a repeated request is answered from Redis without touching a worker.

Key: model id + weights file name (its version: the file names carry a hash) + SHA-256 of the
image bytes. Workers fill the cache when a job finishes; the web process reads it before
enqueueing. A hit gets a ticket of its own (a job id that no worker ever sees) whose status
answers `finished` at once, with `"cached": true`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from redis import Redis

from imgclf.jobs.metrics import CACHE_KEY as CACHE_METRICS_KEY
from imgclf.models.registry import MODELS

CACHE_PREFIX = "imgclf:cache:"
TICKET_PREFIX = "imgclf:ticket:"

_digests: dict[tuple[str, int, int], str] = {}


def image_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, remembered while its size and mtime stay the same."""
    stat = path.stat()
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    digest = _digests.get(memo)
    if digest is None:
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        if len(_digests) > 100_000:  # a bound, not an LRU: catalogues are far smaller
            _digests.clear()
        _digests[memo] = digest
    return digest


def cache_key(model_id: str, digest: str) -> str:
    return f"{CACHE_PREFIX}{model_id}:{MODELS[model_id].weights_file}:{digest}"


def remember(connection: Redis, key: str, data: list[list[Any]], ttl: int) -> None:
    """Store a finished job's top 5 under its cache key."""
    connection.set(key, json.dumps(data), ex=ttl)


def answer_from_cache(connection: Redis, key: str, ttl: int) -> str | None:
    """A ticket id whose status is the cached result, or None on a miss (one round trip)."""
    lookup = connection.pipeline(transaction=False)
    lookup.get(key)
    lookup.hincrby(CACHE_METRICS_KEY, "lookups", 1)
    cached, _ = lookup.execute()
    if cached is None:
        return None
    ticket = str(uuid.uuid4())
    hit = connection.pipeline(transaction=False)
    hit.set(TICKET_PREFIX + ticket, cached, ex=ttl)
    hit.hincrby(CACHE_METRICS_KEY, "hits", 1)
    hit.execute()
    return ticket


def cached_ticket(connection: Redis, ticket: str) -> list[list[Any]] | None:
    """The result behind a cache ticket, or None if `ticket` is not one (or expired)."""
    raw = connection.get(TICKET_PREFIX + ticket)
    return None if raw is None else list(json.loads(raw))
