"""/api/v1/classifications: submit (202 + Location + Retry-After, or 200 from the cache), read
(long polling with `wait`), follow (Server-Sent Events), cancel (DELETE), and the photo shown back.

The conventions of long-running operations (Microsoft's REST guidelines, Google's AIP-151): the
POST answers at once with a status resource and where to poll it; errors are RFC 9457 problem
details (`imgclf.web.error_response`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from imgclf.errors import (
    NotFinished,
    NotFound,
    ServiceError,
    UnknownImage,
)
from imgclf.jobs import cancel, idempotency, uploads
from imgclf.jobs.queue import queue_errors
from imgclf.jobs.resource import UNFINISHED, describe_by_id
from imgclf.jobs.status import API_MAX_WAIT_SECONDS, fetch_job, wait_if_unended
from imgclf.jobs.submit import Order, Ticket, Upload, submit_order
from imgclf.web import downloads
from imgclf.web.api.v1.bodies import read_fields
from imgclf.web.api.v1.docs import (
    CLASSIFICATION_REQUEST_BODY,
    EVENTS_EXAMPLE,
    NOT_SUCCEEDED,
    PHOTO_GONE,
    QUERY_INVALID,
    SUBMISSION_UNAVAILABLE,
    WAIT_INVALID,
    problem_responses,
    resource_content,
)
from imgclf.web.api.v1.schemas import JOB_ID_EXAMPLE, Classification, ClassificationRequest
from imgclf.web.intake import FieldNames, read_order
from imgclf.web.middleware.body_limits import body_limit
from imgclf.web.openapi import RETRY_AFTER
from imgclf.web.state import AppState, ChoicesDep, StateDep

router = APIRouter(prefix="/api/v1/classifications", tags=["v1: classifications"])

API_FIELDS = FieldNames(model="model", image="image", file="file")
EVENTS_MAX_SECONDS = 600
"""One event stream lasts at most this long; EventSource reconnects by itself, so a job that waits
longer is followed on a new connection instead of one held open for hours."""
EVENTS_POLL_SECONDS = 0.5

JobId = Annotated[str, Path(description="The job id from the POST.", examples=[JOB_ID_EXAMPLE])]

LOCATION = {"Location": {"description": "The job resource to poll.", "schema": {"type": "string"}}}

Download = Annotated[
    bool,
    Query(
        description="true: sent as an attachment (Content-Disposition), with a file name that says what it is.",
        examples=[True],
    ),
]

PRIVATE = {"Cache-Control": "private, max-age=3600"}
GONE = "The uploaded photo is no longer stored: its job was deleted or its result expired."


@router.post(
    "",
    status_code=202,
    response_model=Classification,
    responses={
        200: {
            "description": "The answer was already known (result cache): the finished job.",
            "headers": LOCATION,
            "content": resource_content("SucceededClassification"),
        },
        202: {
            "description": "Accepted: the job resource; poll `Location` after `Retry-After` seconds (or follow "
            "`links.events`). A job already queued or running for the same photo and model may be the answer.",
            "headers": {**LOCATION, **RETRY_AFTER},
            "content": resource_content("QueuedClassification"),
        },
        **problem_responses(400, 409, 413, 415, 422, 429, SUBMISSION_UNAVAILABLE),
    },
    openapi_extra={"requestBody": CLASSIFICATION_REQUEST_BODY},
)
@body_limit("max_upload_bytes")
async def create_classification(
    request: Request,
    state: StateDep,
    choices: ChoicesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Any unique string (a UUID): the same key within the result TTL answers with the same job, "
            "so a POST may be retried safely after a timeout.",
            examples=["0b8c7f1e-3d0a-4c55-9a43-7f2e5c1d9b04"],
        ),
    ] = None,
) -> JSONResponse:
    """Classify a catalogue photo (JSON or form) or an uploaded one (multipart/form-data)."""
    fields, form = await read_fields(
        request,
        state,
        ClassificationRequest,
        ("model", "image", "file", "callback_url", "adjustments"),
        how='Send application/json ({"model": ..., "image": ...}) or multipart/form-data (model, and image or file).',
    )
    try:
        order, upload = await read_order(
            state,
            choices,
            API_FIELDS,
            fields.get("model"),
            fields.get("image"),
            fields.get("file"),
            fields.get("callback_url"),
            fields.get("adjustments"),
        )
    finally:
        if form is not None:
            await form.close()  # the upload's spooled file
    client = request.client.host if request.client else None
    key = idempotency.validate_key(idempotency_key) if idempotency_key is not None else None
    ticket = await _submit_once(state, order, upload, client, key)
    body = await _resource(state, ticket.job_id)
    finished = body["status"] not in UNFINISHED
    headers = {"Location": body["links"]["self"]}
    if not finished:
        headers["Retry-After"] = str(_retry_after(body))
    return JSONResponse(body, status_code=200 if finished else 202, headers=headers)


async def _submit_once(
    state: AppState, order: Order, upload: Upload | None, client: str | None, key: str | None
) -> Ticket:
    """Submit `order`; with an Idempotency-Key, the job that key already names, if it does."""
    fingerprint = idempotency.fingerprint(order.model_id, order.digest, order.callback_url, order.adjustments.key())
    ttl = state.settings.result_ttl
    with queue_errors():
        earlier = await run_in_threadpool(idempotency.claim, state.redis, key, fingerprint, ttl) if key else None
    if earlier is not None:
        return Ticket(earlier)
    try:
        ticket = await run_in_threadpool(submit_order, state.redis, state.settings, order, client, upload)
    except ServiceError:
        if key:
            with queue_errors():
                await run_in_threadpool(idempotency.abandon, state.redis, key)
        raise
    if key:
        with queue_errors():
            await run_in_threadpool(idempotency.settle, state.redis, key, fingerprint, ticket.job_id, ttl)
    return ticket


@router.get(
    "/{job_id}",
    response_model=Classification,
    responses={
        200: {
            "description": "The job resource; `Retry-After` while it is queued or running.",
            "headers": RETRY_AFTER,
            "content": resource_content("QueuedClassification", "SucceededClassification"),
        },
        **problem_responses(404, WAIT_INVALID, 503),
    },
)
async def get_classification(
    job_id: JobId,
    state: StateDep,
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=API_MAX_WAIT_SECONDS,
            description="Seconds to wait for an unfinished job to end before answering (long polling); 0 answers "
            f"at once; at most {API_MAX_WAIT_SECONDS}.",
            examples=[10],
        ),
    ] = 0,
    download: Download = False,
) -> JSONResponse:
    """A classification job: where it stands and, once it succeeded, its top 5. 404 once expired."""
    if wait:
        await wait_if_unended(state.redis_async, job_id, wait)
    body = await _resource(state, job_id)
    headers = {"Retry-After": str(_retry_after(body))} if body["status"] in UNFINISHED else {}
    if download:
        headers.update(downloads.disposition(downloads.file_name(body, ".json"), download=True))
    return JSONResponse(body, headers=headers)


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Canceled: it never runs; its result and uploaded photo are deleted."},
        **problem_responses(404, 503),
    },
)
async def delete_classification(job_id: JobId, state: StateDep) -> Response:
    """Cancel a job: a queued one never runs; its result and its uploaded photo are deleted at once.

    The job stays readable as `canceled` until its result would have expired; deleting it again
    answers 204 as well.
    """
    await run_in_threadpool(_cancel, state, job_id)
    return Response(status_code=204)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `status` events (JSON: id, status, position, eta_seconds, attempt) "
            "whenever one changes, until the job ends; the last carries the whole job resource.",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": EVENTS_EXAMPLE}},
        },
        **problem_responses(404, 503),
    },
)
async def classification_events(job_id: JobId, state: StateDep) -> EventSourceResponse:
    """Follow a job live: an event each time its status, position or ETA changes, until it ends."""
    first = await _resource(state, job_id)  # 404 before the stream starts
    return EventSourceResponse(
        _events(state, job_id, first),
        ping=15,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/{job_id}/image",
    response_class=Response,
    responses={
        200: {
            "description": "The photo this job classified: a catalogue photo as it is; an upload as a re-encoded "
            "JPEG without its metadata (no EXIF, no GPS), never the bytes that were sent. With `adjusted=true`, "
            "the photo as the model saw it (its adjustments applied), as a JPEG at most 1024 pixels a side.",
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problem_responses(PHOTO_GONE, QUERY_INVALID, 503),
    },
)
async def classification_image(
    job_id: JobId,
    state: StateDep,
    adjusted: Annotated[
        bool,
        Query(description="true: with the job's adjustments applied (the same photo if it had none).", examples=[True]),
    ] = False,
    download: Download = False,
) -> Response:
    """The photo a job classified, as the page shows it."""
    body = await _resource(state, job_id)
    image = body["image"]
    if adjusted and body["adjustments"]:
        with queue_errors():
            picture = await run_in_threadpool(downloads.photo, state, body)
        if picture is None:
            raise NotFound(GONE)
        name = downloads.file_name(body, "-adjusted.jpg")
        data = await run_in_threadpool(downloads.jpeg, picture)
        return Response(data, media_type="image/jpeg", headers={**PRIVATE, **downloads.disposition(name, download)})
    if "sha256" in image:
        with queue_errors():
            copy = await run_in_threadpool(uploads.display_copy, state.redis, image["sha256"])
        if copy is None:
            raise NotFound(GONE)
        name = downloads.file_name(body, ".jpg", with_model=False)
        return Response(copy, media_type="image/jpeg", headers={**PRIVATE, **downloads.disposition(name, download)})
    image_id = str(image.get("id"))
    path = state.catalogue.path(image_id)
    try:
        stat = path.stat()
    except FileNotFoundError as exc:  # removed since the catalogue listed it
        raise UnknownImage(image_id) from exc
    name = downloads.file_name(body, path.suffix.lower(), with_model=False)
    return FileResponse(
        path,
        media_type=state.catalogue.media_type(image_id),
        stat_result=stat,
        headers=downloads.disposition(name, download),
    )


@router.get(
    "/{job_id}/chart.png",
    response_class=Response,
    responses={
        200: {
            "description": "The result as a picture (1200 x 630 PNG): the top 5 as bars beside the photo's thumbnail "
            "and histograms, the model, the date, the timings and the adjustments.",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problem_responses(404, NOT_SUCCEEDED, QUERY_INVALID, 503),
    },
)
async def classification_chart(job_id: JobId, state: StateDep, download: Download = False) -> Response:
    """The result's chart as a PNG picture, to save or share."""
    body = await _resource(state, job_id)
    if body["status"] != "succeeded":
        raise NotFinished(body["status"])
    with queue_errors():
        png = await run_in_threadpool(downloads.card, state, body)
    name = downloads.file_name(body, ".png")
    return Response(png, media_type="image/png", headers={**PRIVATE, **downloads.disposition(name, download)})


async def _resource(state: AppState, job_id: str) -> dict[str, Any]:
    return await run_in_threadpool(describe_by_id, state.redis, job_id)


def _retry_after(body: dict[str, Any]) -> int:
    """Poll again in about the time left, between 1 and 5 s (sooner than the ETA if it is long:
    the ETA is an estimate and a job may be canceled)."""
    return max(1, min(5, int(body.get("eta_seconds") or 1)))


def _cancel(state: AppState, job_id: str) -> None:
    job = fetch_job(state.redis, job_id)
    with queue_errors():
        cancel.cancel_job(state.redis, job, state.settings.result_ttl)


async def _events(state: AppState, job_id: str, first: dict[str, Any]) -> AsyncIterator[ServerSentEvent]:
    body: dict[str, Any] | None = first
    last: tuple[Any, ...] | None = None
    deadline = time.monotonic() + EVENTS_MAX_SECONDS
    while body is not None:
        progress = (body["status"], body["position"], body["eta_seconds"], body["attempt"])
        finished = body["status"] not in UNFINISHED
        if progress != last or finished:
            data = (
                body if finished else dict(zip(("status", "position", "eta_seconds", "attempt"), progress, strict=True))
            )
            yield ServerSentEvent(json.dumps({"id": job_id, **data}), event="status")
            last = progress
        if finished or time.monotonic() > deadline:
            return
        await asyncio.sleep(EVENTS_POLL_SECONDS)
        try:
            body = await _resource(state, job_id)
        except ServiceError as exc:  # expired or Redis away mid-stream: say so and end
            yield ServerSentEvent(json.dumps({"id": job_id, "error": exc.message}), event="error")
            body = None
