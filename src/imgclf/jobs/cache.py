"""The result cache: the same model (and weights) on the same image bytes gives the same top 5,
so a repeated request is answered from Redis without touching a worker.

Key: model id + weights file name (its version: the file names carry a hash) + SHA-256 of the
image bytes. Workers fill the cache when a job finishes; the web process looks it up before
enqueueing. A hit becomes an RQ job of its own that is finished from the start (its result
written, `meta.cached` true, never on the queue), so a job id is always an RQ job: its status is
read like any other's and expires like any other's.
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis
from rq.job import JobStatus
from rq.results import Result
from rq.utils import now

from imgclf.jobs.metrics import CACHE_KEY as CACHE_METRICS_KEY
from imgclf.jobs.queue import CACHED_META_KEY, CLASSIFY_TASK, make_queue
from imgclf.models.registry import MODELS

CACHE_PREFIX = "imgclf:cache:"


def cache_key(model_id: str, digest: str) -> str:
    return f"{CACHE_PREFIX}{model_id}:{MODELS[model_id].weights_file}:{digest}"


def remember(connection: Redis, key: str, data: list[list[Any]], ttl: int) -> None:
    """Store a finished job's top 5 under its cache key."""
    connection.set(key, json.dumps(data), ex=ttl)


def answer_from_cache(connection: Redis, key: str, model_id: str, image_id: str, result_ttl: int) -> str | None:
    """The id of a finished job holding the cached result, or None on a miss."""
    lookup = connection.pipeline(transaction=False)
    lookup.get(key)
    lookup.hincrby(CACHE_METRICS_KEY, "lookups", 1)
    cached, _ = lookup.execute()
    if cached is None:
        return None
    job = make_queue(connection).create_job(
        CLASSIFY_TASK,
        args=(model_id, image_id),
        result_ttl=result_ttl,
        failure_ttl=result_ttl,
        meta={CACHED_META_KEY: True},
        status=JobStatus.FINISHED,
    )
    job.enqueued_at = job.started_at = job.ended_at = now()
    with connection.pipeline() as pipe:
        job.save(pipeline=pipe)
        Result.create(job, Result.Type.SUCCESSFUL, result_ttl, return_value=json.loads(cached), pipeline=pipe)
        job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
        pipe.hincrby(CACHE_METRICS_KEY, "hits", 1)
        pipe.execute()
    return job.id
