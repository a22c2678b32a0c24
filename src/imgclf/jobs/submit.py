"""Submitting a classification: refused past the client's rate limit, answered with the job
already queued or running for the same catalogue photo and model, answered from the result cache
when the same model has already classified the same image bytes, else queued for a worker
(refused when the queue is at its bound).

An upload always gets a job of its own (never another person's job, which would show their file
name and let them delete it); a cache hit is such a job too. A request with a webhook of its own
skips the cache and the running job: only a worker sends webhooks, when it ends a job."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from imgclf.config import Settings
from imgclf.errors import QueueFull, TooManyRequests
from imgclf.images.adjustments import NONE, Adjustments
from imgclf.images.digests import FileDigests
from imgclf.jobs import cancel, rate_limit, uploads
from imgclf.jobs.cache import answer_from_cache, cache_key, in_flight_key
from imgclf.jobs.eta import seconds_to_drain
from imgclf.jobs.metrics import record_rejection
from imgclf.jobs.queue import CALLBACK_META_KEY, CLASSIFY_TASK, IMAGE_META_KEY, make_queue, queue_errors
from imgclf.jobs.status import PENDING
from imgclf.jobs.uploads import UploadedPhoto

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Order:
    """One classification to run: a model, and a catalogue photo or an upload, both validated."""

    model_id: str
    task: str
    """`CLASSIFY_TASK` (image_ref is a catalogue id) or `CLASSIFY_UPLOAD_TASK` (image_ref is a SHA-256)."""
    image_ref: str
    digest: str
    """SHA-256 of the image bytes: the result cache's and the in-flight check's key."""
    image_meta: dict[str, Any]
    """What the job resource shows as `image`."""
    callback_url: str | None = None
    adjustments: Adjustments = NONE
    """Applied by the worker before classifying; part of the cache key."""

    @property
    def job_args(self) -> tuple[Any, ...]:
        """The job function's arguments after the worker's context: model, image, adjustments if any."""
        base: tuple[Any, ...] = (self.model_id, self.image_ref)
        return base if self.adjustments.is_identity else (*base, self.adjustments.as_dict())


@dataclass(frozen=True)
class Upload:
    """An upload's bytes to keep for the worker (`imgclf.jobs.uploads`)."""

    photo: UploadedPhoto
    original: bytes
    display: bytes


@dataclass(frozen=True)
class Ticket:
    job_id: str


def catalogue_order(digests: FileDigests, model_id: str, image_id: str, image: Path) -> Order:
    """The order for catalogue photo `image_id` (the file `image`)."""
    return Order(model_id, CLASSIFY_TASK, image_id, digests.of(image), {"kind": "catalogue", "id": image_id})


def submit_order(
    connection: Redis, settings: Settings, order: Order, client: str | None = None, upload: Upload | None = None
) -> Ticket:
    """Answer with the job already classifying the same catalogue photo with the same model, or
    from the result cache, or queue a new job (keeping `upload` for it).

    Raises TooManyRequests, QueueFull, UploadStoreFull or QueueUnavailable, each with a Retry-After.
    """
    try:
        with queue_errors():
            if settings.rate_limit_per_minute and client:
                rate_limit.take(connection, client, settings.rate_limit_per_minute)
            job_id = str(uuid.uuid4())
            meta: dict[str, Any] = {IMAGE_META_KEY: order.image_meta}
            # Reusing a running job is a cache of work in progress: off with the result cache.
            reuse = bool(settings.result_cache_ttl) and upload is None
            if reuse and (running := _in_flight(connection, order)) is not None:
                return Ticket(running)
            # Stored before any job names it: a full store refuses before anything is created.
            _keep_upload(connection, settings, upload, job_id)
            try:
                if settings.result_cache_ttl and not order.callback_url:
                    key = cache_key(order.model_id, order.digest, order.adjustments)
                    if answer_from_cache(
                        connection, key, order.task, order.job_args, meta, settings.result_ttl, job_id
                    ):
                        return Ticket(job_id)
                if order.callback_url:
                    meta[CALLBACK_META_KEY] = order.callback_url
                _enqueue(make_queue(connection), settings, order, job_id, meta)
            except QueueFull:
                if upload is not None:
                    uploads.release(connection, upload.photo.sha256, job_id)
                raise
            if reuse:
                connection.set(
                    in_flight_key(order.model_id, order.digest, order.adjustments),
                    job_id,
                    nx=True,
                    ex=settings.result_ttl,
                )
            return Ticket(job_id)
    except (TooManyRequests, QueueFull) as exc:
        with contextlib.suppress(RedisError):  # a metric must not hide the real answer
            record_rejection(connection, "rate_limited" if isinstance(exc, TooManyRequests) else "queue_full")
        raise


def _keep_upload(connection: Redis, settings: Settings, upload: Upload | None, job_id: str) -> None:
    if upload is not None:
        # The job may wait `result_ttl` in the queue, then show its result for `result_ttl`.
        ttl = 2 * settings.result_ttl
        uploads.store(
            connection, upload.photo, upload.original, upload.display, job_id, ttl, settings.upload_store_bytes
        )


def _in_flight(connection: Redis, order: Order) -> str | None:
    """The id of a job queued or running for the same catalogue photo and model, if there is one."""
    if order.callback_url:  # its webhook must fire for this request: a job of its own
        return None
    raw = connection.get(in_flight_key(order.model_id, order.digest, order.adjustments))
    if not isinstance(raw, bytes):
        return None
    job_id = raw.decode()
    job = make_queue(connection).fetch_job(job_id)
    if job is None or job.get_status(refresh=False) not in PENDING or cancel.is_canceled(connection, job_id):
        return None
    return job_id


def _enqueue(queue: Queue, settings: Settings, order: Order, job_id: str, meta: dict[str, Any]) -> None:
    """Put one classification on the queue; QueueFull when `max_queued_jobs` wait already: a
    bound, so a flood gets a clear "come back later" instead of a queue that grows until Redis
    runs out of memory."""
    bound = settings.max_queued_jobs
    _refuse_past(queue, bound, queue.count)
    job = queue.enqueue(
        order.task,
        *order.job_args,
        job_id=job_id,
        meta=meta,
        job_timeout=settings.job_timeout,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.result_ttl,
        # A job nobody picked up within this time is dropped instead of running for nobody.
        ttl=settings.result_ttl,
    )
    # Requests in flight together all pass the first check; looking again after the push keeps
    # the bound exact. The job is withdrawn only if no worker has taken it yet.
    waiting = queue.count
    if waiting > bound and queue.connection.lrem(queue.key, 1, job.id):
        job.delete()
        _refuse_past(queue, bound, waiting)
    log.info("queued %s on %s", order.model_id, order.image_ref, extra={"job_id": job.id})


def _refuse_past(queue: Queue, bound: int, waiting: int) -> None:
    if waiting >= bound:
        raise QueueFull(waiting, seconds_to_drain(queue.connection, waiting - bound + 1))
