"""What OpenAPI says about the v1 routes beyond their own models: the two request bodies of a
POST, the problem details each status stands for, and what FastAPI's own spec gets wrong of them."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from imgclf.errors import (
    IdempotencyConflict,
    InvalidImage,
    InvalidRequest,
    MalformedRequest,
    NotFinished,
    NotFound,
    QueueFull,
    QueueUnavailable,
    RequestTooLarge,
    ServiceError,
    TooManyRequests,
    UnknownImage,
    UnknownJob,
    UnsupportedMediaType,
)
from imgclf.images.decoding import NOT_AN_IMAGE
from imgclf.jobs.status import API_MAX_WAIT_SECONDS
from imgclf.web.api.v1.schemas import (
    COMPARISON_EXAMPLE,
    JOB_ID_EXAMPLE,
    QUEUED_EXAMPLE,
    RESOURCE_EXAMPLE,
    Classification,
    ClassificationRequest,
    Comparison,
    ComparisonRequest,
    ImagePage,
    ModelList,
    Problem,
)
from imgclf.web.error_response import API_V1, error_response, is_api_v1
from imgclf.web.openapi import EDGE_ERRORS, EDGE_RESPONSES, RETRY_AFTER

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

ProblemDoc = tuple[int, str, ServiceError]
"""A status a route may answer: what it means there, and an error that answers it (its example)."""

PROBLEMS: dict[int, ProblemDoc] = {
    doc[0]: doc
    for doc in (
        (
            400,
            "Malformed: the body is not valid JSON, or not a readable form.",
            MalformedRequest("The body is not valid JSON."),
        ),
        (404, "No such job: it never existed, expired, or was not made by this service.", UnknownJob(JOB_ID_EXAMPLE)),
        (
            409,
            "A request with the same Idempotency-Key is still being answered; retry in a second.",
            IdempotencyConflict("A request with this Idempotency-Key is still being answered; retry in a second."),
        ),
        (
            413,
            "Too large: the body is over IMGCLF_MAX_UPLOAD_BYTES (JSON: IMGCLF_MAX_FORM_BYTES), or the image has "
            "more pixels than IMGCLF_MAX_IMAGE_PIXELS.",
            RequestTooLarge(10 * 1024 * 1024),
        ),
        (
            415,
            "The body is neither JSON nor a form, or the upload is not a JPEG, PNG, WebP, GIF, BMP or TIFF image "
            "(decided from its bytes).",
            UnsupportedMediaType(
                'Send application/json ({"model": ..., "image": ...}) or multipart/form-data '
                "(model, and image or file)."
            ),
        ),
        (
            422,
            "A field is wrong (an unknown model or image, both or neither of image and file, a refused callback_url, "
            "an adjustment out of range, an Idempotency-Key reused for another request) or the upload is damaged; "
            "`errors` names each field.",
            InvalidRequest({"model": "Unknown model 'resnet'; pick one of: efficientnet_lite0."}),
        ),
        (
            429,
            "Over IMGCLF_RATE_LIMIT_PER_MINUTE for this client; retry after Retry-After seconds.",
            TooManyRequests(30, 12),
        ),
        (503, "Redis cannot be reached; retry after Retry-After seconds.", QueueUnavailable()),
    )
}
"""What each status means where a route does not say it more precisely (see `problem_responses`)."""

SUBMISSION_UNAVAILABLE: ProblemDoc = (
    503,
    "The queue is full, the upload store is full, or Redis cannot be reached; retry after Retry-After seconds.",
    QueueFull(1_000, 5),
)
NOT_SUCCEEDED: ProblemDoc = (
    409,
    "The job has not succeeded (yet): only a succeeded job has a chart.",
    NotFinished("running"),
)
PHOTO_GONE: ProblemDoc = (
    404,
    "No such job, or its photo is no longer stored: its upload was deleted or expired, or the catalogue photo "
    "was removed.",
    NotFound("The uploaded photo is no longer stored: its job was deleted or its result expired."),
)
WAIT_INVALID: ProblemDoc = (
    422,
    f"`wait` is not an integer from 0 to {API_MAX_WAIT_SECONDS}; `errors` names it.",
    InvalidRequest({"wait": f"Input should be less than or equal to {API_MAX_WAIT_SECONDS}"}),
)
PAGE_INVALID: ProblemDoc = (
    422,
    "`page` or `per_page` is not an integer in its range; `errors` names it.",
    InvalidRequest({"per_page": "Input should be less than or equal to 100"}),
)
NO_SUCH_IMAGE: ProblemDoc = (404, "No such image in the catalogue.", UnknownImage("missing.jpg"))
UNREADABLE_IMAGE: ProblemDoc = (
    422,
    "The catalogue file cannot be decoded: not an image, damaged, or over IMGCLF_MAX_IMAGE_PIXELS.",
    InvalidImage(NOT_AN_IMAGE),
)


def problem_content(example: ServiceError) -> dict[str, Any]:
    """A problem details content with `example`'s body as its example."""
    body = json.loads(bytes(error_response(example, path=API_V1).body))
    return {"application/problem+json": {**PROBLEM_CONTENT["application/problem+json"], "example": body}}


EDGE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **EDGE_RESPONSES,
    **{status: {**EDGE_RESPONSES[status], "content": problem_content(error)} for status, error in EDGE_ERRORS.items()},
}
"""What the layers in front of the routes may answer (`imgclf.web.openapi.EDGE_RESPONSES`): under
/api/v1 the body limits' 408 and 413 are problem details; a refused Host or bad HTTP (400, plain
text) and the head limits (431, written by the HTTP server itself) are as on every other path."""


def problem_responses(*problems: int | ProblemDoc) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these problems, each a problem details body, and the edge's answers.

    A status alone means what PROBLEMS says; a ProblemDoc says what it means on this route.
    """
    responses = dict(EDGE_PROBLEMS)
    for problem in problems:
        status, description, example = PROBLEMS[problem] if isinstance(problem, int) else problem
        response: dict[str, Any] = {"description": description, "content": problem_content(example)}
        if example.retry_after is not None:
            response["headers"] = RETRY_AFTER
        edge = EDGE_PROBLEMS.get(status)
        if edge is not None and "application/problem+json" not in edge["content"]:  # the edge's plain-text 400
            response["description"] += f" As text/plain: {edge['description']}"
            response["content"] = {**response["content"], **edge["content"]}
        responses[status] = response
    return {status: responses[status] for status in sorted(responses, key=str)}


EXAMPLES: dict[str, dict[str, Any]] = {
    "QueuedClassification": {"summary": "Queued: no worker has started it yet", "value": QUEUED_EXAMPLE},
    "SucceededClassification": {"summary": "Succeeded: its top 5", "value": RESOURCE_EXAMPLE},
    "Comparison": {"summary": "Two models on one photo, both done", "value": COMPARISON_EXAMPLE},
}
"""Named job resources, put into the spec's components by `complete_openapi` (given inline to a
route, FastAPI would drop their nulls, and the examples would miss required fields)."""

EVENTS_EXAMPLE = "".join(
    f"event: status\r\ndata: {json.dumps(data)}\r\n\r\n"
    for data in (
        {"id": QUEUED_EXAMPLE["id"], "status": "queued", "position": 0, "eta_seconds": 1, "attempt": 1},
        {"id": QUEUED_EXAMPLE["id"], "status": "running", "position": None, "eta_seconds": 1, "attempt": 1},
        RESOURCE_EXAMPLE,
    )
)
"""A job's event stream from queued to succeeded: the last event carries the whole job resource."""


def resource_content(*examples: str, schema: str = "Classification") -> dict[str, Any]:
    """The content of a job (or `schema`) resource answer, with these EXAMPLES."""
    return {
        "application/json": {
            "schema": {"$ref": f"#/components/schemas/{schema}"},
            "examples": {name: {"$ref": f"#/components/examples/{name}"} for name in examples},
        }
    }


CLASSIFICATION_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/ClassificationRequest"},
            "example": {"model": "efficientnet_lite0", "image": "chelsea.jpg"},
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["model"],
                "properties": {
                    "model": {"type": "string", "description": "A model id from GET /api/v1/models."},
                    "image": {"type": "string", "description": "A catalogue image id (or send file instead)."},
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "An image to classify: JPEG, PNG, WebP, GIF (first frame), BMP or TIFF, "
                        "at most IMGCLF_MAX_UPLOAD_BYTES.",
                    },
                    "callback_url": {"type": "string", "description": "Optional webhook (see the JSON body)."},
                    "adjustments": {
                        "type": "string",
                        "description": "Optional: the adjustments object of the JSON body, as JSON text, e.g. "
                        '{"brightness": 1.2, "rotate": 90}.',
                    },
                },
            },
            "example": {"model": "efficientnet_lite0", "image": "chelsea.jpg"},
            "encoding": {"file": {"contentType": "image/*"}},
        },
    },
}


COMPARISON_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/ComparisonRequest"},
            "example": {"image": "chelsea.jpg", "models": ["efficientnet_lite0", "efficientnet_lite1"]},
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "image": {"type": "string", "description": "A catalogue image id (or send file instead)."},
                    "file": {"type": "string", "format": "binary", "description": "A photo to upload instead."},
                    "models": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Model ids (repeat the field, or separate them by commas); none: every "
                        "available model.",
                    },
                    "adjustments": {"type": "string", "description": "The adjustments object as JSON text."},
                },
            },
            "example": {"image": "chelsea.jpg", "models": ["efficientnet_lite0", "efficientnet_lite1"]},
            "encoding": {"file": {"contentType": "image/*"}},
        },
    },
}

QUERY_INVALID: ProblemDoc = (
    422,
    "A query parameter is not what it should be (`download` and `adjusted` take true or false); `errors` names it.",
    InvalidRequest({"download": "Input should be a valid boolean"}),
)

V1_MODELS: tuple[type[BaseModel], ...] = (
    Problem,
    ClassificationRequest,
    Classification,
    ModelList,
    ImagePage,
    ComparisonRequest,
    Comparison,
)
"""The models whose schemas (with their examples) `complete_openapi` puts into the spec."""

FASTAPI_422_SCHEMA = {"$ref": "#/components/schemas/HTTPValidationError"}
"""The default 422 FastAPI documents on every route with parameters."""


def complete_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """Put right what FastAPI's spec leaves out of the v1 routes, or gets wrong:

    - the schemas of V1_MODELS, with their examples whole: FastAPI adds only the models routes
      declare (not Problem or ClassificationRequest), and drops every null from what it writes;
    - EXAMPLES, which `resource_content` refers to;
    - no default 422 (`HTTPValidationError`, application/json) on a v1 route: an invalid field is a
      problem details 422 there, documented by each route that can answer it (a route whose only
      parameter is a string in its path cannot).
    """
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in V1_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    components.setdefault("examples", {}).update(EXAMPLES)
    for path, operations in spec.get("paths", {}).items():
        if not is_api_v1(path):
            continue
        for operation in operations.values():
            responses = operation.get("responses", {})
            content = responses.get("422", {}).get("content", {})
            if content.get("application/json", {}).get("schema") == FASTAPI_422_SCHEMA:
                del responses["422"]
    return spec
