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
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker

KEY_PREFIX = "imgclf:metrics:"
"""Redis hashes under this prefix hold the job counters and histograms."""

JOBS_KEY = KEY_PREFIX + "jobs"
CACHE_KEY = KEY_PREFIX + "cache"
RUNTIMES_KEY = KEY_PREFIX + "runtimes"
"""model id -> the inference runtime the most recently started worker chose for it."""

PHASES = {
    "queue_wait": "Time a job waited in the queue before a worker took it.",
    "preprocess": "Time to decode the image and preprocess it for the model.",
    "inference": "Time of the model's forward pass and top-k.",
}
"""Job latency, split into its phases; one histogram each."""

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Histogram bucket upper bounds in seconds: from a fast forward pass to a long queue."""


def record_job(connection: Redis, status: str, durations: Mapping[str, float]) -> None:
    """Count one ended job and add its phase durations (seconds) to the histograms."""
    pipe = connection.pipeline(transaction=False)
    pipe.hincrby(JOBS_KEY, status, 1)
    for phase, seconds in durations.items():
        key = KEY_PREFIX + phase
        bucket = bisect.bisect_left(BUCKETS, seconds)  # index of the first bound >= seconds
        pipe.hincrby(key, f"b{bucket}", 1)
        pipe.hincrbyfloat(key, "sum", seconds)
    pipe.execute()


def record_runtimes(connection: Redis, runtimes: Mapping[str, str]) -> None:
    """Publish which runtime serves each model (for /metrics and the benchmark)."""
    pipe = connection.pipeline(transaction=False)
    for model_id, runtime in runtimes.items():
        pipe.hset(RUNTIMES_KEY, model_id, runtime)
    pipe.execute()


class ServiceCollector(Collector):
    """Queue depth, live workers, ended jobs and job phase histograms, read from Redis."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        connection = self.queue.connection
        up = GaugeMetricFamily("imgclf_redis_up", "1 when the web process can reach Redis.")
        try:
            depth = len(self.queue)
            workers = len(SimpleWorker.all(queue=self.queue))
            pipe = connection.pipeline(transaction=False)
            pipe.hgetall(JOBS_KEY)
            pipe.hgetall(CACHE_KEY)
            pipe.hgetall(RUNTIMES_KEY)
            for phase in PHASES:
                pipe.hgetall(KEY_PREFIX + phase)
            jobs, cache, runtimes, *phases = pipe.execute()
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("imgclf_queue_depth", "Jobs waiting in the queue.", value=depth)
        yield GaugeMetricFamily("imgclf_workers_alive", "Workers registered on the queue.", value=workers)
        ended = CounterMetricFamily("imgclf_jobs", "Jobs that ended, by final status.", labels=["status"])
        for status, count in sorted(_decoded(jobs).items()):
            ended.add_metric([status], float(count))
        yield ended
        runtime_info = GaugeMetricFamily(
            "imgclf_model_runtime", "1 for the runtime workers run each model on.", labels=["model", "runtime"]
        )
        for model_id, runtime in sorted(_decoded(runtimes).items()):
            runtime_info.add_metric([model_id, runtime], 1)
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
