"""The HTML pages: home, the classification form, the result page, and catalogue images."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import FileResponse, HTMLResponse

from imgclf.errors import (
    CrossSiteRequest,
    InvalidRequest,
    QueueFull,
    QueueUnavailable,
    ServiceError,
    TooManyRequests,
)
from imgclf.jobs.submit import submit
from imgclf.web.openapi import EDGE_RESPONSES, JSON_ERROR, PLAIN_TEXT, RETRY_AFTER, json_error
from imgclf.web.origin import is_cross_site
from imgclf.web.state import ChoicesDep, StateDep

router = APIRouter(tags=["pages"], responses=EDGE_RESPONSES)

HTML = {"text/html": {"schema": {"type": "string"}}}

BUSY = {"content": {**HTML, **JSON_ERROR}, "headers": RETRY_AFTER}
"""A refusal with Retry-After: the form again for a browser (Accept: text/html), else the JSON error."""

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
    """Show the form to pick a model and an image."""
    return _form_page(request, state, choices)


@router.post(
    "/classifications",
    response_class=HTMLResponse,
    responses={
        200: {"description": "Queued (or answered from the result cache): the result page, which polls for the job"},
        400: {
            "description": "The body cannot be parsed as a form (JSON), or the Host header or the request is refused "
            "(text/plain, as on every route)",
            "content": {**PLAIN_TEXT, **JSON_ERROR},
        },
        403: {"description": "Posted from another site: the form again, with the reason", "content": HTML},
        422: {"description": "A field is missing or unknown: the form again, a message per field", "content": HTML},
        429: {"description": "Over IMGCLF_RATE_LIMIT_PER_MINUTE for this client", **BUSY},
        503: {"description": "The queue is full (IMGCLF_MAX_QUEUED_JOBS) or Redis cannot be reached", **BUSY},
    },
    openapi_extra={"parameters": CROSS_SITE_HEADERS},
)
def request_classification(
    request: Request,
    state: StateDep,
    choices: ChoicesDep,
    model_id: Annotated[
        str | None, Form(description="A model id from GET /info.", examples=["efficientnet_lite0"])
    ] = None,
    image_id: Annotated[str | None, Form(description="An image id from GET /info.", examples=["chelsea.jpg"])] = None,
) -> HTMLResponse:
    """Queue a classification and answer at once with the result page, which polls for it."""
    selected = {"model_id": model_id, "image_id": image_id}
    try:
        if is_cross_site(request.headers):
            raise CrossSiteRequest()
        model_id, image_id = choices.validate(model_id, image_id)
        job_id = submit(
            state.redis,
            state.settings,
            state.digests,
            model_id,
            image_id,
            state.catalogue.path(image_id),
            request.client.host if request.client else None,
        )
    except (CrossSiteRequest, InvalidRequest) as exc:
        return _refusal_page(request, state, choices, exc, selected)
    except (QueueFull, QueueUnavailable, TooManyRequests) as exc:
        if "text/html" not in request.headers.get("accept", ""):
            raise  # a program: the JSON error, as every other route answers
        return _refusal_page(request, state, choices, exc, selected)  # a browser: when to come back
    context = {"job_id": job_id, "image_id": image_id, "model_id": model_id}
    return _render(
        request, state, "classification_output.html", {**context, "model_title": choices.model_titles()[model_id]}
    )


def _refusal_page(
    request: Request, state: StateDep, choices: ChoicesDep, refusal: ServiceError, selected: dict[str, str | None]
) -> HTMLResponse:
    """The form again with the refusal's reason (per field when it has them) and its status."""
    errors = refusal.field_errors if isinstance(refusal, InvalidRequest) else {"form": refusal.message}
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
    root_path: str = request.scope.get("root_path", "")
    return root_path.rstrip("/") + str(request.app.url_path_for(name, **path_params))


def _render(
    request: Request, state: StateDep, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    # `url_for` in the context hides the Jinja environment's own, which is Starlette's.
    page_context = {**(context or {}), "url_for": partial(path_for, request)}
    return state.templates.TemplateResponse(request, template, page_context, status_code=status_code)


def _form_page(
    request: Request,
    state: StateDep,
    choices: ChoicesDep,
    *,
    errors: dict[str, str] | None = None,
    selected: dict[str, str | None] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
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
        },
        status_code=status_code,
    )
