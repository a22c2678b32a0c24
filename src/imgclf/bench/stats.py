"""Timing loops and summaries. Every number is repeated and summarised by its median, because
the machines this runs on are shared and noisy."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def rate(step: Callable[[], object], items_per_step: int, seconds: float) -> float:
    """Items per second of `step`, run repeatedly for about `seconds` after one warm-up call."""
    step()
    done = 0
    started = time.perf_counter()
    while True:
        step()
        done += items_per_step
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def repeated(measure: Callable[[], float], repeats: int) -> dict[str, float | list[float]]:
    """Run `measure` `repeats` times: the median and every run."""
    runs = [measure() for _ in range(repeats)]
    return {"median": statistics.median(runs), "runs": runs}


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 (nearest rank) of a list of durations, in milliseconds."""
    if not samples:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    ordered = sorted(samples)

    def rank(fraction: float) -> float:
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99)}
