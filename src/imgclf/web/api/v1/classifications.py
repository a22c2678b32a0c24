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
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from imgclf.errors import (
    InvalidRequest,
    MalformedRequest,
    NotFound,
    RequestTooLarge,
    ServiceError,
    UnknownImage,
    UnsupportedMediaType,
)
from imgclf.jobs import cancel, idempotency, uploads
from imgclf.jobs.queue import queue_errors
from imgclf.jobs.resource import UNFINISHED, describe_by_id
from imgclf.jobs.status import API_MAX_WAIT_SECONDS, fetch_job, wait_for_end
from imgclf.jobs.submit import Ticket, submit_order
from imgclf.web.api.v1.docs import (
    CLASSIFICATION_REQUEST_BODY,
    EVENTS_EXAMPLE,
    PHOTO_GONE,
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
    fields, form = await _read_fields(request, state)
    try:
        order, upload = await read_order(
            state,
            choices,
            API_FIELDS,
            fields.get("model"),
            fields.get("image"),
            fields.get("file"),
            fields.get("callback_url"),
        )
    finally:
        if form is not None:
            await form.close()  # the upload's spooled file
    client = request.client.host if request.client else None
    key = idempotency.validate_key(idempotency_key) if idempotency_key is not None else None
    fingerprint = idempotency.fingerprint(order.model_id, order.digest, order.callback_url)
    ttl = state.settings.result_ttl
    with queue_errors():
        earlier = await run_in_threadpool(idempotency.claim, state.redis, key, fingerprint, ttl) if key else None
    if earlier is not None:
        ticket = Ticket(earlier)
    else:
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
    body = await _resource(state, ticket.job_id)
    finished = body["status"] not in UNFINISHED
    headers = {"Location": body["links"]["self"]}
    if not finished:
        headers["Retry-After"] = str(_retry_after(body))
    return JSONResponse(body, status_code=200 if finished else 202, headers=headers)


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
) -> JSONResponse:
    """A classification job: where it stands and, once it succeeded, its top 5. 404 once expired."""
    body = await _resource(state, job_id)
    if wait and body["status"] in UNFINISHED:
        await wait_for_end(state.redis_async, job_id, wait)
        body = await _resource(state, job_id)
    headers = {"Retry-After": str(_retry_after(body))} if body["status"] in UNFINISHED else {}
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
            "JPEG without its metadata (no EXIF, no GPS), never the bytes that were sent.",
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problem_responses(PHOTO_GONE, 503),
    },
)
async def classification_image(job_id: JobId, state: StateDep) -> Response:
    """The photo a job classified, as the page shows it."""
    body = await _resource(state, job_id)
    image = body["image"]
    if "sha256" in image:
        with queue_errors():
            copy = await run_in_threadpool(uploads.display_copy, state.redis, image["sha256"])
        if copy is None:
            raise NotFound("The uploaded photo is no longer stored: its job was deleted or its result expired.")
        return Response(copy, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
    image_id = str(image.get("id"))
    path = state.catalogue.path(image_id)
    try:
        stat = path.stat()
    except FileNotFoundError as exc:  # removed since the catalogue listed it
        raise UnknownImage(image_id) from exc
    return FileResponse(path, media_type=state.catalogue.media_type(image_id), stat_result=stat)


async def _read_fields(request: Request, state: AppState) -> tuple[dict[str, Any], FormData | None]:
    """The request's fields, from a JSON body or a form (multipart or urlencoded; the caller closes it)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        raw = await request.body()
        if len(raw) > state.settings.max_form_bytes:
            raise RequestTooLarge(state.settings.max_form_bytes)
        try:
            parsed = ClassificationRequest.model_validate_json(raw)
        except ValidationError as exc:
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                raise MalformedRequest("The body is not valid JSON.") from exc
            raise InvalidRequest(
                {".".join(str(part) for part in error["loc"]) or "body": error["msg"] for error in exc.errors()}
            ) from exc
        return parsed.model_dump(), None
    if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=1, max_fields=8)
        fields: dict[str, Any] = {}
        for name in ("model", "image", "file", "callback_url"):
            value = form.get(name)
            if name != "file" and isinstance(value, UploadFile):
                await form.close()
                raise InvalidRequest({name: f"Send {name} as a text field, not a file."})
            fields[name] = value if value != "" else None
        return fields, form
    raise UnsupportedMediaType(
        'Send application/json ({"model": ..., "image": ...}) or multipart/form-data (model, and image or file).'
    )


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
