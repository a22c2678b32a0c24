"""The result cache: the same model (and weights) on the same image bytes gives the same top 5,
so a repeated request is answered from Redis without touching a worker.

Key: model id + weights file name (its version: the file names carry a hash) + SHA-256 of the
image bytes + the adjustments asked for (none: nothing), so a catalogue photo and the same photo
uploaded share one entry, and the same photo made brighter has one of its own. Workers fill
the cache when a job finishes; the web process looks it up before enqueueing. A hit becomes an
RQ job of its own that is finished from the start (its result written, `meta.cached` true,
never on the queue), so a job id is always an RQ job: its status is read like any other's and
expires like any other's.
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis
from rq.job import JobStatus
from rq.results import Result
from rq.utils import now

from imgclf.images.adjustments import NONE, Adjustments
from imgclf.jobs.metrics import CACHE_KEY as CACHE_METRICS_KEY
from imgclf.jobs.queue import CACHED_META_KEY, make_queue
from imgclf.models.registry import MODELS

CACHE_PREFIX = "imgclf:cache:v3:"
"""v3: entries hold `imgclf.jobs.results`' shape with histograms (v2 had none, v1 held [label,
percent] pairs; they just expire)."""

IN_FLIGHT_PREFIX = "imgclf:inflight:"

_FORGET_IF_MINE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def cache_key(model_id: str, digest: str, adjustments: Adjustments = NONE) -> str:
    return f"{CACHE_PREFIX}{_work(model_id, digest, adjustments)}"


def in_flight_key(model_id: str, digest: str, adjustments: Adjustments = NONE) -> str:
    """Where the job now classifying these bytes with this model is named, while it is queued or running."""
    return f"{IN_FLIGHT_PREFIX}{_work(model_id, digest, adjustments)}"


def _work(model_id: str, digest: str, adjustments: Adjustments) -> str:
    """What gives the same answer: the model's weights, the image bytes and the adjustments."""
    work = f"{model_id}:{MODELS[model_id].weights_file}:{digest}"
    return f"{work}:{adjustments.key()}" if not adjustments.is_identity else work


def forget_in_flight(connection: Redis, key: str, job_id: str) -> None:
    """The job ended: a new request is no longer answered with it (unless another job took the key)."""
    connection.eval(_FORGET_IF_MINE, 1, key, job_id)


def remember(connection: Redis, key: str, result: dict[str, Any], ttl: int) -> None:
    """Store a finished job's result (without its timings) under its cache key."""
    connection.set(key, json.dumps(result), ex=ttl)


def answer_from_cache(
    connection: Redis, key: str, task: str, args: tuple[Any, ...], meta: dict[str, Any], result_ttl: int, job_id: str
) -> bool:
    """True if the cache held a result: job `job_id` now holds it, finished."""
    lookup = connection.pipeline(transaction=False)
    lookup.get(key)
    lookup.hincrby(CACHE_METRICS_KEY, "lookups", 1)
    cached, _ = lookup.execute()
    if cached is None:
        return False
    job = make_queue(connection).create_job(
        task,
        job_id=job_id,
        args=args,
        result_ttl=result_ttl,
        failure_ttl=result_ttl,
        meta={**meta, CACHED_META_KEY: True},
        status=JobStatus.FINISHED,
    )
    job.enqueued_at = job.started_at = job.ended_at = now()
    with connection.pipeline() as pipe:
        job.save(pipeline=pipe)
        Result.create(job, Result.Type.SUCCESSFUL, result_ttl, return_value=json.loads(cached), pipeline=pipe)
        job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
        pipe.hincrby(CACHE_METRICS_KEY, "hits", 1)
        pipe.execute()
    return True
