"""A job as the versioned API shows it: the job resource of /api/v1/classifications/{id}.

Built from the RQ job alone (status, timestamps, meta, result) plus the queue's order, so every
web process and every worker (for webhooks) describes a job the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.job import Job, JobStatus

from imgclf.images.adjustments import from_job
from imgclf.jobs import results
from imgclf.jobs.eta import seconds_to_drain
from imgclf.jobs.metrics import mean_job_seconds
from imgclf.jobs.queue import (
    ATTEMPT_META_KEY,
    CACHED_META_KEY,
    ERROR_CODE_META_KEY,
    ERROR_META_KEY,
    GENERIC_FAILURE,
    IMAGE_META_KEY,
    make_queue,
    queue_errors,
)
from imgclf.jobs.status import fetch_job, read_status

API_PREFIX = "/api/v1/classifications"

STATUSES = ("queued", "running", "succeeded", "failed", "canceled")

_FROM_RQ = {
    JobStatus.QUEUED: "queued",
    JobStatus.DEFERRED: "queued",
    JobStatus.SCHEDULED: "queued",
    JobStatus.STARTED: "running",
    JobStatus.FINISHED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "failed",
    JobStatus.CANCELED: "canceled",
}

UNFINISHED = frozenset({"queued", "running"})


def describe_by_id(connection: Redis, job_id: str) -> dict[str, Any]:
    """The resource of one of the service's jobs; UnknownJob, or QueueUnavailable if Redis is away."""
    job = fetch_job(connection, job_id)
    with queue_errors():
        return describe(connection, job)


def links(job_id: str) -> dict[str, str]:
    return {
        "self": f"{API_PREFIX}/{job_id}",
        "page": f"/results/{job_id}",
        "events": f"{API_PREFIX}/{job_id}/events",
    }


def describe(connection: Redis, job: Job) -> dict[str, Any]:
    """The job resource (see `imgclf.web.api.v1.models.Classification` for each field's meaning)."""
    rq_status, result = read_status(connection, job)
    status = _FROM_RQ.get(JobStatus(rq_status), "failed")
    position = eta = None
    with queue_errors():
        if status == "queued":
            position = _position(connection, job)
            eta = seconds_to_drain(connection, position + 1, cap=None)
        elif status == "running":
            mean = mean_job_seconds(connection)
            elapsed = _seconds(job.started_at, _now())
            eta = max(0, round((mean or 0) - (elapsed or 0))) if mean is not None else None
    body: dict[str, Any] = {
        "id": job.id,
        "status": status,
        "model": job.args[0] if job.args else None,
        "image": _image(job),
        "adjustments": _adjustments(job),
        "created_at": rfc3339(job.created_at),
        "started_at": rfc3339(job.started_at) if status != "queued" else None,
        "finished_at": rfc3339(job.ended_at) if status not in UNFINISHED else None,
        "position": position,
        "eta_seconds": eta,
        "attempt": int(job.meta.get(ATTEMPT_META_KEY, 1)),
        "cached": bool(job.meta.get(CACHED_META_KEY)),
        "result": {"top5": results.top5(result), "histogram": results.histogram(result)}
        if status == "succeeded"
        else None,
        "timings_ms": _timings(job, status, result),
        "error": _error(job, status),
        "links": links(job.id),
    }
    return body


def _position(connection: Redis, job: Job) -> int:
    """Jobs ahead of this one in the queue (RQ pushes at the tail and workers pop the head); 0 for
    a queued job already off the list: a worker has just taken it and is about to start it."""
    index = connection.lpos(make_queue(connection).key, job.id)
    return index if isinstance(index, int) else 0


def _image(job: Job) -> dict[str, Any]:
    return shown_image(job.meta.get(IMAGE_META_KEY), job.args)


def shown_image(meta: object, args: Any = ()) -> dict[str, Any]:
    """The resource's `image` for a job's image meta (`args`, the job's arguments, for older jobs)."""
    if isinstance(meta, dict) and meta.get("kind") == "upload":
        return {key: meta.get(key) for key in ("sha256", "format", "width", "height", "filename")}
    if isinstance(meta, dict) and meta.get("kind") == "catalogue":
        return {"id": meta.get("id")}
    # A job queued by an older version (no meta): its arguments name the catalogue photo.
    return {"id": args[1] if len(args) > 1 else None}


def _adjustments(job: Job) -> dict[str, Any] | None:
    """What the job was asked to change before classifying, all six values; None for nothing."""
    adjustments = from_job(job.args[2] if len(job.args) > 2 else None)
    return None if adjustments.is_identity else adjustments.as_dict()


def _timings(job: Job, status: str, result: Any) -> dict[str, float | None]:
    timings: dict[str, float | None] = dict.fromkeys(("queued", "decode", "preprocess", "inference", "total"))
    if status != "queued":
        timings["queued"] = _ms(job.enqueued_at or job.created_at, job.started_at)
    if status == "succeeded":
        timings.update(results.timings_ms(result))
    if status not in UNFINISHED:
        timings["total"] = _ms(job.created_at, job.ended_at)
    return timings


def _error(job: Job, status: str) -> dict[str, str] | None:
    if status == "canceled":
        return {"code": "canceled", "message": "The job was canceled (DELETE); its result was deleted."}
    if status != "failed":
        return None
    return {
        "code": str(job.meta.get(ERROR_CODE_META_KEY) or "failed"),
        "message": str(job.meta.get(ERROR_META_KEY) or GENERIC_FAILURE),
    }


def _now() -> datetime:
    return datetime.now(UTC)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (_aware(end) - _aware(start)).total_seconds())


def _aware(moment: datetime) -> datetime:
    # RQ 3 reads its timestamps back as UTC-aware; older jobs may carry naive UTC ones.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    seconds = _seconds(start, end)
    return round(seconds * 1000, 3) if seconds is not None else None


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return _aware(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")
