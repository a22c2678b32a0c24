"""The HTML pages: home, the classification form, the result page, and catalogue images."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse

from imgclf.dependencies import ChoicesDep, StateDep
from imgclf.errors import InvalidRequest
from imgclf.submission import submit

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, state: StateDep) -> HTMLResponse:
    """Show the home page."""
    return state.templates.TemplateResponse(request, "home.html")


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
    ticket = submit(state, model_id, image_id)
    return state.templates.TemplateResponse(
        request,
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


def _form_page(
    request: Request,
    state: StateDep,
    choices: ChoicesDep,
    *,
    errors: dict[str, str] | None = None,
    selected: dict[str, str | None] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return state.templates.TemplateResponse(
        request,
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
