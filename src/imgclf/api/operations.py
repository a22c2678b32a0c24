"""Routes for operators: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from rq import SimpleWorker

from imgclf.dependencies import StateDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer while the web process is alive (it checks nothing else)."""
    return {"status": "alive"}


@router.get("/readyz", responses={503: {"description": "Redis unreachable or no worker alive"}})
def readyz(state: StateDep) -> JSONResponse:
    """Ready when Redis answers and at least one worker is registered on the queue."""
    try:
        state.redis.ping()
        workers = len(SimpleWorker.all(queue=state.queue))
    except RedisError as exc:
        return JSONResponse({"status": "unavailable", "reason": f"Redis is unreachable: {exc}"}, 503)
    if workers == 0:
        reason = "No worker is alive: jobs would wait in the queue until one starts."
        return JSONResponse({"status": "unavailable", "reason": reason, "workers": 0}, 503)
    return JSONResponse({"status": "ready", "workers": workers})


@router.get("/metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Prometheus metrics: queue depth, workers, jobs, job phase latencies, HTTP durations."""
    return Response(generate_latest(state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
