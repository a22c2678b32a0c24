"""The HTML pages: home, the classification form, a job's result page, and catalogue images
(the comparison pages are in `comparison_pages`).

The form posts, then redirects (303) to the job's result page, `/results/{job_id}`: reloading
it never submits again, and its address can be sent to someone else until the result expires.
Every page works without JavaScript; scripts add the live preview of the adjustments, live
progress, and the list of recent results.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
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
    TooManyRequests,
    UnsupportedImage,
    UploadStoreFull,
)
from imgclf.images.histogram import display_peak
from imgclf.jobs.resource import UNFINISHED, describe_by_id
from imgclf.jobs.submit import submit_order
from imgclf.models.registry import MODELS
from imgclf.web.intake import FieldNames, read_order
from imgclf.web.middleware.body_limits import body_limit
from imgclf.web.openapi import EDGE_RESPONSES, JSON_ERROR, PLAIN_TEXT, RETRY_AFTER, json_error
from imgclf.web.origin import is_cross_site
from imgclf.web.pages.photo_choice import earlier_choice, photo_source
from imgclf.web.pages.rendering import (
    form_page,
    path_for,
    refusal_page,
    render,
    rooted,
    shown_earlier,
    unreadable_page,
)
from imgclf.web.state import ChoicesDep, StateDep
from imgclf.web.wording import adjustment_words, milliseconds

router = APIRouter(tags=["pages"], responses=EDGE_RESPONSES)

FORM_FIELDS = FieldNames(model="model_id", image="image_id", file="file", for_people=True, adjustments="")
FORM = "classification_select.html"

HTML = {"text/html": {"schema": {"type": "string"}}}

BUSY = {"content": {**HTML, **JSON_ERROR}, "headers": RETRY_AFTER}
"""A refusal with Retry-After: the form again for a browser (Accept: text/html), else the JSON error."""

FORM_REFUSALS: dict[int | str, dict[str, Any]] = {
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
}
"""How the forms' posts (classify, compare) refuse: the form again for a person, with the reason."""

TIMING_NAMES = {
    "queued": "Waiting in the queue",
    "decode": "Decoding the photo",
    "preprocess": "Preparing it for the model",
    "inference": "The model",
    "total": "Total",
}
"""The timings the result page shows, in its order (result.js fills in those that arrive later)."""

AgainQuery = Annotated[
    str | None,
    Query(description="A job id: the form is filled with that job's model, photo and adjustments (try again)."),
]

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


async def adjustment_form_fields(
    brightness: Annotated[str | None, Form(description="0 to 2 (1: unchanged).")] = None,
    contrast: Annotated[str | None, Form(description="0 to 2 (1: unchanged).")] = None,
    color: Annotated[str | None, Form(description="Saturation, 0 to 2 (1: unchanged).")] = None,
    sharpness: Annotated[str | None, Form(description="0 to 2 (1: unchanged).")] = None,
    rotate: Annotated[str | None, Form(description="0, 90, 180 or 270 degrees clockwise.")] = None,
    flip: Annotated[str | None, Form(description="true: mirror left to right (after the rotation).")] = None,
) -> dict[str, str | None]:
    """The forms' adjustment fields (`imgclf.images.adjustments`), all optional (async: no thread
    hand-off for what does no I/O)."""
    return {
        "brightness": brightness,
        "contrast": contrast,
        "color": color,
        "sharpness": sharpness,
        "rotate": rotate,
        "flip": flip,
    }


AdjustmentFields = Annotated[dict[str, str | None] | None, Depends(adjustment_form_fields)]


@router.get("/", response_class=HTMLResponse)
def home(request: Request, state: StateDep) -> HTMLResponse:
    """Show the home page."""
    return render(request, state, "home.html")


@router.get("/classifications", response_class=HTMLResponse)
async def classification_form(
    request: Request, state: StateDep, choices: ChoicesDep, again: AgainQuery = None
) -> HTMLResponse:
    """Show the form to pick a model and a catalogue image or upload a photo, and adjust it."""
    return await filled_form(request, state, choices, FORM, again)


async def filled_form(
    request: Request, state: StateDep, choices: ChoicesDep, template: str, again: str | None
) -> HTMLResponse:
    """A form, filled from job `again` when it names one that still exists ("try again")."""
    choice = await earlier_choice(state, again)
    if choice is None:
        return form_page(request, state, choices, template)
    return form_page(
        request,
        state,
        choices,
        template,
        selected=choice["selected"],
        adjustments=choice["adjustments"],
        earlier=shown_earlier(request, choice["earlier"]),
    )


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
        **FORM_REFUSALS,
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
    adjustment_fields: AdjustmentFields = None,
) -> HTMLResponse:
    """Queue a classification, then send the browser to its result page (post/redirect/get)."""
    # What the person picked is shown again, "None" for the catalogue if they sent a file (which
    # cannot be: browsers do not allow it). A file arrives as Starlette's UploadFile, not FastAPI's.
    uploading = file is not None and not isinstance(file, str)
    selected = {"model_id": model_id, "image_id": "" if uploading and not image_id else image_id}
    earlier = None
    try:
        if is_cross_site(request.headers):
            raise CrossSiteRequest()
        image_id, file, earlier = await photo_source(state, image_id, file)
        order, upload = await read_order(
            state, choices, FORM_FIELDS, model_id, image_id, file, adjustments=adjustment_fields
        )
        client = request.client.host if request.client else None
        ticket = await run_in_threadpool(submit_order, state.redis, state.settings, order, client, upload)
    except (CrossSiteRequest, InvalidRequest, UnsupportedImage, ImageTooLarge, InvalidImage) as exc:
        return refusal_page(request, state, choices, FORM, exc, selected, adjustment_fields, earlier)
    except (QueueFull, QueueUnavailable, TooManyRequests, UploadStoreFull) as exc:
        if "text/html" not in request.headers.get("accept", ""):
            raise  # a program: the JSON error, as every other route answers
        # a browser: the form again, and when to come back
        return refusal_page(request, state, choices, FORM, exc, selected, adjustment_fields, earlier)
    return see_other(path_for(request, "result_page", job_id=ticket.job_id))


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
    except (NotFound, QueueUnavailable) as exc:
        return unreadable_page(request, state, exc, "result")
    attempts = state.settings.job_retries + 1
    model_title = title_of(job["model"])
    image_name = name_of(job["image"])
    return render(
        request,
        state,
        "result.html",
        {
            "job": job,
            "heading": _heading(job, image_name),
            "recent_title": f"{model_title} on {image_name}",
            "unfinished": job["status"] in UNFINISHED,
            "attempts": attempts,
            "progress": progress_words(job, attempts),
            "model_title": model_title,
            "image_url": image_url(request, job),
            "image_name": image_name,
            "adjustment_words": ", ".join(adjustment_words(job["adjustments"])).lower(),
            "histogram": histogram_view(job["result"]["histogram"] if job["result"] else None),
            "links": {
                **{name: rooted(request, link) for name, link in job["links"].items()},
                "chart": rooted(request, job["links"]["self"] + "/chart.png"),
            },
            "timings": [
                (key, name, milliseconds(job["timings_ms"][key]) if job["timings_ms"].get(key) is not None else None)
                for key, name in TIMING_NAMES.items()
            ],
            "again_url": path_for(request, "classification_form") + f"?again={job['id']}",
            "compare_url": path_for(request, "comparison_form") + f"?again={job['id']}",
        },
    )


def title_of(model_id: str | None) -> str:
    spec = MODELS.get(model_id or "")
    return spec.title if spec else str(model_id)


def name_of(image: dict[str, Any] | None) -> str:
    """The photo's name for people: the catalogue id, or the uploaded file's name."""
    if not image:
        return "the photo"
    if "sha256" in image:
        return str(image.get("filename") or "your photo")
    return str(image.get("id"))


def image_url(request: Request, job: dict[str, Any]) -> str:
    """Where the page shows the job's photo from: as the model saw it when it was adjusted."""
    if job["adjustments"]:
        return rooted(request, job["links"]["self"] + "/image?adjusted=true")
    if "sha256" in job["image"]:
        return rooted(request, job["links"]["self"] + "/image")
    return path_for(request, "catalogue_image", image_id=job["image"]["id"] or "-")


def histogram_view(histogram: dict[str, list[int]] | None) -> dict[str, Any] | None:
    """SVG paths (a 256 x 100 box, the same scale for all four) and the mean of each channel."""
    if not histogram:
        return None
    peak = display_peak(histogram) or 1
    paths, means = {}, {}
    for name, counts in histogram.items():
        points = " ".join(f"{index} {100 - min(count / peak, 1) * 100:.1f}" for index, count in enumerate(counts))
        # Luminance is an area under its curve; the channels are lines over it.
        paths[name] = f"M0 100 L{points} L255 100 Z" if name == "luminance" else f"M{points}"
        total = sum(counts)
        means[name] = round(sum(index * count for index, count in enumerate(counts)) / total) if total else 0
    return {"paths": paths, "means": means}


def _heading(job: dict[str, Any], image_name: str) -> str:
    """The page's title: the answer once known ("Egyptian cat, 46 %"), else what is going on."""
    if job["result"] and job["result"]["top5"]:
        best = job["result"]["top5"][0]
        return f"{best['label']}, {best['probability'] * 100:.0f} %"
    if job["status"] in UNFINISHED:
        return f"Classifying {image_name}"
    return "Classification canceled" if job["status"] == "canceled" else "Classification failed"


def progress_words(job: dict[str, Any], attempts: int) -> str:
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


def see_other(location: str) -> HTMLResponse:
    """A 303 to `location`, with the short note and link RFC 9110 asks a 303's body to carry."""
    link = html.escape(location)
    note = f'<!doctype html>\n<title>Queued</title>\n<p>Queued: see <a href="{link}">the result page</a>.</p>\n'
    return HTMLResponse(note, status_code=303, headers={"Location": location})


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
