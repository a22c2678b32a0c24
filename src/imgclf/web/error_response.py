"""The shapes of every error the web process answers, chosen by path:

- under /api/v1: RFC 9457 problem details, `application/problem+json`:
  `{"type", "title", "status", "detail"}`, plus `errors: [{"field", "detail"}]` for invalid fields;
- everywhere else (the lesson's routes, operations): `{"detail": "..."}`, as they always answered,
  except for a browser (`Accept: text/html`) refused before a page route ran (a form post over the
  body limit with JavaScript off): a small page with the message and a way back to the form.
"""

from __future__ import annotations

import html
import re
from http import HTTPStatus
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse

from imgclf.errors import InvalidRequest, ServiceError

INTERNAL_ERROR = "Something went wrong on the server; it has been logged. Try again in a moment."
"""What a caller sees of an unexpected exception: never its text, a path or a traceback."""

API_V1 = "/api/v1"
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:imgclf:problem:"
"""Each problem's `type` is this plus a stable slug (`queue-full`, `unsupported-image`, ...): a URI
that identifies the kind of problem for programs; it is not meant to be fetched."""


def is_api_v1(path: str) -> bool:
    return path == API_V1 or path.startswith(API_V1 + "/")


def error_response(
    exc: ServiceError, *, close_connection: bool = False, path: str = "", accept: str = ""
) -> JSONResponse | HTMLResponse:
    """The error with its status, and Retry-After when it has one, in the shape of `path`.

    Args:
        close_connection: send `Connection: close`, so that the server does not read the rest
            of a request body that was refused.
    """
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if close_connection:
        headers["Connection"] = "close"
    if is_api_v1(path):
        errors = None
        if isinstance(exc, InvalidRequest):
            errors = [{"field": field, "detail": message} for field, message in exc.field_errors.items()]
        return problem(exc.status_code, exc.message, slug=slug_of(exc), errors=errors, headers=headers)
    if "text/html" in accept:
        page = _PAGE.format(title=HTTPStatus(exc.status_code).phrase, message=html.escape(exc.message))
        return HTMLResponse(page, status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Image classifier</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>{title}</h1><p>{message}</p><p><a href="/classifications">Back to the form</a></p></main></body></html>
"""


def plain_error(status: int, detail: str, *, path: str, slug: str | None = None, **headers: str) -> JSONResponse:
    """An error that is not a ServiceError (404 of an unknown path, 405), in the shape of `path`."""
    if is_api_v1(path):
        return problem(status, detail, slug=slug, headers=headers)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + (slug or re.sub(r"\W+", "-", title.lower()).strip("-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def slug_of(exc: ServiceError) -> str:
    """QueueFull -> queue-full."""
    return exc.code.replace("_", "-")
