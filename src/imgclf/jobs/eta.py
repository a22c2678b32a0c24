"""How long until jobs are done: for Retry-After, a queued job's `eta_seconds` and a full queue's 503."""

from __future__ import annotations

import math

from redis import Redis

from imgclf.jobs.liveness import ready_workers
from imgclf.jobs.metrics import mean_job_seconds

RETRY_AFTER_MAX = 60
"""Longest Retry-After the service suggests; past it a client should just try again later."""


def seconds_to_drain(connection: Redis, jobs: int, cap: int | None = RETRY_AFTER_MAX) -> int:
    """Seconds the ready workers need for `jobs` more jobs, from the measured mean job time (at
    most `cap`: a Retry-After past a minute helps nobody, an ETA is not capped)."""
    workers = len(ready_workers(connection))
    mean = mean_job_seconds(connection)
    if not workers or mean is None:
        return 5 if workers else 30
    seconds = max(1, math.ceil(jobs * mean / workers))
    return seconds if cap is None else min(cap, seconds)
