"""The pipeline ceiling: what the cores can do with no HTTP and no queue.

N processes (one a core), each with one inference thread, run the worker's `Pipeline` (decode ->
preprocess -> forward -> top-5) over the catalogue photos in a loop, all started together by a
barrier. Their images/s added up is the number end to end is to approach; one process's pipeline
(`runner.pipeline`) leaves cores idle on a machine with more than one.

Each process times its own window and its own CPU time (`time.process_time`, every thread of the
process), so the cores used are counted exactly over the measured seconds.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgclf.bench.stats import median

START_TIMEOUT = 300
"""Seconds the processes may take to load the model (torch, export check, parity)."""


@dataclass(frozen=True)
class Round:
    """One process's share of one repeat."""

    images: int
    seconds: float
    cpu_seconds: float
    phases: dict[str, float]
    """Seconds spent in each of `pipeline.PHASES`, summed over the images."""


def _process(
    model_dir: Path,
    model_id: str,
    runtime: str,
    paths: list[Path],
    max_pixels: int,
    seconds: float,
    repeats: int,
    start: Any,
    out: Any,
) -> None:
    """One ceiling process: load, report ready, then run `repeats` windows, each after the barrier."""
    from imgclf.models.pipeline import PHASES, Pipeline
    from imgclf.models.registry import MODELS
    from imgclf.models.serving import load_for_serving

    try:
        classifier, report = load_for_serving(MODELS[model_id], model_dir, runtime, 1)  # type: ignore[arg-type]
        if report.chosen != runtime:
            raise RuntimeError(f"{model_id} on {runtime}: {report.rejected.get(runtime)}")
        pipeline = Pipeline(classifier, max_pixels)
        for path in paths[:2]:
            pipeline.run(path)  # warm-up: the first runs pay for lazy initialisation
    except Exception as exc:
        out.put(("failed", f"{type(exc).__name__}: {exc}"))
        return
    out.put(("ready", None))
    position = 0
    for _ in range(repeats):
        start.wait()
        phases = dict.fromkeys(PHASES, 0.0)
        images = 0
        cpu_before = time.process_time()
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            outcome = pipeline.run(paths[position % len(paths)])
            position += 1
            images += 1
            for phase, spent in outcome.seconds.items():
                phases[phase] += spent
        out.put(("round", Round(images, elapsed, time.process_time() - cpu_before, phases)))


def ceiling(
    model_dir: Path,
    model_id: str,
    runtime: str,
    paths: list[Path],
    max_pixels: int,
    processes: int,
    seconds: float,
    repeats: int,
) -> dict[str, Any]:
    """Images/s of `processes` single-thread pipelines together (median of `repeats`), the cores
    they kept busy, and where a pipeline's time goes (decode, preprocess, inference).

    It is long because starting, synchronising and always reaping child processes is one story;
    its parts would each need the children, the barrier and the queue passed along."""
    # spawn, not fork: this process has torch's and the runtimes' thread pools running.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    out = context.Queue()
    children = [
        context.Process(
            target=_process,
            args=(
                model_dir,
                model_id,
                runtime,
                paths[index:] + paths[:index],
                max_pixels,
                seconds,
                repeats,
                start,
                out,
            ),
            daemon=True,
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    try:
        for _ in range(processes):
            kind, detail = _receive(out, children, START_TIMEOUT)
            if kind == "failed":
                raise RuntimeError(f"a ceiling process could not start: {detail}")
        rates: list[float] = []
        cores: list[float] = []
        phases: dict[str, float] = {}
        for _ in range(repeats):
            start.wait(timeout=60)
            rounds: list[Round] = [_receive(out, children, seconds + 60)[1] for _ in range(processes)]
            rates.append(sum(part.images / part.seconds for part in rounds))
            # Every window starts at the barrier; the longest one is the wall time of the round.
            cores.append(sum(part.cpu_seconds for part in rounds) / max(part.seconds for part in rounds))
            for part in rounds:
                for phase, spent in part.phases.items():
                    phases[phase] = phases.get(phase, 0.0) + spent / part.images / processes / repeats
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
    return {
        "model": model_id,
        "runtime": runtime,
        "processes": processes,
        "threads_per_process": 1,
        "images_per_s": {"median": median(rates), "runs": rates},
        "cores_used": median(cores),
        "phase_ms": {phase: spent * 1000 for phase, spent in phases.items()},
    }


def _receive(out: Any, children: list[Any], timeout: float) -> Any:
    """The next message from the processes; raise if one of them died or none came in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return out.get(timeout=1)
        except queue.Empty:
            dead = [child.exitcode for child in children if child.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a ceiling process exited with code {dead[0]}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"the ceiling processes did not answer within {timeout:.0f} s") from None
