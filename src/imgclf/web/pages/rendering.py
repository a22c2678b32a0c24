"""Rendering the pages: templates with links under the app's root_path, the forms (classify,
compare) with what a person picked and why it was refused, and short notices."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from imgclf.errors import (
    CrossSiteRequest,
    ImageTooLarge,
    InvalidImage,
    InvalidRequest,
    NotFound,
    QueueUnavailable,
    ServiceError,
    UnsupportedImage,
)
from imgclf.images.adjustments import FACTORS, NONE, Adjustments
from imgclf.web.choices import Choices
from imgclf.web.pages.photo_choice import adjustments_shown
from imgclf.web.state import AppState
from imgclf.web.wording import ADJUSTMENT_WORDS

FORM_ROOM = 2048
"""Bytes of the form's multipart body besides the file (boundaries, part headers, the other fields):
the page refuses a file over `max_upload_bytes` less this, so what it lets through the server takes."""

ROTATION_WORDS = ((0, "Not rotated"), (90, "90° clockwise"), (180, "180° (upside down)"), (270, "90° anticlockwise"))


def path_for(request: Request, name: str, /, **path_params: Any) -> str:
    """A link to a route as a path from the site's root, under the app's root_path.

    Starlette's `url_for` builds absolute URLs from the Host header, which the client chooses
    (measured: `Host: evil.example` made the page load its CSS from evil.example).
    """
    return rooted(request, str(request.app.url_path_for(name, **path_params)))


def rooted(request: Request, path: str) -> str:
    """`path`, a path from the app's root (a route's, or a resource's link), under its root_path."""
    root_path: str = request.scope.get("root_path", "")
    return root_path.rstrip("/") + path


def render(
    request: Request, state: AppState, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    # `url_for` in the context hides the Jinja environment's own, which is Starlette's.
    page_context = {**(context or {}), "url_for": partial(path_for, request)}
    return state.templates.TemplateResponse(request, template, page_context, status_code=status_code)


def notice_page(request: Request, state: AppState, title: str, message: str, status_code: int) -> HTMLResponse:
    return render(request, state, "notice.html", {"title": title, "message": message}, status_code)


def unreadable_page(request: Request, state: AppState, exc: NotFound | QueueUnavailable, what: str) -> HTMLResponse:
    """The page for a `what` ("result", "comparison") that cannot be read: 404 when it expired or
    never existed, 503 + Retry-After when Redis is away."""
    if isinstance(exc, QueueUnavailable):
        page = notice_page(request, state, "Try again shortly", exc.message, exc.status_code)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    message = f"This {what} expired or never existed: results are kept for a limited time, then deleted."
    return notice_page(request, state, f"No such {what}", message, 404)


def form_page(
    request: Request,
    state: AppState,
    choices: Choices,
    template: str,
    *,
    errors: dict[str, str] | None = None,
    selected: dict[str, Any] | None = None,
    adjustments: Adjustments = NONE,
    earlier: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A form (`classification_select.html` or `compare.html`) with what was picked, the
    adjustments, and `earlier`, the option for an earlier result's uploaded photo."""
    limit = state.settings.max_upload_bytes
    return render(
        request,
        state,
        template,
        {
            "models": choices.models,
            "unavailable_models": choices.unavailable_models,
            "unavailable_by_reason": _by_reason(choices),
            "model_titles": choices.model_titles(),
            "images": choices.images,
            "errors": errors or {},
            "selected": selected or {},
            "adjustments": adjustments.as_dict(),
            "adjustment_factors": [(name, ADJUSTMENT_WORDS[name]) for name in FACTORS],
            "rotations": ROTATION_WORDS,
            "earlier": earlier,
            "max_file_bytes": limit - FORM_ROOM,
            "max_file_size": f"{limit / 2**20:.3g} MB",
        },
        status_code=status_code,
    )


def _by_reason(choices: Choices) -> dict[str, list[str]]:
    """The unavailable models' names grouped by why (usually one reason: weights not downloaded)."""
    titles = choices.model_titles()
    grouped: dict[str, list[str]] = {}
    for model_id, reason in choices.unavailable_models.items():
        grouped.setdefault(reason, []).append(titles[model_id])
    return grouped


def refusal_errors(refusal: ServiceError, file_field: str) -> dict[str, str]:
    """A refusal's reasons for the form: per field when it has them."""
    if isinstance(refusal, InvalidRequest):
        return refusal.field_errors
    if isinstance(refusal, UnsupportedImage | ImageTooLarge | InvalidImage):
        return {file_field: refusal.message}
    return {"form": refusal.message}


def shown_earlier(request: Request, earlier: dict[str, str] | None) -> dict[str, str] | None:
    """The form's option for an earlier result's photo, its preview under the app's root_path."""
    return {**earlier, "preview_url": rooted(request, earlier["preview_url"])} if earlier else None


def refusal_page(
    request: Request,
    state: AppState,
    choices: Choices,
    template: str,
    refusal: ServiceError,
    selected: dict[str, Any],
    adjustment_fields: dict[str, Any] | None = None,
    earlier: dict[str, str] | None = None,
) -> HTMLResponse:
    """The form again with the refusal's reason and its status (and Retry-After), showing what was
    picked: the posted adjustments (`adjustment_fields`) and the earlier result's photo option."""
    adjustments = adjustments_shown(adjustment_fields)
    if isinstance(refusal, CrossSiteRequest):
        selected, adjustments, earlier = {}, NONE, None
    page = form_page(
        request,
        state,
        choices,
        template,
        errors=refusal_errors(refusal, "file"),
        selected=selected,
        adjustments=adjustments,
        earlier=shown_earlier(request, earlier),
        status_code=refusal.status_code,
    )
    if refusal.retry_after is not None:
        page.headers["Retry-After"] = str(refusal.retry_after)
    return page
