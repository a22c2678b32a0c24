"""The HTML pages: home, the classification form, the result page, and catalogue images."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse

from imgclf.dependencies import ChoicesDep, StateDep
from imgclf.errors import CrossSiteRequest, InvalidRequest, QueueFull, QueueUnavailable, TooManyRequests
from imgclf.submission import submit
from imgclf.web.origin import is_cross_site

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, state: StateDep) -> HTMLResponse:
    """Show the home page."""
    return _render(request, state, "home.html")


@router.get("/classifications", response_class=HTMLResponse)
def classification_form(request: Request, state: StateDep, choices: ChoicesDep) -> HTMLResponse:
    """Show the form to pick a model and an image."""
    return _form_page(request, state, choices)


@router.post("/classifications", response_class=HTMLResponse)
def request_classification(
    request: Request,
    state: StateDep,
    choices: ChoicesDep,
    model_id: Annotated[str | None, Form()] = None,
    image_id: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """Queue a classification and answer at once with the result page, which polls for it."""
    if is_cross_site(request.headers):
        refusal = CrossSiteRequest()
        return _form_page(request, state, choices, errors={"form": refusal.message}, status_code=refusal.status_code)
    try:
        model_id, image_id = choices.validate(model_id, image_id)
    except InvalidRequest as exc:
        return _form_page(
            request,
            state,
            choices,
            errors=exc.field_errors,
            selected={"model_id": model_id, "image_id": image_id},
            status_code=exc.status_code,
        )
    try:
        ticket = submit(state, model_id, image_id, request.client.host if request.client else None)
    except (QueueFull, QueueUnavailable, TooManyRequests) as exc:
        if "text/html" not in request.headers.get("accept", ""):
            raise  # a program: the JSON error, as every other route answers
        # A browser: the form again, with the reason and when to come back.
        page = _form_page(
            request,
            state,
            choices,
            errors={"form": exc.message},
            selected={"model_id": model_id, "image_id": image_id},
            status_code=exc.status_code,
        )
        if exc.retry_after is not None:
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    return _render(
        request,
        state,
        "classification_output.html",
        {
            "job_id": ticket.job_id,
            "image_id": image_id,
            "model_id": model_id,
            "model_title": choices.model_titles()[model_id],
        },
    )


@router.get("/images/{image_id}")
def catalogue_image(image_id: str, state: StateDep) -> FileResponse:
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
