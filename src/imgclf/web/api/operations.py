"""Routes for operators: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from imgclf.jobs.liveness import ready_workers
from imgclf.web.openapi import EDGE_RESPONSES
from imgclf.web.state import StateDep

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"], responses=EDGE_RESPONSES)


class Readiness(BaseModel):
    status: str = Field(description="`ready` or `unavailable`.")
    workers: int | None = Field(default=None, description="Workers alive, when Redis answered.")
    reason: str | None = Field(default=None, description="Why the service is not ready.")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer while the web process is alive (it checks nothing else)."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    responses={
        200: {"model": Readiness},
        503: {"model": Readiness, "description": "Redis unreachable or no worker ready"},
    },
)
def readyz(state: StateDep) -> JSONResponse:
    """Ready when Redis answers and at least one worker is ready (`imgclf.jobs.liveness`: a fresh
    heartbeat and a model served)."""
    try:
        workers = len(ready_workers(state.redis))
    except RedisError as exc:
        log.warning("readyz: Redis is unreachable: %s", exc)
        return JSONResponse({"status": "unavailable", "reason": "Redis (the job queue) is unreachable."}, 503)
    if workers == 0:
        reason = "No worker is ready: jobs would wait in the queue until one has loaded a model."
        return JSONResponse({"status": "unavailable", "reason": reason, "workers": 0}, 503)
    return JSONResponse({"status": "ready", "workers": workers})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus' text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
def metrics(state: StateDep) -> Response:
    """Prometheus metrics: queue depth, workers, jobs, job phase latencies, HTTP durations."""
    return Response(generate_latest(state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
