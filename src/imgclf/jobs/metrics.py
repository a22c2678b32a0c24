"""Prometheus metrics for the whole service, exposed by every web replica at /metrics.

Workers are not scraped one by one: each job adds its outcome and phase timings to a few Redis
hashes (one pipelined round trip), and a collector in the web process turns those, plus the queue
depth and the live workers, into Prometheus metrics at scrape time. So any replica answers for
the cluster. HTTP request durations are per web process (prometheus-fastapi-instrumentator).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from imgclf.jobs.liveness import ready_workers
from imgclf.jobs.queue import make_queue

KEY_PREFIX = "imgclf:metrics:"
"""Redis hashes under this prefix hold the job counters and histograms."""

JOBS_KEY = KEY_PREFIX + "jobs"
CACHE_KEY = KEY_PREFIX + "cache"
RESTARTS_KEY = KEY_PREFIX + "restarts"
"""kind of child (redis, worker, web) -> times `serve` started one again after it died."""
REJECTED_KEY = KEY_PREFIX + "rejected"
"""reason -> submissions refused before a job was queued (queue_full, rate_limited)."""
RETRIES_KEY = KEY_PREFIX + "retries"
"""outcome (requeued, gave_up) -> jobs whose worker died while running them."""

PHASES = {
    "queue_wait": "Time a job waited in the queue before a worker took it.",
    "preprocess": "Time to decode the image and preprocess it for the model.",
    "inference": "Time of the model's forward pass and top-k.",
}
"""Job latency, split into its phases; one histogram each."""

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Histogram bucket upper bounds in seconds: from a fast forward pass to a long queue."""


def record_job(pipe: Pipeline, status: str, durations: Mapping[str, float]) -> None:
    """Count one ended job and add its phase durations (seconds) to the histograms: queued on
    `pipe`, which the caller executes with its own commands (one round trip per job)."""
    pipe.hincrby(JOBS_KEY, status, 1)
    for phase, seconds in durations.items():
        key = KEY_PREFIX + phase
        bucket = bisect.bisect_left(BUCKETS, seconds)  # index of the first bound >= seconds
        pipe.hincrby(key, f"b{bucket}", 1)
        pipe.hincrbyfloat(key, "sum", seconds)


def mean_job_seconds(connection: Redis) -> float | None:
    """Mean time a worker spends on one job (decode to top 5), from the histograms; None before
    the first job."""
    pipe = connection.pipeline(transaction=False)
    for phase in ("preprocess", "inference"):
        pipe.hgetall(KEY_PREFIX + phase)
    preprocess, inference = (_decoded(raw) for raw in pipe.execute())
    count = sum(float(value) for field, value in inference.items() if field.startswith("b"))
    if not count:
        return None
    return (float(preprocess.get("sum", 0)) + float(inference.get("sum", 0))) / count


def record_restart(connection: Redis, kind: str) -> None:
    """Count one restart of a child process by `serve`."""
    connection.hincrby(RESTARTS_KEY, kind, 1)


def record_rejection(connection: Redis, reason: str) -> None:
    """Count one submission refused for `reason`."""
    connection.hincrby(REJECTED_KEY, reason, 1)


def record_retry(connection: Redis, outcome: str) -> None:
    """Count one job found orphaned by a dead worker: `requeued` or `gave_up`."""
    connection.hincrby(RETRIES_KEY, outcome, 1)


LABELLED_COUNTERS = {
    "imgclf_jobs": (JOBS_KEY, "status", "Jobs that ended, by final status."),
    "imgclf_child_restarts": (RESTARTS_KEY, "kind", "Child processes `imgclf serve` started again after they died."),
    "imgclf_rejected_submissions": (REJECTED_KEY, "reason", "Submissions refused before queueing, by reason."),
    "imgclf_orphaned_jobs": (
        RETRIES_KEY,
        "outcome",
        "Jobs whose worker died while running them: requeued for another try, or failed after the last.",
    ),
}
"""Counters kept as Redis hashes, one label each: metric name -> (key, label, help)."""


class ServiceCollector(Collector):
    """Queue depth, live workers, ended jobs and job phase histograms, read from Redis."""

    def __init__(self, connection: Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        connection = self.connection
        up = GaugeMetricFamily("imgclf_redis_up", "1 when the web process can reach Redis.")
        try:
            depth = make_queue(connection).count
            runtimes = ready_workers(connection)  # each with its runtimes
            workers = len(runtimes)
            pipe = connection.pipeline(transaction=False)
            for key, _, _ in LABELLED_COUNTERS.values():
                pipe.hgetall(key)
            pipe.hgetall(CACHE_KEY)
            for phase in PHASES:
                pipe.hgetall(KEY_PREFIX + phase)
            replies = pipe.execute()
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        counters, (cache, *phases) = replies[: len(LABELLED_COUNTERS)], replies[len(LABELLED_COUNTERS) :]
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("imgclf_queue_depth", "Jobs waiting in the queue.", value=depth)
        yield GaugeMetricFamily(
            "imgclf_workers_alive", "Workers with their models loaded and a fresh heartbeat.", value=workers
        )
        for (name, (_, label, help_text)), raw in zip(LABELLED_COUNTERS.items(), counters, strict=True):
            family = CounterMetricFamily(name, help_text, labels=[label])
            for value, count in sorted(_decoded(raw).items()):
                family.add_metric([value], float(count))
            yield family
        runtime_info = GaugeMetricFamily(
            "imgclf_model_runtime",
            "1 for the runtime each live worker runs each model on.",
            labels=["worker", "model", "runtime"],
        )
        for worker, served in sorted(runtimes.items()):
            for model_id, runtime in sorted(served.items()):
                runtime_info.add_metric([worker, model_id, runtime], 1)
        yield runtime_info
        cache_counts = _decoded(cache)
        for field, help_text in (
            ("lookups", "Submissions looked up in the result cache."),
            ("hits", "Submissions answered from the result cache, without a worker."),
        ):
            yield CounterMetricFamily(f"imgclf_cache_{field}", help_text, value=float(cache_counts.get(field, 0)))
        for (phase, help_text), raw in zip(PHASES.items(), phases, strict=True):
            yield _histogram(f"imgclf_job_{phase}_seconds", help_text, _decoded(raw))


def _decoded(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


def _histogram(name: str, help_text: str, fields: Mapping[str, str]) -> HistogramMetricFamily:
    cumulative = 0.0
    buckets: list[tuple[str, float]] = []
    for index, bound in enumerate(BUCKETS):
        cumulative += float(fields.get(f"b{index}", 0))
        buckets.append((repr(bound), cumulative))
    cumulative += float(fields.get(f"b{len(BUCKETS)}", 0))
    buckets.append(("+Inf", cumulative))
    return HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=float(fields.get("sum", 0)))
