"""The lesson's JSON routes: what may be picked, and a job's status and result."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from imgclf.jobs.status import MAX_WAIT_SECONDS, read_job_view
from imgclf.web.openapi import EDGE_RESPONSES, json_error
from imgclf.web.state import ChoicesDep, StateDep

router = APIRouter(tags=["classifications"], responses=EDGE_RESPONSES)


class Info(BaseModel):
    models: list[str] = Field(description="Model ids that can be picked now.")
    images: list[str] = Field(description="Image ids in the catalogue.")
    unavailable_models: dict[str, str] = Field(
        description="Configured models that cannot be picked, with the reason (weights missing)."
    )


class JobStatusBody(BaseModel):
    task_status: str = Field(description="RQ's status: queued, started, finished, failed, ...")
    data: list[tuple[str, float]] | None = Field(
        description="Once finished: the top 5 as [label, percent], highest first; else null."
    )
    error: str | None = Field(default=None, description="Only for failed jobs: what went wrong.")
    cached: bool | None = Field(
        default=None, description="true when the result came from the result cache (no worker was needed)."
    )
    attempt: int | None = Field(
        default=None,
        description="From the second try on: which try runs (a job whose worker died is put back on the queue).",
    )


@router.get("/info")
def get_info(choices: ChoicesDep) -> Info:
    """List the model ids and image ids a user may pick."""
    return Info(
        models=choices.models,
        images=choices.images,
        unavailable_models=choices.unavailable_models,
    )


@router.get(
    "/classifications/{job_id}",
    response_model=JobStatusBody,
    response_model_exclude_unset=True,
    responses={
        404: json_error("Unknown or expired job id"),
        503: json_error("Redis (the job queue) cannot be reached", retry_after=True),
    },
)
async def get_classification(
    job_id: str,
    state: StateDep,
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to wait for a pending job to end before answering (long polling); 0 answers at once.",
        ),
    ] = 0,
) -> dict[str, Any]:
    """Return a classification job's status and, once finished, its top-5 result."""
    view = await read_job_view(state.redis_async, state.redis, job_id, wait)
    return view.as_contract()
