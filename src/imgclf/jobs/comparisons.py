"""Comparisons: one photo (with its adjustments) classified by several models side by side.

Each model's classification is an ordinary job (`submit_order`: rate limit, result cache, the
queue's bound, its own result page); a comparison only groups them. It is a small JSON record
in Redis, `imgclf:comparison:<id>` (the job of each model, the photo, the adjustments), kept for
`result_ttl`, as long as its jobs' results. Its resource is built afresh from the jobs' each time
it is read, with where the models agree.

A comparison refused half-way (the queue filled up after the first models) is refused whole;
the jobs already queued are left to run (one of them may be another request's job, answered
from the in-flight check) and their results fill the cache, so asking again is cheap.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from imgclf.config import Settings
from imgclf.errors import NotFound, UnknownJob
from imgclf.jobs.queue import JOB_ID_PATTERN, queue_errors
from imgclf.jobs.resource import UNFINISHED, describe_by_id, links, rfc3339, shown_image
from imgclf.jobs.status import wait_for_end
from imgclf.jobs.submit import Order, Upload, submit_order

PREFIX = "imgclf:comparison:"
API_PREFIX = "/api/v1/comparisons"

EXPIRED = {"code": "expired", "message": "This model's result expired."}


class UnknownComparison(NotFound):
    def __init__(self, comparison_id: str) -> None:
        super().__init__(
            f"No comparison {comparison_id[:60]!r}: it never existed or it expired "
            "(results are kept for a limited time)."
        )


def submit_comparison(
    connection: Redis,
    settings: Settings,
    order: Order,
    model_ids: list[str],
    client: str | None = None,
    upload: Upload | None = None,
) -> str:
    """Queue (or answer from the cache) `order`'s photo for each model; the comparison's id.
    Raises as `submit_order` does (each model takes one of the client's rate-limit tokens)."""
    comparison_id = str(uuid.uuid4())
    jobs = []
    for model_id in model_ids:
        ticket = submit_order(connection, settings, replace(order, model_id=model_id), client, upload)
        jobs.append({"model": model_id, "job_id": ticket.job_id})
    record = {
        "id": comparison_id,
        "created_at": rfc3339(datetime.now(UTC)),
        "image": order.image_meta,
        "jobs": jobs,
    }
    with queue_errors():
        connection.set(PREFIX + comparison_id, json.dumps(record), ex=settings.result_ttl)
    return comparison_id


def describe_comparison(connection: Redis, comparison_id: str) -> dict[str, Any]:
    """The comparison resource; UnknownComparison, or QueueUnavailable if Redis is away."""
    record = _record(connection, comparison_id)
    classifications = [_classification(connection, job["job_id"], job["model"]) for job in record["jobs"]]
    statuses = {entry["status"] for entry in classifications}
    if statuses & UNFINISHED:
        status = "queued" if statuses == {"queued"} else "running"
    else:
        status = "succeeded" if statuses == {"succeeded"} else "failed"
    first = next((entry for entry in classifications if entry.get("image")), None)
    return {
        "id": comparison_id,
        "status": status,
        "image": first["image"] if first else shown_image(record["image"]),
        "adjustments": first["adjustments"] if first else None,
        "created_at": record["created_at"],
        "classifications": classifications,
        "agreement": agreement(classifications),
        "links": {"self": f"{API_PREFIX}/{comparison_id}", "page": f"/comparisons/{comparison_id}"},
    }


async def wait_for_comparison(connection: AsyncRedis, body: dict[str, Any], seconds: float) -> None:
    """Return when each of the comparison's jobs has ended, or after `seconds` in all."""
    deadline = datetime.now(UTC).timestamp() + seconds
    for entry in body["classifications"]:
        left = deadline - datetime.now(UTC).timestamp()
        if left <= 0:
            return
        if entry["status"] in UNFINISHED:
            await wait_for_end(connection, entry["id"], left)


def agreement(classifications: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the models that succeeded agree: `top1`, the class all of them (two or more) rank
    first, else None; `classes`, each class in the top 5 of two or more of them, most models
    first, then the higher summed probability."""
    tops = {
        entry["model"]: entry["result"]["top5"]
        for entry in classifications
        if entry["status"] == "succeeded" and entry["result"]
    }
    shared: dict[Any, dict[str, Any]] = {}
    for model_id, top5 in tops.items():
        for entry in top5:
            key = entry["class_index"] if entry["class_index"] is not None else entry["label"]
            seen = shared.setdefault(
                key, {"class_index": entry["class_index"], "label": entry["label"], "models": [], "probability": 0.0}
            )
            seen["models"].append(model_id)
            seen["probability"] += entry["probability"]
    classes = sorted(
        (seen for seen in shared.values() if len(seen["models"]) > 1),
        key=lambda seen: (-len(seen["models"]), -seen["probability"]),
    )
    firsts = {(top5[0]["class_index"], top5[0]["label"]) for top5 in tops.values() if top5}
    top1 = None
    if len(tops) > 1 and len(firsts) == 1:
        top1 = next(iter(firsts))[1]
    return {
        "top1": top1,
        "classes": [
            {"class_index": seen["class_index"], "label": seen["label"], "models": seen["models"]} for seen in classes
        ],
    }


def _record(connection: Redis, comparison_id: str) -> dict[str, Any]:
    if not JOB_ID_PATTERN.fullmatch(comparison_id):
        raise UnknownComparison(comparison_id)
    with queue_errors():
        raw = connection.get(PREFIX + comparison_id)
    if not isinstance(raw, bytes):
        raise UnknownComparison(comparison_id)
    record: dict[str, Any] = json.loads(raw)
    return record


def _classification(connection: Redis, job_id: str, model_id: str) -> dict[str, Any]:
    try:
        return describe_by_id(connection, job_id)
    except UnknownJob:  # expired before the comparison (or canceled and gone)
        return {
            "id": job_id,
            "status": "failed",
            "model": model_id,
            "image": None,
            "adjustments": None,
            "created_at": None,
            "started_at": None,
            "finished_at": None,
            "position": None,
            "eta_seconds": None,
            "attempt": 1,
            "cached": False,
            "result": None,
            "timings_ms": dict.fromkeys(("queued", "decode", "preprocess", "inference", "total")),
            "error": EXPIRED,
            "links": links(job_id),
        }
