"""The comparison pages: a form to classify one photo with several models, and the comparison's
page, `/comparisons/{id}`, with their top 5 side by side and the classes they share highlighted.

As with single results, the form posts and is redirected (303) to the page, whose address can be
shared until the results expire; it works without JavaScript (it reloads itself while models are
still running), and with it follows them live.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import HTMLResponse
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
from imgclf.jobs.comparisons import describe_comparison, submit_comparison
from imgclf.jobs.resource import UNFINISHED
from imgclf.web.intake import read_models, read_order
from imgclf.web.middleware.body_limits import body_limit
from imgclf.web.openapi import EDGE_RESPONSES, RETRY_AFTER
from imgclf.web.origin import is_cross_site
from imgclf.web.pages.photo_choice import photo_source
from imgclf.web.pages.rendering import path_for, refusal_page, render, rooted, unreadable_page
from imgclf.web.pages.routes import (
    CROSS_SITE_HEADERS,
    FORM_FIELDS,
    FORM_REFUSALS,
    HTML,
    AdjustmentFields,
    AgainQuery,
    filled_form,
    image_url,
    name_of,
    progress_words,
    see_other,
    title_of,
)
from imgclf.web.state import ChoicesDep, StateDep
from imgclf.web.wording import adjustment_words, milliseconds

router = APIRouter(tags=["pages"], responses=EDGE_RESPONSES)

FORM = "compare.html"


@router.get("/compare", response_class=HTMLResponse)
async def comparison_form(
    request: Request, state: StateDep, choices: ChoicesDep, again: AgainQuery = None
) -> HTMLResponse:
    """Show the form to classify one photo with several models (every available one ticked)."""
    return await filled_form(request, state, choices, FORM, again)


@router.post(
    "/compare",
    status_code=303,
    response_class=HTMLResponse,
    responses={
        303: {
            "description": "Queued: `Location` is the comparison's page, /comparisons/{id}, with a link to it in "
            "the body (each model counts once against IMGCLF_RATE_LIMIT_PER_MINUTE)",
            "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
        },
        **FORM_REFUSALS,
    },
    openapi_extra={"parameters": CROSS_SITE_HEADERS},
)
@body_limit("max_upload_bytes")
async def request_comparison(
    request: Request,
    state: StateDep,
    choices: ChoicesDep,
    model_id: Annotated[list[str], Form(description="The models to compare (repeat the field).")] = [],  # noqa: B006
    image_id: Annotated[str | None, Form(description="A catalogue image id (or send file).")] = None,
    file: Annotated[UploadFile | str | None, File(description="A photo to upload instead.")] = None,
    adjustment_fields: AdjustmentFields = None,
) -> HTMLResponse:
    """Queue one job per model for the same photo, then send the browser to the comparison's page."""
    uploading = file is not None and not isinstance(file, str)
    selected = {"models": model_id, "image_id": "" if uploading and not image_id else image_id}
    earlier = None
    try:
        if is_cross_site(request.headers):
            raise CrossSiteRequest()
        if not model_id:
            raise InvalidRequest({"model_id": "Tick at least one model."})
        models = read_models(choices, model_id, "model_id")
        image_id, file, earlier = await photo_source(state, image_id, file)
        order, upload = await read_order(
            state, choices, FORM_FIELDS, models[0], image_id, file, adjustments=adjustment_fields
        )
        client = request.client.host if request.client else None
        comparison_id = await run_in_threadpool(
            submit_comparison, state.redis, state.settings, order, models, client, upload
        )
    except (CrossSiteRequest, InvalidRequest, UnsupportedImage, ImageTooLarge, InvalidImage) as exc:
        return refusal_page(request, state, choices, FORM, exc, selected, adjustment_fields, earlier)
    except (QueueFull, QueueUnavailable, TooManyRequests, UploadStoreFull) as exc:
        if "text/html" not in request.headers.get("accept", ""):
            raise
        return refusal_page(request, state, choices, FORM, exc, selected, adjustment_fields, earlier)
    return see_other(path_for(request, "comparison_page", comparison_id=comparison_id))


@router.get(
    "/comparisons/{comparison_id}",
    response_class=HTMLResponse,
    responses={
        404: {"description": "No such comparison: it never existed or it expired", "content": HTML},
        503: {"description": "Redis cannot be reached", "content": HTML, "headers": RETRY_AFTER},
    },
)
async def comparison_page(
    request: Request,
    state: StateDep,
    comparison_id: Annotated[str, Path(description="The id the form's post redirected to.")],
) -> HTMLResponse:
    """Show each model's top 5 side by side, the classes two or more of them share highlighted."""
    try:
        comparison = await run_in_threadpool(describe_comparison, state.redis, comparison_id)
    except (NotFound, QueueUnavailable) as exc:
        return unreadable_page(request, state, exc, "comparison")
    attempts = state.settings.job_retries + 1
    image_name = name_of(comparison["image"])
    titles = {entry["model"]: title_of(entry["model"]) for entry in comparison["classifications"]}
    shown_with = next((entry for entry in comparison["classifications"] if entry["image"]), None)
    return render(
        request,
        state,
        "comparison.html",
        {
            "comparison": comparison,
            "heading": f"{len(titles)} models on {image_name}",
            "recent_title": f"Comparison of {len(titles)} models on {image_name}",
            "unfinished": comparison["status"] in UNFINISHED,
            "summary": _summary(comparison, titles),
            "image_url": image_url(request, shown_with) if shown_with else None,
            "image_name": image_name,
            "adjustment_words": ", ".join(adjustment_words(comparison["adjustments"])).lower(),
            "links": {name: rooted(request, link) for name, link in comparison["links"].items()},
            "columns": [
                _column(request, entry, titles, comparison["agreement"], attempts)
                for entry in comparison["classifications"]
            ],
        },
    )


def _column(
    request: Request, job: dict[str, Any], titles: dict[str, str], agreement: dict[str, Any], attempts: int
) -> dict[str, Any]:
    """One model's column: its top 5, and for each class the other models that share it."""
    shared: dict[Any, str] = {}
    for entry in agreement["classes"]:
        others = [titles.get(model_id, model_id) for model_id in entry["models"] if model_id != job["model"]]
        if job["model"] in entry["models"] and others:
            key = entry["class_index"] if entry["class_index"] is not None else entry["label"]
            shared[key] = ", ".join(others)
    inference = job["timings_ms"].get("inference")
    return {
        "job": job,
        "title": titles.get(job["model"], job["model"]),
        "shared": shared,
        "inference": milliseconds(inference) if inference is not None else None,
        "progress": progress_words(job, attempts) if job["status"] in UNFINISHED else "",
        "page": rooted(request, job["links"]["page"]),
    }


def _summary(comparison: dict[str, Any], titles: dict[str, str]) -> str:
    """Where the comparison stands, and whether the models agree, in a sentence."""
    jobs = comparison["classifications"]
    waiting = sum(job["status"] in UNFINISHED for job in jobs)
    if waiting:
        return f"{len(jobs) - waiting} of {len(jobs)} models done; the others are queued or running."
    succeeded = [job for job in jobs if job["status"] == "succeeded"]
    top1 = comparison["agreement"]["top1"]
    if top1 and len(succeeded) == len(jobs):
        return f"Done. All {len(jobs)} models rank {top1} first."
    if top1:
        return f"Done. The {len(succeeded)} models that succeeded rank {top1} first."
    if len(succeeded) > 1:
        return "Done. The models disagree on the most likely class; classes they share are marked with a star."
    return "Done." if succeeded else "Every model failed."
