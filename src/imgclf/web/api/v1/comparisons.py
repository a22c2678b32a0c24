"""/api/v1/comparisons: one photo classified by several models side by side (`imgclf.jobs.comparisons`).

POST answers at once (202 + Location + Retry-After, or 200 when every model's answer came from
the cache); GET reads it, with long polling (`wait`) until every model's job has ended.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from imgclf.jobs.comparisons import describe_comparison, submit_comparison, wait_for_comparison
from imgclf.jobs.resource import UNFINISHED
from imgclf.jobs.status import API_MAX_WAIT_SECONDS
from imgclf.web.api.v1.bodies import read_fields
from imgclf.web.api.v1.docs import (
    COMPARISON_REQUEST_BODY,
    SUBMISSION_UNAVAILABLE,
    WAIT_INVALID,
    problem_responses,
    resource_content,
)
from imgclf.web.api.v1.schemas import JOB_ID_EXAMPLE, Comparison, ComparisonRequest
from imgclf.web.intake import FieldNames, read_models, read_order
from imgclf.web.middleware.body_limits import body_limit
from imgclf.web.openapi import RETRY_AFTER
from imgclf.web.state import AppState, ChoicesDep, StateDep

router = APIRouter(prefix="/api/v1/comparisons", tags=["v1: comparisons"])

FIELDS = FieldNames(model="models", image="image", file="file")
LOCATION = {"Location": {"description": "The comparison resource to poll.", "schema": {"type": "string"}}}

ComparisonId = Annotated[str, Path(description="The comparison id from the POST.", examples=[JOB_ID_EXAMPLE])]


@router.post(
    "",
    status_code=202,
    response_model=Comparison,
    responses={
        200: {
            "description": "Every model's answer was already known (result cache).",
            "headers": LOCATION,
            "content": resource_content("Comparison", schema="Comparison"),
        },
        202: {
            "description": "Accepted: the comparison resource; poll `Location` after `Retry-After` seconds.",
            "headers": {**LOCATION, **RETRY_AFTER},
            "content": resource_content("Comparison", schema="Comparison"),
        },
        **problem_responses(400, 413, 415, 422, 429, SUBMISSION_UNAVAILABLE),
    },
    openapi_extra={"requestBody": COMPARISON_REQUEST_BODY},
)
@body_limit("max_upload_bytes")
async def create_comparison(request: Request, state: StateDep, choices: ChoicesDep) -> JSONResponse:
    """Classify one photo with several models (every available one by default), each as its own job.

    Each model counts as one request against IMGCLF_RATE_LIMIT_PER_MINUTE and one job against the
    queue's bound."""
    fields, form = await read_fields(
        request,
        state,
        ComparisonRequest,
        ("image", "file", "models", "adjustments"),
        lists=("models",),
        how='Send application/json ({"image": ..., "models": [...]}) or multipart/form-data (image or file, models).',
    )
    try:
        models = read_models(choices, _split(fields.get("models")), FIELDS.model)
        order, upload = await read_order(
            state, choices, FIELDS, models[0], fields.get("image"), fields.get("file"), None, fields.get("adjustments")
        )
    finally:
        if form is not None:
            await form.close()
    client = request.client.host if request.client else None
    comparison_id = await run_in_threadpool(
        submit_comparison, state.redis, state.settings, order, models, client, upload
    )
    body = await _resource(state, comparison_id)
    headers = {"Location": body["links"]["self"]}
    finished = body["status"] not in UNFINISHED
    if not finished:
        headers["Retry-After"] = "1"
    return JSONResponse(body, status_code=200 if finished else 202, headers=headers)


@router.get(
    "/{comparison_id}",
    response_model=Comparison,
    responses={
        200: {
            "description": "The comparison; `Retry-After` while a model's job is queued or running.",
            "headers": RETRY_AFTER,
            "content": resource_content("Comparison", schema="Comparison"),
        },
        **problem_responses(404, WAIT_INVALID, 503),
    },
)
async def get_comparison(
    comparison_id: ComparisonId,
    state: StateDep,
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=API_MAX_WAIT_SECONDS,
            description="Seconds to wait for every model's job to end before answering (long polling); 0 answers "
            f"at once; at most {API_MAX_WAIT_SECONDS}.",
            examples=[10],
        ),
    ] = 0,
) -> JSONResponse:
    """A comparison: each model's job resource and where they agree. 404 once expired."""
    body = await _resource(state, comparison_id)
    if wait and body["status"] in UNFINISHED:
        await wait_for_comparison(state.redis_async, body, wait)
        body = await _resource(state, comparison_id)
    headers = {"Retry-After": "1"} if body["status"] in UNFINISHED else {}
    return JSONResponse(body, headers=headers)


def _split(models: Any) -> Any:
    """A form's models: repeated fields, or ids separated by commas."""
    if not isinstance(models, list):
        return models
    return [part.strip() for value in models for part in str(value).split(",") if part.strip()]


async def _resource(state: AppState, comparison_id: str) -> dict[str, Any]:
    return await run_in_threadpool(describe_comparison, state.redis, comparison_id)
