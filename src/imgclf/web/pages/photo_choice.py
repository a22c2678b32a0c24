"""The forms' photo and adjustments: what a person sent, and "try again" from an earlier result.

"Try again with other settings" opens a form filled from an earlier job: its model, its
adjustments and its photo. A catalogue photo is simply selected; an uploaded one is offered as
the option `job:<job id>` ("your photo from the earlier result"), which the post turns back into
that job's stored upload. Catalogue ids are file names ending in an image suffix, so `job:<uuid>`
is never one of them.
"""

from __future__ import annotations

import io
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from imgclf.errors import InvalidRequest, NotFound, QueueUnavailable
from imgclf.images.adjustments import NONE, Adjustments, from_job, parse_adjustments
from imgclf.jobs import uploads
from imgclf.jobs.queue import queue_errors
from imgclf.jobs.resource import describe_by_id
from imgclf.web.state import AppState

EARLIER = "job:"
PHOTO_GONE = "Your earlier photo is no longer stored (results and photos expire); upload it again."


def adjustments_shown(fields: dict[str, Any] | None) -> Adjustments:
    """The adjustments a refused form posted, to show them again (NONE if they were invalid too:
    the form's errors say which)."""
    try:
        return parse_adjustments({name: value for name, value in (fields or {}).items() if value is not None})
    except InvalidRequest:
        return NONE


async def earlier_choice(state: AppState, job_id: str | None) -> dict[str, Any] | None:
    """What the form shows for "try again" from job `job_id`: selected model and image, the
    adjustments and the option for its uploaded photo; None if there is no such job (any more)."""
    job = await _job(state, job_id)
    return _choice(job) if job is not None else None


async def photo_source(state: AppState, image_id: str | None, file: Any) -> tuple[str | None, Any, dict | None]:
    """(image_id, file, the earlier option to show again) for the order: `job:<id>` becomes that
    job's catalogue id, or its stored upload as if sent again. InvalidRequest when it is gone."""
    if not (isinstance(image_id, str) and image_id.startswith(EARLIER)):
        return image_id, file, None
    job = await _job(state, image_id[len(EARLIER) :])
    if job is None:
        raise InvalidRequest({"image_id": PHOTO_GONE})
    image, earlier = job["image"], _choice(job)["earlier"]
    if earlier is None:  # a catalogue photo
        return image.get("id"), file, None
    if isinstance(file, UploadFile) and (file.filename or file.size):
        return image_id, file, earlier  # both: `read_order` asks to pick one
    with queue_errors():
        data = await run_in_threadpool(uploads.original, state.redis, image["sha256"])
    if data is None:
        raise InvalidRequest({"image_id": PHOTO_GONE})
    upload = UploadFile(io.BytesIO(data), size=len(data), filename=image.get("filename") or "photo")
    return None, upload, earlier


async def _job(state: AppState, job_id: str | None) -> dict[str, Any] | None:
    if not job_id:
        return None
    try:
        return await run_in_threadpool(describe_by_id, state.redis, job_id)
    except (NotFound, QueueUnavailable):
        return None


def _choice(job: dict[str, Any]) -> dict[str, Any]:
    image = job["image"]
    choice: dict[str, Any] = {
        "selected": {"model_id": job["model"], "image_id": image.get("id")},
        "adjustments": from_job(job["adjustments"]),
        "earlier": None,
    }
    if "sha256" in image:
        value = EARLIER + job["id"]
        choice["selected"]["image_id"] = value
        choice["earlier"] = {
            "value": value,
            "name": image.get("filename") or "your photo",
            "preview_url": job["links"]["self"] + "/image",
        }
    return choice
