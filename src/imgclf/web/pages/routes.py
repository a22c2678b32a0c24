"""The HTML pages: home, the classification form, a job's result page, and catalogue images.

The form posts, then redirects (303) to the job's result page, `/results/{job_id}`: reloading
it never submits again, and its address can be sent to someone else until the result expires.
"""

from __future__ import annotations

import html
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from imgclf.errors import (
    CrossSiteRequest,
    ImageTooLarge,
    InvalidImage,
    InvalidRequest,
    NotFound,
    QueueFull,
    QueueUnavailable,
    ServiceError,
    TooManyRequests,
    UnsupportedImage,
    UploadStoreFull,
)
from imgclf.jobs.resource import UNFINISHED, describe_by_id
from imgclf.jobs.submit import submit_order
from imgclf.models.registry import MODELS
from imgclf.web.intake import FieldNames, read_order
from imgclf.web.middleware.body_limits import body_limit
from imgclf.web.openapi import EDGE_RESPONSES, JSON_ERROR, PLAIN_TEXT, RETRY_AFTER, json_error
from imgclf.web.origin import is_cross_site
from imgclf.web.state import ChoicesDep, StateDep

router = APIRouter(tags=["pages"], responses=EDGE_RESPONSES)

FORM_FIELDS = FieldNames(model="model_id", image="image_id", file="file", for_people=True)

HTML = {"text/html": {"schema": {"type": "string"}}}

BUSY = {"content": {**HTML, **JSON_ERROR}, "headers": RETRY_AFTER}
"""A refusal with Retry-After: the form again for a browser (Accept: text/html), else the JSON error."""

FORM_ROOM = 2048
"""Bytes of the form's multipart body besides the file (boundaries, part headers, the other fields):
the page refuses a file over `max_upload_bytes` less this, so what it lets through the server takes."""

TIMING_NAMES = {
    "queued": "Waiting in the queue",
    "decode": "Decoding the photo",
    "preprocess": "Preparing it for the model",
    "inference": "The model",
    "total": "Total",
}
"""The timings the result page shows, in its order (result.js fills in those that arrive later)."""

CROSS_SITE_HEADERS = [
    {
        "name": "Sec-Fetch-Site",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "enum": ["same-origin", "none", "same-site", "cross-site"]},
        "description": "Sent by browsers: a post is refused (403) unless it is `same-origin` or `none`.",
    },
    {
        "name": "Origin",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "Sent by browsers: a post is refused (403) unless it names the Host header's host and port.",
    },
]
"""The headers of the cross-site check (`imgclf.web.origin`); programs may send neither."""


@router.get("/", response_class=HTMLResponse)
def home(request: Request, state: StateDep) -> HTMLResponse:
    """Show the home page."""
    return _render(request, state, "home.html")


@router.get("/classifications", response_class=HTMLResponse)
def classification_form(request: Request, state: StateDep, choices: ChoicesDep) -> HTMLResponse:
    """Show the form to pick a model and a catalogue image or upload a photo."""
    return _form_page(request, state, choices)


@router.post(
    "/classifications",
    status_code=303,
    response_class=HTMLResponse,
    responses={
        303: {
            "description": "Queued (or answered from the result cache, or by the same photo's job already "
            "queued): `Location` is the job's result page, with a link to it in the body",
            "headers": {
                "Location": {
                    "description": "The job's result page, /results/{job_id}.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
        400: {
            "description": "The body cannot be parsed as a form, or the Host header or the request is refused "
            "(text/plain, as on every route)",
            "content": {**PLAIN_TEXT, **JSON_ERROR},
        },
        403: {"description": "Posted from another site: the form again, with the reason", "content": HTML},
        413: {
            "description": "The body is over IMGCLF_MAX_UPLOAD_BYTES (JSON; the connection is closed), or the "
            "uploaded image has more pixels than IMGCLF_MAX_IMAGE_PIXELS (the form again)",
            "content": {**HTML, **JSON_ERROR},
        },
        415: {"description": "The upload is not a JPEG, PNG, WebP, GIF, BMP or TIFF: the form again", "content": HTML},
        422: {
            "description": "A field is missing or unknown, both or neither of image_id and file were sent, or the "
            "upload is damaged: the form again, a message per field",
            "content": HTML,
        },
        429: {"description": "Over IMGCLF_RATE_LIMIT_PER_MINUTE for this client", **BUSY},
        503: {
            "description": "The queue or the upload store is full (IMGCLF_MAX_QUEUED_JOBS, "
            "IMGCLF_UPLOAD_STORE_BYTES) or Redis cannot be reached",
            **BUSY,
        },
    },
    openapi_extra={"parameters": CROSS_SITE_HEADERS},
)
@body_limit("max_upload_bytes")
async def request_classification(
    request: Request,
    state: StateDep,
    choices: ChoicesDep,
    model_id: Annotated[
        str | None, Form(description="A model id from GET /info.", examples=["efficientnet_lite0"])
    ] = None,
    image_id: Annotated[
        str | None,
        Form(description="A catalogue image id from GET /info (or send file instead).", examples=["chelsea.jpg"]),
    ] = None,
    file: Annotated[
        UploadFile | str | None,
        File(
            description="A photo to classify instead of a catalogue image: JPEG, PNG, WebP, GIF (first frame), BMP "
            "or TIFF, the whole body at most IMGCLF_MAX_UPLOAD_BYTES."
        ),
    ] = None,
) -> HTMLResponse:
    """Queue a classification, then send the browser to its result page (post/redirect/get)."""
    # What the person picked is shown again, "None" for the catalogue if they sent a file (which
    # cannot be: browsers do not allow it). A file arrives as Starlette's UploadFile, not FastAPI's.
    uploading = file is not None and not isinstance(file, str)
    selected = {"model_id": model_id, "image_id": "" if uploading and not image_id else image_id}
    try:
        if is_cross_site(request.headers):
            raise CrossSiteRequest()
        order, upload = await read_order(state, choices, FORM_FIELDS, model_id, image_id, file)
        client = request.client.host if request.client else None
        ticket = await run_in_threadpool(submit_order, state.redis, state.settings, order, client, upload)
    except (CrossSiteRequest, InvalidRequest, UnsupportedImage, ImageTooLarge, InvalidImage) as exc:
        return _refusal_page(request, state, choices, exc, selected)
    except (QueueFull, QueueUnavailable, TooManyRequests, UploadStoreFull) as exc:
        if "text/html" not in request.headers.get("accept", ""):
            raise  # a program: the JSON error, as every other route answers
        return _refusal_page(request, state, choices, exc, selected)  # a browser: when to come back
    return _see_other(path_for(request, "result_page", job_id=ticket.job_id))


@router.get(
    "/results/{job_id}",
    response_class=HTMLResponse,
    responses={
        200: {"description": "The job's page: what is known now, then (with JavaScript) its progress live"},
        404: {"description": "No such job: it never existed or its result expired", "content": HTML},
        503: {"description": "Redis (the job queue) cannot be reached", "content": HTML, "headers": RETRY_AFTER},
    },
)
async def result_page(
    request: Request,
    state: StateDep,
    job_id: Annotated[str, Path(description="The job id the form's post redirected to.")],
) -> HTMLResponse:
    """Show one job: its photo, model and progress, then its top 5 and timings, or why it failed."""
    try:
        job = await run_in_threadpool(describe_by_id, state.redis, job_id)
    except NotFound:
        return _notice_page(
            request,
            state,
            "No such result",
            "This result expired or never existed: results are kept for a limited time, then deleted.",
            404,
        )
    except QueueUnavailable as exc:
        page = _notice_page(request, state, "Try again shortly", exc.message, exc.status_code)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    settings = state.settings
    image = job["image"]
    uploaded = "sha256" in image
    spec = MODELS.get(job["model"] or "")
    context = {
        "job": job,
        "unfinished": job["status"] in UNFINISHED,
        "attempts": settings.job_retries + 1,
        "progress": _progress_words(job, settings.job_retries + 1),
        "model_title": spec.title if spec else job["model"],
        "image_url": _rooted(request, job["links"]["self"] + "/image")
        if uploaded
        else path_for(request, "catalogue_image", image_id=image["id"] or "-"),
        "image_name": (image.get("filename") or "your photo") if uploaded else image["id"],
        "links": {name: _rooted(request, link) for name, link in job["links"].items()},
        "timings": [
            (key, name, _milliseconds(job["timings_ms"][key]) if job["timings_ms"].get(key) is not None else None)
            for key, name in TIMING_NAMES.items()
        ],
    }
    return _render(request, state, "result.html", context)


def _progress_words(job: dict[str, Any], attempts: int) -> str:
    """Where a job stands, in words ("3rd in line, about 2 s"); result.js says the same live."""
    status, eta = job["status"], job["eta_seconds"]
    if status == "queued":
        place = "queued" if job["position"] is None else f"{_ordinal(job['position'] + 1)} in line"
        return place if eta is None else f"{place}, about {_seconds(eta)}"
    if status == "running":
        words = "running" if job["attempt"] <= 1 else f"running (attempt {job['attempt']} of {attempts})"
        return f"{words}, about {_seconds(eta)} left" if eta else words
    if status == "succeeded":
        return "Done (from the cache)." if job["cached"] else "Done."
    return "Canceled." if status == "canceled" else "Failed."


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _seconds(seconds: int) -> str:
    return f"{max(1, seconds)} s" if seconds < 90 else f"{round(seconds / 60)} min"


def _milliseconds(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def _see_other(location: str) -> HTMLResponse:
    """A 303 to `location`, with the short note and link RFC 9110 asks a 303's body to carry."""
    link = html.escape(location)
    note = f'<!doctype html>\n<title>Queued</title>\n<p>Queued: see <a href="{link}">the result page</a>.</p>\n'
    return HTMLResponse(note, status_code=303, headers={"Location": location})


def _refusal_page(
    request: Request, state: StateDep, choices: ChoicesDep, refusal: ServiceError, selected: dict[str, str | None]
) -> HTMLResponse:
    """The form again with the refusal's reason (per field when it has them) and its status."""
    if isinstance(refusal, InvalidRequest):
        errors = refusal.field_errors
    elif isinstance(refusal, UnsupportedImage | ImageTooLarge | InvalidImage):
        errors = {FORM_FIELDS.file: refusal.message}
    else:
        errors = {"form": refusal.message}
    if isinstance(refusal, CrossSiteRequest):
        selected = {}
    page = _form_page(request, state, choices, errors=errors, selected=selected, status_code=refusal.status_code)
    if refusal.retry_after is not None:
        page.headers["Retry-After"] = str(refusal.retry_after)
    return page


@router.get(
    "/images/{image_id}",
    response_class=FileResponse,
    responses={
        200: {"description": "The photo", "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}},
        404: json_error("No such image in the catalogue"),
    },
)
def catalogue_image(
    image_id: Annotated[str, Path(description="An image id from GET /info.", examples=["chelsea.jpg"])], state: StateDep
) -> FileResponse:
    """Send one catalogue photo (404 for anything not in the catalogue)."""
    path = state.catalogue.path(image_id)
    return FileResponse(
        path,
        media_type=state.catalogue.media_type(image_id),
        headers={"Cache-Control": "public, max-age=3600"},
    )


def path_for(request: Request, name: str, /, **path_params: Any) -> str:
    """A link to a route as a path from the site's root, under the app's root_path.

    Starlette's `url_for` builds absolute URLs from the Host header, which the client chooses
    (measured: `Host: evil.example` made the page load its CSS from evil.example).
    """
    return _rooted(request, str(request.app.url_path_for(name, **path_params)))


def _rooted(request: Request, path: str) -> str:
    """`path`, a path from the app's root (a route's, or a job resource's link), under its root_path."""
    root_path: str = request.scope.get("root_path", "")
    return root_path.rstrip("/") + path


def _render(
    request: Request, state: StateDep, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    # `url_for` in the context hides the Jinja environment's own, which is Starlette's.
    page_context = {**(context or {}), "url_for": partial(path_for, request)}
    return state.templates.TemplateResponse(request, template, page_context, status_code=status_code)


def _notice_page(request: Request, state: StateDep, title: str, message: str, status_code: int) -> HTMLResponse:
    return _render(request, state, "notice.html", {"title": title, "message": message}, status_code)


def _form_page(
    request: Request,
    state: StateDep,
    choices: ChoicesDep,
    *,
    errors: dict[str, str] | None = None,
    selected: dict[str, str | None] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    limit = state.settings.max_upload_bytes
    return _render(
        request,
        state,
        "classification_select.html",
        {
            "models": choices.models,
            "unavailable_models": choices.unavailable_models,
            "model_titles": choices.model_titles(),
            "images": choices.images,
            "errors": errors or {},
            "selected": selected or {},
            "max_file_bytes": limit - FORM_ROOM,
            "max_file_size": f"{limit / 2**20:.3g} MB",
        },
        status_code=status_code,
    )
