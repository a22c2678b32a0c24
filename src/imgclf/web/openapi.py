"""What every route documents besides its own answers: the JSON error shape, Retry-After, and
what the layers in front of the routes may answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from imgclf.errors import RequestTimeout, RequestTooLarge, ServiceError


class ErrorBody(BaseModel):
    detail: str


JSON_ERROR = {"application/json": {"schema": ErrorBody.model_json_schema()}}
"""The content of a JSON error, inlined: FastAPI documents a `model` in the route's own media type
(text/html on the pages)."""

PLAIN_TEXT = {"text/plain": {"schema": {"type": "string"}}}
"""The content of the answers the HTTP server and Starlette write themselves (a refused Host, bad HTTP)."""

RETRY_AFTER = {
    "Retry-After": {"description": "Seconds after which trying again makes sense.", "schema": {"type": "integer"}}
}


def json_error(description: str, *, retry_after: bool = False, example: str | None = None) -> dict[str, Any]:
    """An OpenAPI response: the JSON error `{"detail": "..."}`, with Retry-After if it says when to retry."""
    content = JSON_ERROR
    if example is not None:
        content = {"application/json": {**JSON_ERROR["application/json"], "example": {"detail": example}}}
    response: dict[str, Any] = {"description": description, "content": content}
    if retry_after:
        response["headers"] = RETRY_AFTER
    return response


EDGE_ERRORS: dict[int, ServiceError] = {408: RequestTimeout(30), 413: RequestTooLarge(8_192)}
"""What the body limits answer with the default settings: the examples of their responses."""

EDGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "The Host header is not in IMGCLF_ALLOWED_HOSTS, or the request is not valid HTTP.",
        "content": {"text/plain": {**PLAIN_TEXT["text/plain"], "example": "Invalid host header"}},
    },
    408: json_error(
        "The request body did not arrive within IMGCLF_BODY_TIMEOUT seconds; the connection is closed.",
        example=EDGE_ERRORS[408].message,
    ),
    413: json_error(
        "The request body is over the route's limit (IMGCLF_MAX_FORM_BYTES); the connection is closed.",
        example=EDGE_ERRORS[413].message,
    ),
    431: json_error(
        "The request line and headers are over IMGCLF_MAX_HEADER_BYTES, or have more than IMGCLF_MAX_HEADER_COUNT "
        "fields; the connection is closed.",
        example="The request line and headers are larger than this server accepts (16,384 bytes).",
    ),
}
"""What the layers in front of every route may answer (`imgclf.web.middleware.body_limits`, `imgclf.web.server`)."""
