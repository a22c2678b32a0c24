"""What OpenAPI says about the v1 routes beyond their own models: the two request bodies of a
POST and the problem details each status stands for."""

from __future__ import annotations

from typing import Any

from imgclf.web.api.v1.schemas import ClassificationRequest, Problem
from imgclf.web.openapi import RETRY_AFTER

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

PROBLEMS: dict[int, str] = {
    400: "Malformed: the body is not valid JSON, or not a readable form.",
    404: "No such job: it never existed, expired, or was not made by this service.",
    409: "A request with the same Idempotency-Key is still being answered; retry in a second.",
    413: "Too large: the body is over IMGCLF_MAX_UPLOAD_BYTES (JSON: IMGCLF_MAX_FORM_BYTES), or the image has "
    "more pixels than IMGCLF_MAX_IMAGE_PIXELS.",
    415: "The body is neither JSON nor a form, or the upload is not a JPEG, PNG, WebP, GIF, BMP or TIFF image "
    "(decided from its bytes).",
    422: "A field is wrong (an unknown model or image, both or neither of image and file, a refused callback_url, "
    "an Idempotency-Key reused for another request) or the upload is damaged; `errors` names each field.",
    429: "Over IMGCLF_RATE_LIMIT_PER_MINUTE for this client; retry after Retry-After seconds.",
    503: "The queue is full, the upload store is full, or Redis cannot be reached; retry after Retry-After seconds.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these statuses, each a problem details body."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {"description": PROBLEMS[status], "content": PROBLEM_CONTENT}
        if status in (409, 429, 503):
            response["headers"] = RETRY_AFTER
        responses[status] = response
    return responses


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
                },
            },
            "encoding": {"file": {"contentType": "image/*"}},
        },
    },
}


def add_component_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """Put the schemas the responses above refer to (Problem, ClassificationRequest) into the
    spec's components: FastAPI adds only the models routes declare as parameters or responses."""

    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, ClassificationRequest):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return spec
