"""Timing loops and summaries, and the CPU time of processes (from /proc). Every number is
repeated and summarised by its median, because the machines this runs on are shared and noisy."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path


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


def median(values: Sequence[float]) -> float:
    """The median of several runs."""
    return statistics.median(values)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (a server's forked or spawned workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree
