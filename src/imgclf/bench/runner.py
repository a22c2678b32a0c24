"""The whole benchmark run. Every part uses the same model(s), the same photos and the same
machine, so that the parts can be compared as ratios: the service against the pipeline ceiling
(`ceiling`) and against a server without a queue (`sync_reference`)."""

from __future__ import annotations

import datetime
import functools
import gc
import importlib.metadata
import itertools
import os
import platform
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from redis import Redis

from imgclf.bench import agreement, baseline, sync_reference
from imgclf.bench.ceiling import ceiling
from imgclf.bench.load import LoadResult, generate_load, generate_reference_load
from imgclf.bench.stats import cpu_seconds, percentiles, process_tree, rate, repeated
from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.decoding import open_rgb
from imgclf.images.samples import install_sample_photos
from imgclf.jobs.liveness import model_runtimes, ready_workers
from imgclf.jobs.queue import CLASSIFY_TASK, make_queue
from imgclf.models.classifier import Classifier
from imgclf.models.export import export_model
from imgclf.models.loading import TorchClassifier
from imgclf.models.manifest import read_manifest
from imgclf.models.pipeline import Pipeline
from imgclf.models.registry import MODELS, model_availability
from imgclf.models.runtimes import RUNTIMES, Runtime, build, parity_problem
from imgclf.models.serving import auto_runtime, load_torch
from imgclf.ops.embedded_redis import EmbeddedRedis, free_port
from imgclf.ops.processes import spawn, stop, wait_for_http, wait_for_workers
from imgclf.ops.progress import progress

Results = dict[str, Any]


@dataclass
class BenchOptions:
    """What to measure and for how long; `smoke()` is the seconds-long version CI runs."""

    out_dir: Path
    models: list[str] = field(default_factory=lambda: ["efficientnet_lite0", "efficientnet_lite2"])
    runtimes: list[Runtime] = field(default_factory=lambda: list(RUNTIMES))
    repeats: int = 3
    seconds: float = 2.0
    batches: tuple[int, ...] = (1, 4, 16)
    micro_batches: tuple[int, ...] = (1, 2, 4, 8)
    """Batch sizes of the micro-batching check: a worker's forward pass with its own inference threads."""
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    compared: tuple[int, ...] = (1, 8, 32)
    """Levels (users) at which the synchronous reference runs too; each must be in `concurrency`."""
    configurations: tuple[tuple[int, int], ...] = ((1, 2), (2, 1), (3, 1), (4, 1))
    """(workers, inference threads each) measured end to end at `configuration_users`, the default among them."""
    configuration_users: int = 16
    load_seconds: float = 8.0
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    """N: processes of the pipeline ceiling and of the synchronous reference, one inference thread each."""
    ceiling_runtimes: tuple[Runtime, ...] = ("onnxruntime", "openvino")
    ceiling_seconds: float = 4.0
    queue_jobs: int = 100
    agreement_photos: int | None = None
    """Catalogue photos whose 31 variants each the preprocessing agreement compares (None: all)."""
    baseline_jobs: int = 8
    model_dir: Path | None = None
    smoke: bool = False

    @classmethod
    def smoke_test(cls, out_dir: Path) -> BenchOptions:
        return cls(
            out_dir=out_dir,
            models=["efficientnet_lite0"],
            repeats=1,
            seconds=0.2,
            batches=(1, 4),
            micro_batches=(1, 2),
            concurrency=(1, 8),
            compared=(1, 8),
            load_seconds=1.0,
            configurations=((2, 1), (3, 1)),
            configuration_users=8,
            cores=2,
            ceiling_runtimes=("onnxruntime",),
            ceiling_seconds=1.0,
            queue_jobs=4,
            agreement_photos=1,
            baseline_jobs=1,
            smoke=True,
        )

    @property
    def primary_model(self) -> str:
        """The model of the queue, end-to-end and baseline parts."""
        return self.models[0]


def run_benchmark(options: BenchOptions, log: Callable[[str], None] = print) -> Results:
    """Measure everything; returns the raw results (also written by `report`).

    It is long because it is the run's script: the ten steps in the order of the report, each a
    call and a progress line, around the Redis and the settings they share."""
    cores = os.cpu_count() or 1
    results: Results = {"machine": machine(), "options": _options_summary(options)}
    log(f"benchmark on {results['machine']['cpu']} ({cores} cores)")
    with tempfile.TemporaryDirectory(prefix="imgclf-bench-") as tmp, progress(10, "benchmark") as bar:
        root = Path(tmp)
        install_sample_photos(root / "images")
        settings = Settings(
            data_dir=root,
            image_dir=root / "images",
            model_dir=options.model_dir or Settings().model_dir,
            models=options.models,
        )
        paths = [settings.image_dir / image_id for image_id in ImageCatalogue(settings.image_dir).ids()]
        log("1/10 model only")
        results["model_only"] = model_only(options, settings, paths)
        results["micro_batching"] = micro_batching(options, settings, paths)
        bar.advance()
        log("2/10 pipeline")
        results["pipeline"] = pipeline(options, settings, paths)
        bar.advance()
        log("3/10 preprocessing agreement")
        results["agreement"] = agreement.measure(
            settings.model_dir, options.primary_model, paths[: options.agreement_photos], settings.max_image_pixels
        )
        bar.advance()
        log(f"4/10 pipeline ceiling ({options.cores} processes)")
        # Always the runtime `auto` serves too (the export timed it fastest on this machine): the
        # report compares the service with the ceiling on the workers' own runtime.
        served = results["micro_batching"]["runtime"]
        results["ceiling"] = [
            ceiling(settings.model_dir, options.primary_model, runtime, paths, settings.max_image_pixels,
                    options.cores, options.ceiling_seconds, options.repeats)
            for runtime in dict.fromkeys([*options.ceiling_runtimes, served])
        ]  # fmt: skip
        bar.advance()
        redis = EmbeddedRedis(root / "redis")
        redis.start()
        try:
            settings = settings.model_copy(update={"redis_url": redis.url})
            connection = Redis.from_url(redis.url)
            log("5/10 workers")
            results["workers"], worker_start = workers(options, settings, connection, paths)
            bar.advance()
            log("6/10 end to end")
            assert redis.process is not None
            image_ids = [path.name for path in paths]
            results["end_to_end"] = end_to_end(options, settings, image_ids, redis.process.pid)
            bar.advance()
            log(f"7/10 configurations at {options.configuration_users} users")
            results["configurations"] = configurations(options, settings, image_ids, redis.process.pid)
            bar.advance()
            log(f"8/10 synchronous reference ({options.cores} processes)")
            results["reference"] = reference(options, settings, image_ids, results["end_to_end"]["runtime"])
            bar.advance()
            log("9/10 the lesson's design")
            results["baseline"] = lesson_baseline(options, settings, connection, paths)
            bar.advance()
            log("10/10 memory")
            results["memory"] = {
                **results["end_to_end"].pop("memory"),
                **worker_start,
                **worker_memory(settings, connection),
            }
            bar.advance()
            connection.close()
        finally:
            redis.stop()
    results["goals"] = goals(results, options)
    return results


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        memory_kb = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "torch": importlib.metadata.version("torch"),
        "onnxruntime": importlib.metadata.version("onnxruntime"),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _options_summary(options: BenchOptions) -> dict[str, Any]:
    summary = {key: value for key, value in vars(options).items() if key not in ("out_dir", "model_dir")}
    summary["primary_model"] = options.primary_model
    return summary


def _classifiers(options: BenchOptions, settings: Settings) -> Iterator[tuple[str, str, Classifier]]:
    """(model, runtime, classifier), built one at a time and in the order torch first: a runtime's
    thread pool can slow the others down while it lives, so each is measured alone. Every runtime is
    forced here, from one export per model id (made from torch if missing); what a worker uses is
    `serving.load_for_serving`'s choice."""
    threads = os.cpu_count() or 1
    for model_id in options.models:
        spec = MODELS[model_id]
        reference = load_torch(spec, settings.model_dir, threads)
        assert isinstance(reference, TorchClassifier)
        manifest = export_model(reference, spec, settings.model_dir, Settings().threads_per_worker())
        for runtime in options.runtimes:
            if runtime == "torch":
                yield model_id, runtime, reference
                continue
            classifier = build(runtime, manifest, settings.model_dir, threads)
            problem = parity_problem(classifier, manifest, settings.model_dir)
            if problem is not None:
                raise RuntimeError(f"{model_id} on {runtime}: {problem}")
            yield model_id, runtime, classifier
            del classifier
            gc.collect()


def model_only(options: BenchOptions, settings: Settings, paths: list[Path]) -> list[Results]:
    """Forward passes per second (images/s) on preprocessed batches."""
    rows = []
    images = [open_rgb(path, settings.max_image_pixels) for path in paths]
    for model_id, runtime, classifier in _classifiers(options, settings):
        for size in options.batches:
            batch = classifier.preprocess([images[index % len(images)] for index in range(size)])
            measured = repeated(_forward_rate(classifier, batch, options.seconds), options.repeats)
            rows.append({"model": model_id, "runtime": runtime, "batch": size, "images_per_s": measured})
    return rows


def micro_batching(options: BenchOptions, settings: Settings, paths: list[Path]) -> Results:
    """Forward passes per second of the primary model at `options.micro_batches`, on the runtime
    `auto` runs and with a worker's inference threads: what a worker could gain by taking several
    queued jobs at once (issue 14 builds micro-batching only if it wins 10 %)."""
    spec = MODELS[options.primary_model]
    manifest = read_manifest(settings.model_dir, spec.id, spec.weights_file)  # model_only exported it
    assert manifest is not None
    runtime = auto_runtime(manifest)
    threads = Settings().threads_per_worker()
    classifier = build(runtime, manifest, settings.model_dir, threads)
    images = [open_rgb(path, settings.max_image_pixels) for path in paths]
    rows: list[Results] = []
    for size in options.micro_batches:
        batch = classifier.preprocess([images[index % len(images)] for index in range(size)])
        rows.append({"batch": size, "images_per_s": repeated(_forward_rate(classifier, batch, options.seconds),
                                                             options.repeats)})  # fmt: skip
    single = rows[0]["images_per_s"]["median"]
    best = max(rows, key=lambda row: row["images_per_s"]["median"])
    return {"runtime": runtime, "threads": threads, "batches": rows,
            "best_batch": best["batch"], "best_over_single": best["images_per_s"]["median"] / single}  # fmt: skip


def _forward_rate(classifier: Classifier, batch: np.ndarray, seconds: float) -> Callable[[], float]:
    return lambda: rate(lambda: classifier.predict(batch), len(batch), seconds)


def pipeline(options: BenchOptions, settings: Settings, paths: list[Path]) -> list[Results]:
    """The worker's `Pipeline` (decode + preprocess + forward + top-5) on one image file at a time,
    no queue."""
    rows = []
    for model_id, runtime, classifier in _classifiers(options, settings):
        as_served = Pipeline(classifier, settings.max_image_pixels)
        measured = repeated(_pipeline_rate(as_served, paths, options.seconds), options.repeats)
        rows.append({"model": model_id, "runtime": runtime, "images_per_s": measured})
    return rows


def _pipeline_rate(pipeline: Pipeline, paths: list[Path], seconds: float) -> Callable[[], float]:
    files = itertools.cycle(paths)
    return lambda: rate(lambda: pipeline.run(next(files)), 1, seconds)


def _start_workers(
    settings: Settings, connection: Redis, count: int, models: list[str], threads: int | None = None
) -> list[subprocess.Popen[bytes]]:
    """`count` workers serving `models`, with `threads` inference threads each (default: the cores shared out)."""
    cores = os.cpu_count() or 1
    threads = threads or max(1, cores // count)
    worker_settings = settings.model_copy(update={"models": models, "workers": count, "torch_threads": threads})
    already = len(ready_workers(connection))
    processes = [
        spawn("worker", worker_settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)
    ]
    wait_for_workers(connection, already + count, processes)
    return processes


def workers(
    options: BenchOptions, settings: Settings, connection: Redis, paths: list[Path]
) -> tuple[list[Results], Results]:
    """Jobs per second through RQ, jobs put on the queue directly (no HTTP), 1 and N workers; and
    the single worker's start-up (spawn -> ready) and peak memory with the primary model alone."""
    queue = make_queue(connection)
    finished = queue.finished_job_registry
    rows = []
    start: Results = {}
    counts = sorted({1, os.cpu_count() or 1})
    for count in counts:
        spawned = time.perf_counter()
        processes = _start_workers(settings, connection, count, [options.primary_model])
        if count == 1:
            start["worker_start_s"] = time.perf_counter() - spawned

        def measure() -> float:
            before = finished.count
            started = time.perf_counter()
            queue.enqueue_many(
                [
                    queue.prepare_data(CLASSIFY_TASK, (options.primary_model, paths[index % len(paths)].name))
                    for index in range(options.queue_jobs)
                ]
            )
            while finished.count - before < options.queue_jobs:
                time.sleep(0.002)
            return options.queue_jobs / (time.perf_counter() - started)

        try:
            measure()  # warm-up: first jobs pay for lazy initialisation
            rows.append({"workers": count, "threads_per_worker": max(1, (os.cpu_count() or 1) // count),
                         "jobs_per_s": repeated(measure, options.repeats)})  # fmt: skip
            if count == 1:
                start["worker_primary_peak_rss_mib"] = _peak_rss_mib(processes[0].pid)
        finally:
            for process in processes:
                stop(process)
    return rows, start


def _peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


LOAD_GENERATOR = "load generator"
"""The group name of this process's own CPU (it counts in the cores used, not in a classification's cost)."""


def _cpu_used(pids: dict[str, list[int]], measure: Callable[[], object]) -> tuple[dict[str, float], float]:
    """Run `measure`; return the CPU seconds each group of processes (and this one, as "load
    generator") used meanwhile, and the wall seconds it took."""
    before = {group: sum(cpu_seconds(pid) for pid in members) for group, members in pids.items()}
    client_before = time.process_time()
    started = time.perf_counter()
    measure()
    wall = time.perf_counter() - started
    used = {group: sum(cpu_seconds(pid) for pid in members) - before[group] for group, members in pids.items()}
    used[LOAD_GENERATOR] = time.process_time() - client_before
    return used, wall


def _level(load: Callable[[int], LoadResult], concurrency: int, repeats: int, pids: dict[str, list[int]]) -> Results:
    """`repeats` runs of `load` at one level: throughput, latency, cores kept busy per group of
    processes, and CPU milliseconds per completed classification per group."""
    return _summary(concurrency, *_runs(load, concurrency, repeats, pids))


def _runs(
    load: Callable[[int], LoadResult], concurrency: int, repeats: int, pids: dict[str, list[int]]
) -> tuple[list[LoadResult], dict[str, float], float]:
    """`repeats` runs of `load` at one level, the CPU seconds each group used meanwhile, the wall seconds."""
    runs: list[LoadResult] = []
    used, wall = _cpu_used(pids, lambda: runs.extend(load(concurrency) for _ in range(repeats)))
    return runs, used, wall


def _summary(concurrency: int, runs: list[LoadResult], used: dict[str, float], wall: float) -> Results:
    """One level's figures from its runs and the CPU seconds each group of processes used in `wall` seconds."""
    throughputs = sorted(run.throughput for run in runs)
    completed = sum(len(run.result) for run in runs)
    return {
        "concurrency": concurrency,
        "jobs_per_s": {"median": throughputs[len(throughputs) // 2], "runs": throughputs},
        "submit_ms": percentiles([s for run in runs for s in run.submit]),
        "result_ms": percentiles([s for run in runs for s in run.result]),
        "completed": completed,
        "failed": sum(run.failed for run in runs),
        "cores_used": {group: seconds / wall for group, seconds in used.items()},
        "cpu_ms_per_classification": {
            group: 1000 * seconds / completed if completed else float("nan")
            for group, seconds in used.items()
            if group != LOAD_GENERATOR
        },
    }


def _start_web(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    """An `imgclf web` on a free port, answering; its URL. The result cache is off: it would answer
    the load's repeated photos without a worker."""
    web_settings = settings.model_copy(update={"port": free_port(), "result_cache_ttl": 0})
    web = spawn("web", web_settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{web_settings.port}"
    try:
        wait_for_http(f"{url}/info", web)
    except BaseException:
        stop(web)
        raise
    return web, url


def end_to_end(options: BenchOptions, settings: Settings, image_ids: list[str], redis_pid: int) -> Results:
    """HTTP submit -> finished with the default setup (`imgclf serve`'s: one web, `workers` workers)."""
    default = Settings()
    connection = Redis.from_url(settings.redis_url or "")
    web, url = _start_web(settings)
    processes: list[subprocess.Popen[bytes]] = []
    rows = []
    try:
        processes = _start_workers(settings, connection, default.workers, [options.primary_model])
        generate_load(url, options.primary_model, image_ids, 1, min(1.0, options.load_seconds))  # warm-up
        pids = {"workers": [process.pid for process in processes], "web": [web.pid], "redis": [redis_pid]}

        def load(concurrency: int) -> LoadResult:
            return generate_load(url, options.primary_model, image_ids, concurrency, options.load_seconds)

        for concurrency in options.concurrency:
            row = _level(load, concurrency, options.repeats, pids)
            per_classification = row["cpu_ms_per_classification"]
            per_classification["service"] = sum(per_classification[group] for group in pids)
            rows.append(row)
        memory = {"web_peak_rss_mib": _peak_rss_mib(web.pid)}
        runtime = model_runtimes(connection).get(options.primary_model, "none")
        cache = cache_hits(settings, options, image_ids)
    finally:
        stop(web)
        for process in processes:
            stop(process)
        connection.close()
    return {"workers": default.workers, "threads_per_worker": default.threads_per_worker(),
            "levels": rows, "memory": memory, "cache_hit": cache,
            "runtime": runtime, "auto_speeds": _auto_speeds(settings, options.primary_model)}  # fmt: skip


def configurations(options: BenchOptions, settings: Settings, image_ids: list[str], redis_pid: int) -> list[Results]:
    """End to end at `options.configuration_users` users for each (workers, inference threads per
    worker) of `options.configurations`, one web process each time: is the default the fastest?

    The repeats are interleaved, one run of every configuration per round, so that the machine's
    drift (other tenants; in one run section 5 and this section measured the same configuration
    16 % apart) falls on every configuration alike instead of on whichever was measured last."""
    default = Settings()
    connection = Redis.from_url(settings.redis_url or "")
    web, url = _start_web(settings)
    # The default is measured whatever the list says (on a 4-core machine it is 2 x 2).
    setups = list(dict.fromkeys([*options.configurations, (default.workers, default.threads_per_worker())]))
    runs: dict[tuple[int, int], list[LoadResult]] = {setup: [] for setup in setups}
    used: dict[tuple[int, int], Counter[str]] = {setup: Counter() for setup in setups}
    wall = dict.fromkeys(setups, 0.0)
    load = functools.partial(generate_load, url, options.primary_model, image_ids, seconds=options.load_seconds)
    try:
        for _ in range(options.repeats):
            for workers, threads in setups:
                processes = _start_workers(settings, connection, workers, [options.primary_model], threads)
                try:
                    load(1, seconds=min(1.0, options.load_seconds))  # warm-up: lazy initialisation
                    pids = {"workers": [process.pid for process in processes], "web": [web.pid], "redis": [redis_pid]}
                    measured, seconds, took = _runs(load, options.configuration_users, 1, pids)
                    runs[workers, threads].extend(measured)
                    used[workers, threads].update(seconds)
                    wall[workers, threads] += took
                finally:
                    for process in processes:
                        stop(process)
    finally:
        stop(web)
        connection.close()
    return [
        {
            "workers": workers,
            "threads_per_worker": threads,
            "default": (workers, threads) == (default.workers, default.threads_per_worker()),
            **_summary(
                options.configuration_users,
                runs[workers, threads],
                dict(used[workers, threads]),
                wall[workers, threads],
            ),
        }
        for workers, threads in setups
    ]


def _auto_speeds(settings: Settings, model_id: str) -> dict[str, float]:
    """What `auto` decided from: the pipeline timings the export recorded (`runtimes.pipeline_speeds`)."""
    spec = MODELS[model_id]
    manifest = read_manifest(settings.model_dir, spec.id, spec.weights_file)
    return manifest.speeds if manifest is not None else {}


def reference(options: BenchOptions, settings: Settings, image_ids: list[str], runtime: str) -> Results:
    """The synchronous reference (N processes that classify inside the request, same pipeline
    and runtime as the service's workers) at the `compared` levels."""
    port = free_port()
    process = sync_reference.start(
        settings, options.primary_model, runtime, options.cores, port, settings.data_dir / "reference-ready"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        generate_reference_load(url, image_ids, 1, min(1.0, options.load_seconds))  # warm-up
        pids = {"reference": process_tree(process.pid)}

        def load(concurrency: int) -> LoadResult:
            return generate_reference_load(url, image_ids, concurrency, options.load_seconds)

        rows = [_level(load, concurrency, options.repeats, pids) for concurrency in options.compared]
    finally:
        stop(process)
    return {"processes": options.cores, "threads_per_process": 1, "runtime": runtime, "levels": rows}


def cache_hits(settings: Settings, options: BenchOptions, image_ids: list[str]) -> Results:
    """Submit -> finished for requests the result cache answers (the photos were classified above)."""
    web_settings = settings.model_copy(update={"port": free_port()})
    web = spawn("web", web_settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{web_settings.port}"
        wait_for_http(f"{url}/info", web)
        generate_load(url, options.primary_model, image_ids, 1, min(1.0, options.load_seconds))  # fills the cache
        run = generate_load(url, options.primary_model, image_ids, 1, options.load_seconds)
        return {"jobs_per_s": run.throughput, "result_ms": percentiles(run.result), "requests": len(run.result)}
    finally:
        stop(web)


def lesson_baseline(options: BenchOptions, settings: Settings, connection: Redis, paths: list[Path]) -> Results:
    """Jobs per second of the lesson's design: forking worker, model built in every job."""
    queue = baseline.make_queue(connection)
    process = baseline.start_worker(settings, connection)
    try:
        finished = queue.finished_job_registry

        def measure() -> float:
            before = finished.count
            started = time.perf_counter()
            for index in range(options.baseline_jobs):
                queue.enqueue(baseline.classify_like_the_lesson, options.primary_model, str(paths[index % len(paths)]))
            while finished.count - before < options.baseline_jobs:
                if queue.failed_job_registry.count:
                    raise RuntimeError("a baseline job failed")
                time.sleep(0.01)
            return options.baseline_jobs / (time.perf_counter() - started)

        return {"model": options.primary_model, "jobs_per_s": repeated(measure, options.repeats)}
    finally:
        stop(process)


def worker_memory(settings: Settings, connection: Redis) -> Results:
    """Peak RSS of one worker with every model whose weights are present loaded."""
    every = model_availability(list(MODELS), settings.model_dir).available
    (process,) = _start_workers(settings, connection, 1, every)
    try:
        return {"worker_peak_rss_mib": _peak_rss_mib(process.pid), "worker_models": every}
    finally:
        stop(process)


CPU_LEVEL = 8
"""Users at which CPU per classification is compared: the service is saturated there."""


def goals(results: Results, options: BenchOptions) -> Results:
    """The issue's goals, as ratios measured in this one run.

    It is long because it is one dict, each figure of the report's goals under its name."""
    primary = options.primary_model
    served_by = results["end_to_end"]["runtime"]
    pipeline_rate = next(
        row["images_per_s"]["median"]
        for row in results["pipeline"]
        if row["model"] == primary and row["runtime"] == served_by
    )
    levels = results["end_to_end"]["levels"]
    best = max(levels, key=lambda row: row["jobs_per_s"]["median"])
    e2e = best["jobs_per_s"]["median"]
    lesson = results["baseline"]["jobs_per_s"]["median"]
    saturated_cores = best["cores_used"]
    # The ceiling is what the cores can do: the fastest runtime measured, whichever the workers chose.
    top = max(results["ceiling"], key=lambda row: row["images_per_s"]["median"])
    service = {row["concurrency"]: row for row in levels}
    synchronous = {row["concurrency"]: row for row in results["reference"]["levels"]}
    cpu_level = CPU_LEVEL if CPU_LEVEL in synchronous else max(synchronous)
    service_cpu = service[cpu_level]["cpu_ms_per_classification"]["service"]
    reference_cpu = synchronous[cpu_level]["cpu_ms_per_classification"]["reference"]
    phases = top["phase_ms"]
    return {
        "cores_used_at_saturation": saturated_cores,
        "runtime": served_by,
        "pipeline_images_per_s": pipeline_rate,
        "end_to_end_jobs_per_s": e2e,
        "saturation_concurrency": best["concurrency"],
        "end_to_end_over_pipeline": e2e / pipeline_rate,
        "baseline_jobs_per_s": lesson,
        "end_to_end_over_baseline": e2e / lesson,
        "submit_p99_ms_at_saturation": best["submit_ms"]["p99"],
        "cache_hit_p50_ms": results["end_to_end"]["cache_hit"]["result_ms"]["p50"],
        "cache_hit_p99_ms": results["end_to_end"]["cache_hit"]["result_ms"]["p99"],
        "ceiling_images_per_s": top["images_per_s"]["median"],
        "ceiling_runtime": top["runtime"],
        "end_to_end_over_ceiling": e2e / top["images_per_s"]["median"],
        "worker_cores_busy_fraction": saturated_cores["workers"] / (os.cpu_count() or 1),
        "versus_reference": [
            {
                "users": users,
                "service": service[users]["jobs_per_s"]["median"],
                "reference": row["jobs_per_s"]["median"],
                "ratio": service[users]["jobs_per_s"]["median"] / row["jobs_per_s"]["median"],
            }
            for users, row in synchronous.items()
        ],
        "p50_ms_at_1_user": {
            "service": service[1]["result_ms"]["p50"],
            "reference": synchronous[1]["result_ms"]["p50"],
        },
        "p50_at_1_user_over_reference": service[1]["result_ms"]["p50"] / synchronous[1]["result_ms"]["p50"],
        "cpu_level": cpu_level,
        "cpu_ms_per_classification": {"service": service_cpu, "reference": reference_cpu},
        "cpu_over_reference": service_cpu / reference_cpu,
        "decode_preprocess_over_forward": (phases["decode"] + phases["preprocess"]) / phases["inference"],
        "agreement": results["agreement"],
        "worker_primary_peak_rss_mib": results["memory"]["worker_primary_peak_rss_mib"],
        "worker_start_s": results["memory"]["worker_start_s"],
        **_configuration_goal(results.get("configurations")),
        "micro_batching_best_over_single": results["micro_batching"]["best_over_single"],
    }


def _configuration_goal(rows: list[Results] | None) -> Results:
    """The default configuration's jobs/s over the fastest configuration's (1.0: the default is the fastest)."""
    rows = rows or []
    default = next((row for row in rows if row["default"]), None)
    if default is None:
        return {}
    fastest = max(rows, key=lambda row: row["jobs_per_s"]["median"])
    return {
        "default_over_fastest_configuration": default["jobs_per_s"]["median"] / fastest["jobs_per_s"]["median"],
        "fastest_configuration": {"workers": fastest["workers"], "threads_per_worker": fastest["threads_per_worker"]},
    }
