"""The service's errors. Each one knows its HTTP status and says what a person can do.

ServiceError                   500, the base: rendered by one handler per surface
├── InvalidRequest             422, a form or request field is wrong (errors per field)
├── NotFound                   404
│   ├── UnknownJob             no job with that id (never existed, or expired)
│   └── UnknownImage           no image with that id in the catalogue
├── QueueUnavailable           503, Redis cannot be reached
└── ClassificationError        raised in a worker; its message becomes the job's `error`
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError):
    """One or more request fields are invalid; `field_errors` maps field name to message."""

    status_code = 422

    def __init__(self, field_errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in field_errors.items()))
        self.field_errors = field_errors


class NotFound(ServiceError):
    status_code = 404


class UnknownJob(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"No classification job with id {job_id!r}: it never existed or its result expired.")


class UnknownImage(NotFound):
    def __init__(self, image_id: str) -> None:
        super().__init__(f"No image {image_id!r} in the catalogue; GET /info lists the image ids.")


class QueueUnavailable(ServiceError):
    status_code = 503

    def __init__(self) -> None:
        super().__init__("The job queue (Redis) cannot be reached right now; try again shortly.")


class ClassificationError(ServiceError):
    """A job that cannot be done for a reason the user can understand (bad image, model gone)."""
