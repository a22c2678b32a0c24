"""The service's errors. Each one knows its HTTP status and says what a person can do.

ServiceError                   500, the base: rendered by one handler per surface
├── InvalidRequest             422, a form or request field is wrong (errors per field)
├── InvalidImage               422, the file is not an image the service reads, is damaged or too large
├── UnsupportedImage           415, an upload's bytes are not one of the accepted image types
├── ImageTooLarge              413, an upload's header names more pixels than the limit
├── NotFound                   404
│   ├── UnknownJob             no job with that id (never existed, expired, or not ours)
│   └── UnknownImage           no image with that id in the catalogue
├── NotFinished                409, the job has no result (yet) for what was asked
├── CrossSiteRequest           403, a form posted from another site (CSRF)
├── RequestTimeout             408, the client sent its body too slowly
├── RequestTooLarge            413, the body is over the route's limit
├── TooManyRequests            429, this client is over its rate limit (Retry-After)
├── QueueUnavailable           503, Redis cannot be reached (Retry-After)
├── QueueFull                  503, too many jobs wait already (Retry-After)
└── ClassificationError        a worker cannot run this job (model not loaded, upload gone): the job's `error`

A job that fails for a ServiceError (an InvalidImage, an UnknownImage, a ClassificationError) ends
with that error's message as its `error`: it is written for the person who asked.
"""

from __future__ import annotations

import re


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status_code = 500
    retry_after: int | None = None
    """Seconds after which trying again makes sense; sent as the Retry-After header."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        """A stable name for the kind of error, from its class: InvalidImage -> invalid_image."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()


class InvalidRequest(ServiceError):
    """One or more request fields are invalid; `field_errors` maps field name to message."""

    status_code = 422

    def __init__(self, field_errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in field_errors.items()))
        self.field_errors = field_errors


class InvalidImage(ServiceError):
    """The bytes are not an image the service decodes (or are damaged, or have too many pixels).

    The user's mistake, not the service's: decoding says so in words a person can act on, never
    in Pillow's (which name server paths and internals).
    """

    status_code = 422


class UnsupportedImage(ServiceError):
    """An upload whose bytes are not one of the accepted image types (whatever its name says)."""

    status_code = 415


class ImageTooLarge(ServiceError):
    """An upload with more pixels than the limit, read from its header before any decoding."""

    status_code = 413


class NotFound(ServiceError):
    status_code = 404


class UnknownJob(NotFound):
    def __init__(self, job_id: str) -> None:
        shown = job_id if len(job_id) <= 60 else job_id[:57] + "..."
        super().__init__(f"No classification job with id {shown!r}: it never existed or its result expired.")


class UnknownImage(NotFound):
    def __init__(self, image_id: str) -> None:
        super().__init__(f"No image {image_id!r} in the catalogue; GET /api/v1/images (or /info) lists the image ids.")


class NotFinished(ServiceError):
    """Something only a succeeded job has (its chart) was asked of one that has not succeeded."""

    status_code = 409

    def __init__(self, status: str) -> None:
        if status in ("queued", "running"):
            super().__init__(f"The job is {status}: its chart exists once it has succeeded; try again shortly.")
        else:
            super().__init__(f"The job {status}: it has no result to draw.")


class CrossSiteRequest(ServiceError):
    status_code = 403

    def __init__(self) -> None:
        super().__init__("This form was posted from another site; open the form on this site and submit it there.")


class RequestTimeout(ServiceError):
    status_code = 408

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The request body did not arrive within {seconds:g} s; send it again.")


class RequestTooLarge(ServiceError):
    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than this route accepts ({limit:,} bytes).")


class TooManyRequests(ServiceError):
    status_code = 429

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"Too many classifications from your address (the limit is {limit} a minute); try again in {retry_after} s."
        )
        self.retry_after = retry_after


class QueueUnavailable(ServiceError):
    status_code = 503
    retry_after = 5

    def __init__(self) -> None:
        super().__init__("The job queue (Redis) cannot be reached right now; try again shortly.")


class QueueFull(ServiceError):
    status_code = 503

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(
            f"The service is busy: {waiting:,} classifications are already waiting. Try again in {retry_after} s."
        )
        self.retry_after = retry_after


class ClassificationError(ServiceError):
    """A job the worker that took it cannot do: its model is not loaded there, or its uploaded
    photo is no longer stored."""


class MalformedRequest(ServiceError):
    """400: the request cannot be read at all (JSON that does not parse, a body of another type)."""

    status_code = 400


class UnsupportedMediaType(ServiceError):
    """415: the request body is neither JSON nor a multipart form."""

    status_code = 415


class IdempotencyConflict(ServiceError):
    """409: a request with the same Idempotency-Key is still being answered."""

    status_code = 409
    retry_after = 1


class UploadStoreFull(ServiceError):
    """503: the uploaded photos kept for the workers are at `upload_store_bytes` (Retry-After)."""

    status_code = 503
    retry_after = 60

    def __init__(self, bound: int) -> None:
        super().__init__(
            f"The service holds as many uploaded photos as it may ({bound // (1024 * 1024)} MB); "
            "try again in a minute, or pick a photo from the catalogue."
        )
