"""The one JSON shape of every error the web process answers: `{"detail": "..."}`."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from imgclf.errors import ServiceError

INTERNAL_ERROR = "Something went wrong on the server; it has been logged. Try again in a moment."
"""What a caller sees of an unexpected exception: never its text, a path or a traceback."""


def error_response(exc: ServiceError, *, close_connection: bool = False) -> JSONResponse:
    """`{"detail": message}` with the error's status, and Retry-After when it has one.

    Args:
        close_connection: send `Connection: close`, so that the server does not read the rest
            of a request body that was refused.
    """
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if close_connection:
        headers["Connection"] = "close"
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)
