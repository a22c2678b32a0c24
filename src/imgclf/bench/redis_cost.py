"""What one classification costs Redis, counted on a running service rather than read off the code.

`measure_redis_cost` drives a running service (web + workers) through the JSON API, as a program
would (POST, then GET ?wait= until the job ended), and reads Redis' own counters around it:
commands by name (INFO commandstats), network bytes (INFO stats), Redis CPU (INFO cpu), and the
memory a finished job keeps for `IMGCLF_RESULT_TTL`. The same counters over an idle interval of the
same length (worker heartbeats, the reaper, RQ's own upkeep) are subtracted, so the figures are per
job. `measure_queued_memory` needs a service with no worker: what a waiting job and a stored
upload hold in Redis. `replay_ceiling` sends a captured window of real jobs' commands (MONITOR)
back to a bare redis-server from several processes, to find how many jobs/s one Redis carries.

Run all of it on a stack of its own: `python -m imgclf.bench.redis_cost` (docs/scaling.md quotes it).
Counts change whenever the job path does, which is why this is code and the doc a table of its output.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import multiprocessing
import os
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from redis import Redis
from redis.exceptions import RedisError

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.samples import install_sample_photos
from imgclf.jobs.liveness import live_workers
from imgclf.jobs.queue import make_queue
from imgclf.jobs.resource import UNFINISHED
from imgclf.ops.embedded_redis import EmbeddedRedis, find_redis_server, free_port
from imgclf.ops.processes import spawn, stop_all, wait_for_http, wait_for_workers

MODEL = "efficientnet_lite0"
API = "/api/v1/classifications"
WAIT = 10
"""Seconds each status request waits for the job to end (long polling), as `imgclf bench` does."""

JOB_DEADLINE = 120
"""Seconds a job may take from submit to its end before the measurement gives up on it."""

JOB_KEY = "rq:job:{}"
RESULTS_KEY = "rq:results:{}"
"""RQ's keys of a job's hash and of its result stream (the benchmark does not import RQ itself)."""

UPLOAD_PHOTO = "chelsea.jpg"
"""The catalogue photo the upload variant sends (each time with a few unique bytes appended, so
that every upload is a new SHA-256: the store keeps the same bytes once)."""

BLOCKING = {b"BLMOVE": b"LMOVE", b"BRPOPLPUSH": b"RPOPLPUSH", b"BLPOP": b"LPOP", b"BRPOP": b"RPOP"}
"""Blocking commands and what a replay sends instead: in the captured run the list was never
empty for long, and a replay must never wait."""

MEASURING = {b"INFO", b"CONFIG", b"MONITOR", b"CLIENT", b"HELLO", b"AUTH", b"SELECT", b"PING"}
"""Commands of the measurement itself, or of setting up a connection, left out of a replay."""


@dataclass
class RedisCost:
    """Per job, with the idle background subtracted; what a report prints."""

    kind: str
    """Either "catalogue" (a JSON body naming a catalogue photo) or "upload" (multipart, a photo's bytes)."""
    jobs: int
    clients: int
    seconds: float
    commands: dict[str, float]
    """Command name (INFO commandstats' spelling) -> calls per job, most first."""
    net_in_bytes: float
    """Bytes clients sent Redis per job (requests)."""
    net_out_bytes: float
    """Bytes Redis sent clients per job (replies)."""
    redis_cpu_ms: float
    """Redis' own CPU (user + system) per job: the figure that bounds jobs/s per Redis core."""
    retained_bytes: float
    """Growth of `used_memory` per finished job: what each job keeps for `IMGCLF_RESULT_TTL`."""
    background_per_s: dict[str, float] = field(default_factory=dict)
    """Commands per second of the idle interval (heartbeats, reaper, RQ upkeep), already subtracted."""
    finished_key_bytes: float = 0.0
    """MEMORY USAGE of a finished job's hash plus its result stream: the bulk of `retained_bytes`."""
    cache_entry_bytes: float = 0.0
    """MEMORY USAGE of the result-cache entry such a job would leave with the cache on (the default)."""

    @property
    def total_commands(self) -> float:
        return sum(self.commands.values())


@dataclass
class QueuedMemory:
    """What waiting work holds in Redis, measured with no worker taking it."""

    jobs: int
    bytes_per_queued_job: float
    """`used_memory` growth per catalogue job waiting in the queue."""
    job_key_bytes: float
    """MEMORY USAGE of one such job's hash alone (the rest: the queue's list entry and bookkeeping)."""
    uploads: int
    bytes_per_upload: float
    """`used_memory` growth per upload job waiting: its job plus the stored photo and its shown copy."""
    upload_photo_bytes: int
    """Size of the uploaded file."""


@dataclass
class Snapshot:
    """Redis' counters at one moment (after a CONFIG RESETSTAT)."""

    calls: Counter[str]
    net_in: int
    net_out: int
    cpu_s: float
    moment: float


def snapshot(redis: Redis) -> Snapshot:
    """The counters now. INFO stats first: the INFO commandstats reply that follows is not in it."""
    stats = cast(dict[str, Any], redis.info("stats"))
    commandstats = cast(dict[str, Any], redis.info("commandstats"))
    cpu = cast(dict[str, Any], redis.info("cpu"))
    calls = Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in commandstats.items()})
    return Snapshot(
        calls,
        int(stats["total_net_input_bytes"]),
        int(stats["total_net_output_bytes"]),
        float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        time.perf_counter(),
    )


@contextmanager
def counted(redis: Redis) -> Iterator[list[Snapshot]]:
    """Reset Redis' statistics, run the body, then leave [start, end] snapshots in the list.

    CONFIG RESETSTAT zeroes commandstats and the network counters but not the CPU clock, so the
    CPU is read at both ends. Both intervals (jobs, idle) are measured this same way, so the
    measurement's own commands cancel out in their difference.
    """
    redis.config_resetstat()
    taken = [snapshot(redis)]
    yield taken
    taken.append(snapshot(redis))


def used_memory(redis: Redis) -> int:
    return int(cast(dict[str, Any], redis.info("memory"))["used_memory"])


def distinct_upload(photo: bytes, index: int) -> bytes:
    """`photo` with unique trailing bytes: the same picture, a new SHA-256 (decoders ignore them)."""
    return photo + f"imgclf-redis-cost-{os.getpid()}-{time.time_ns()}-{index}".encode()


def submit(client: httpx.Client, image_id: str | None, upload: bytes | None) -> str:
    """POST one classification through the JSON API (a catalogue id as JSON, or a multipart
    upload); its job id."""
    if upload is not None:
        answer = client.post(API, data={"model": MODEL}, files={"file": ("photo.jpg", upload, "image/jpeg")})
    else:
        answer = client.post(API, json={"model": MODEL, "image": image_id})
    if answer.status_code == 200:
        raise RuntimeError("the result cache answered without a job: turn it off (IMGCLF_RESULT_CACHE_TTL=0)")
    if answer.status_code != 202:
        raise RuntimeError(f"POST {API} answered {answer.status_code}: {answer.text[:300]}")
    return str(answer.json()["id"])


def wait_until_ended(client: httpx.Client, job_id: str) -> None:
    """Long-poll the job until it ended; raise unless it succeeded."""
    deadline = time.monotonic() + JOB_DEADLINE
    while (body := client.get(f"{API}/{job_id}", params={"wait": WAIT}).json())["status"] in UNFINISHED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not end within {JOB_DEADLINE} s: is a worker running?")
    if body["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} ended {body['status']}: {body.get('error')}")


def run_jobs(base_url: str, image_ids: Sequence[str], jobs: int, clients: int, photo: bytes | None) -> list[str]:
    """`jobs` classifications by `clients` users at once, each submitting and waiting in turn;
    their job ids."""
    images = itertools.cycle(image_ids)
    numbers = itertools.count()
    lock = threading.Lock()
    done: list[str] = []

    def user(client: httpx.Client) -> None:
        while True:
            with lock:
                index = next(numbers)
                image_id = next(images)
            if index >= jobs:
                return
            upload = distinct_upload(photo, index) if photo is not None else None
            job_id = submit(client, image_id, upload)
            wait_until_ended(client, job_id)
            done.append(job_id)

    timeout = httpx.Timeout(WAIT + 30)
    with httpx.Client(base_url=base_url, timeout=timeout) as client, ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(user, client) for _ in range(clients)]:
            future.result()
    return done


def measure_redis_cost(
    redis: Redis,
    base_url: str,
    image_ids: list[str],
    jobs: int = 50,
    *,
    clients: int = 8,
    photo: bytes | None = None,
) -> RedisCost:
    """Per-job Redis commands, bytes, CPU and retained memory of `jobs` classifications through
    the service at `base_url` (its workers running, its result cache off: otherwise repeated
    photos cost a cache lookup instead of a job), with `photo` uploaded instead of catalogue ids
    when given. `redis` must be the service's Redis; nothing else should use it meanwhile."""
    kind = "upload" if photo is not None else "catalogue"
    run_jobs(base_url, image_ids, min(jobs, 2 * clients), clients, photo)  # warm: connection pools, lazy imports
    memory_before = used_memory(redis)
    with counted(redis) as busy:
        job_ids = run_jobs(base_url, image_ids, jobs, clients, photo)
    retained = used_memory(redis) - memory_before
    seconds = busy[1].moment - busy[0].moment
    with counted(redis) as idle:
        time.sleep(seconds)
    cost = _per_job(kind, jobs, clients, busy, idle, retained)
    if job_ids:
        cost.finished_key_bytes = _finished_key_bytes(redis, job_ids[:20])
        cost.cache_entry_bytes = _cache_entry_bytes(redis, job_ids[0])
    return cost


def _cache_entry_bytes(redis: Redis, job_id: str) -> float:
    """MEMORY USAGE of a result-cache entry for this job's result (the cache is off here, but on
    by default, where every new photo adds one for `IMGCLF_RESULT_CACHE_TTL`): its stored return
    value written under a probe key, measured, deleted."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrevrange(RESULTS_KEY.format(job_id), count=1))
    if not entries:
        return 0.0
    value = base64.b64decode(entries[0][1][b"return_value"])
    probe = f"imgclf:redis-cost:probe:{os.getpid()}"
    redis.set(probe, value, ex=60)
    size = int(cast(int, redis.memory_usage(probe)) or 0)
    redis.delete(probe)
    return float(size)


def _finished_key_bytes(redis: Redis, job_ids: Sequence[str]) -> float:
    """Mean MEMORY USAGE of a finished job's hash and result stream: most of what it keeps."""
    pipe = redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.memory_usage(JOB_KEY.format(job_id))
        pipe.memory_usage(RESULTS_KEY.format(job_id))
    return round(sum(int(size or 0) for size in pipe.execute()) / max(1, len(job_ids)))


def _per_job(
    kind: str, jobs: int, clients: int, busy: list[Snapshot], idle: list[Snapshot], retained: int
) -> RedisCost:
    """Busy interval minus the idle one (scaled to the same length), divided by the jobs."""
    busy_s = busy[1].moment - busy[0].moment
    idle_s = idle[1].moment - idle[0].moment
    scale = busy_s / idle_s
    commands = {}
    for name in busy[1].calls.keys() | idle[1].calls.keys():
        per_job = (busy[1].calls[name] - scale * idle[1].calls[name]) / jobs
        if abs(per_job) >= 0.005:
            commands[name] = round(per_job, 2)
    background = {name: round(count / idle_s, 2) for name, count in idle[1].calls.most_common() if count}
    busy_cpu = busy[1].cpu_s - busy[0].cpu_s
    idle_cpu = idle[1].cpu_s - idle[0].cpu_s
    return RedisCost(
        kind=kind,
        jobs=jobs,
        clients=clients,
        seconds=round(busy_s, 2),
        commands=dict(sorted(commands.items(), key=lambda item: (-item[1], item[0]))),
        net_in_bytes=round((busy[1].net_in - scale * idle[1].net_in) / jobs),
        net_out_bytes=round((busy[1].net_out - scale * idle[1].net_out) / jobs),
        redis_cpu_ms=round(1000 * (busy_cpu - scale * idle_cpu) / jobs, 3),
        retained_bytes=round(retained / jobs),
        background_per_s=background,
    )


def measure_queued_memory(
    redis: Redis, base_url: str, image_ids: list[str], jobs: int = 200, uploads: int = 20, photo: bytes | None = None
) -> QueuedMemory:
    """Memory per waiting catalogue job and per waiting upload job, from `used_memory` before and
    after submitting them to a service with NO worker (the jobs stay queued; a worker started
    afterwards drains them). `photo` defaults to the catalogue's chelsea.jpg read over HTTP."""
    if live_workers(redis):
        raise RuntimeError("measure_queued_memory needs a service with no worker: queued jobs would be taken")
    with httpx.Client(base_url=base_url, timeout=30) as client:
        photo = photo if photo is not None else client.get(f"/images/{UPLOAD_PHOTO}").content
        before = used_memory(redis)
        ids = [submit(client, image_id, None) for image_id in itertools.islice(itertools.cycle(image_ids), jobs)]
        after_jobs = used_memory(redis)
        for index in range(uploads):
            submit(client, None, distinct_upload(photo, index))
        after_uploads = used_memory(redis)
    job_key_bytes = sum(int(redis.memory_usage(JOB_KEY.format(job_id)) or 0) for job_id in ids[:20]) / min(20, len(ids))
    return QueuedMemory(
        jobs=jobs,
        bytes_per_queued_job=round((after_jobs - before) / jobs),
        job_key_bytes=round(job_key_bytes),
        uploads=uploads,
        bytes_per_upload=round((after_uploads - after_jobs) / uploads) if uploads else 0.0,
        upload_photo_bytes=len(photo),
    )


# -- Replaying real jobs' commands against a bare Redis: how many jobs/s one Redis carries ----------

RoundTrip = list[list[bytes]]
"""Commands one client sent together (a pipeline, a MULTI ... EXEC, or a single command)."""

PIPELINE_GAP = 100e-6
"""Seconds between two commands of one client beyond which they were separate round trips: a
pipeline's commands reach Redis in one read and run back to back (microseconds apart), while a
Python client needs far more than this to get a reply and send its next command."""


@dataclass
class Sent:
    """One command as MONITOR reported it."""

    moment: float
    client: bytes
    args: list[bytes]


def capture_commands(redis_url: str, run: Callable[[], object]) -> list[Sent]:
    """Every command clients sent while `run` ran, in order, as MONITOR saw it (arguments as the
    bytes sent). Commands a Lua script ran are left out: its EVAL is kept and runs them again."""
    monitor = Redis.from_url(redis_url)
    connection = monitor.connection_pool.get_connection()
    connection.send_command("MONITOR")
    connection.read_response()
    lines: list[bytes] = []

    def read() -> None:
        while True:
            try:
                lines.append(cast(bytes, connection.read_response(disable_decoding=True)))
            except (RedisError, OSError, ValueError):  # the connection closed: capture over
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        run()
        time.sleep(0.2)  # MONITOR lines still on their way
    finally:
        connection.disconnect()
        reader.join(5)
        monitor.close()
    return [sent for sent in map(parse_monitor_line, lines) if sent is not None]


def parse_monitor_line(line: bytes) -> Sent | None:
    """`1700000000.123 [0 127.0.0.1:5000] "SET" "k" "v\\x00"` -> Sent; None for a command a Lua
    script ran, or one of the measurement's own."""
    head, _, rest = line.partition(b"] ")
    moment, _, where = head.partition(b" [")
    client = where.partition(b" ")[2]
    if client == b"lua" or not rest:
        return None
    args = _unquote_all(rest)
    if not args or args[0].upper() in MEASURING:
        return None
    return Sent(float(moment), client, args)


ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("a"): b"\a", ord("b"): b"\b"}


def _unquote_all(text: bytes) -> list[bytes]:
    """Redis' `sdscatrepr` quoting undone: "..." pieces with \\\\, \\", \\n..., \\xHH escapes."""
    args: list[bytes] = []
    index = 0
    while index < len(text):
        if text[index] != ord('"'):
            index += 1
            continue
        piece = bytearray()
        index += 1
        while text[index] != ord('"'):
            if text[index] == ord("\\"):
                escaped = text[index + 1]
                if escaped == ord("x"):
                    piece.append(int(text[index + 2 : index + 4], 16))
                    index += 4
                    continue
                piece += ESCAPES.get(escaped, bytes([escaped]))
                index += 2
                continue
            piece.append(text[index])
            index += 1
        args.append(bytes(piece))
        index += 1
    return args


def round_trips(captured: Sequence[Sent]) -> list[RoundTrip]:
    """The capture cut into round trips: a run of one client's commands with no other client's in
    between and less than `PIPELINE_GAP` apart, or a MULTI ... EXEC, was one pipeline."""
    trips: list[RoundTrip] = []
    latest: dict[bytes, int] = {}
    """client -> index of its latest round trip."""
    in_multi: set[bytes] = set()
    previous: Sent | None = None
    for sent in captured:
        name = sent.args[0].upper()
        same_trip = sent.client in in_multi or (
            previous is not None and sent.client == previous.client and sent.moment - previous.moment < PIPELINE_GAP
        )
        if same_trip:
            trips[latest[sent.client]].append(sent.args)
        else:
            latest[sent.client] = len(trips)
            trips.append([sent.args])
        if name == b"MULTI":
            in_multi.add(sent.client)
        elif name in (b"EXEC", b"DISCARD"):
            in_multi.discard(sent.client)
        previous = sent
    return [[_non_blocking(args) for args in trip] for trip in trips]


def _non_blocking(args: list[bytes]) -> list[bytes]:
    """A blocking command as its non-blocking form (in the captured run the list or stream was
    filled at once, and a replay must never wait); others unchanged."""
    name = args[0].upper()
    if name in BLOCKING:
        return [BLOCKING[name], *args[1:-1]]  # the last argument is the timeout
    upper = [arg.upper() for arg in args]
    if name == b"XREAD" and b"BLOCK" in upper:
        at = upper.index(b"BLOCK")
        return args[:at] + args[at + 2 :]
    return args


def batched(trips: Sequence[RoundTrip], per_trip: int) -> list[RoundTrip]:
    """The same commands in round trips of `per_trip` commands: what batching the job path would
    save Redis (an upper bound: a real job cannot send everything at once)."""
    flat = [args for trip in trips for args in trip]
    return [flat[start : start + per_trip] for start in range(0, len(flat), per_trip)]


@dataclass
class Ceiling:
    """Jobs per second one Redis served to the replay, and how busy that kept Redis."""

    label: str
    processes: int
    connections: int
    round_trips_per_job: float
    commands_per_job: float
    jobs_per_s: float
    redis_cores: float
    """Redis' CPU seconds per second during the replay: 1.0 is its one main thread saturated."""
    errors: int

    @property
    def redis_cpu_ms_per_job(self) -> float:
        return 1000 * self.redis_cores / self.jobs_per_s if self.jobs_per_s else float("nan")

    @property
    def jobs_per_redis_core(self) -> float:
        """Jobs/s with Redis' thread fully busy, if its CPU per job stays as measured: the figure
        to carry to a machine where the clients do not share Redis' cores."""
        return self.jobs_per_s / self.redis_cores if self.redis_cores else float("nan")


def _replay_connection(redis_url: str, trips: list[RoundTrip], deadline: float, counts: list[int]) -> None:
    """One connection sending the window's round trips again and again until `deadline`."""
    redis = Redis.from_url(redis_url)
    while time.perf_counter() < deadline:
        for trip in trips:
            pipe = redis.pipeline(transaction=False)
            for args in trip:
                pipe.execute_command(*args)
            counts[1] += sum(isinstance(reply, Exception) for reply in pipe.execute(raise_on_error=False))
        counts[0] += 1
    redis.close()


def _replay_process(redis_url: str, trips: list[RoundTrip], connections: int, seconds: float, out: Any) -> None:
    """One client process with `connections` threads; puts (windows sent, errors) on `out`.
    Every connection sends the same job ids: the same keys cost Redis what new ones would."""
    deadline = time.perf_counter() + seconds
    counts = [[0, 0] for _ in range(connections)]
    threads = [threading.Thread(target=_replay_connection, args=(redis_url, trips, deadline, mine)) for mine in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((sum(mine[0] for mine in counts), sum(mine[1] for mine in counts)))


def replay_ceiling(
    redis: Redis, redis_url: str, trips: list[RoundTrip], jobs_in_window: int, label: str,
    processes: int, connections: int, seconds: float = 3.0,
) -> Ceiling:  # fmt: skip
    """Replay `trips` (the capture of `jobs_in_window` jobs) from `processes` client processes of
    `connections` connections each against `redis` for `seconds`: jobs/s served and Redis' CPU
    meanwhile. The clients share the machine's cores with Redis, so `jobs_per_redis_core` is the
    figure to carry to a bigger machine."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    children = [
        context.Process(target=_replay_process, args=(redis_url, trips, connections, seconds, out))
        for _ in range(processes)
    ]
    with counted(redis) as taken:
        for child in children:
            child.start()
        results = [out.get(timeout=seconds + 120) for _ in children]
        for child in children:
            child.join()
    wall = taken[1].moment - taken[0].moment
    windows = sum(result[0] for result in results)
    return Ceiling(
        label=label,
        processes=processes,
        connections=connections,
        round_trips_per_job=round(len(trips) / jobs_in_window, 1),
        commands_per_job=round(sum(map(len, trips)) / jobs_in_window, 1),
        jobs_per_s=round(windows * jobs_in_window / wall),
        redis_cores=round((taken[1].cpu_s - taken[0].cpu_s) / wall, 3),
        errors=sum(result[1] for result in results),
    )


# -- A stack of its own --------------------------------------------------------------------------


@contextmanager
def service(root: Path, workers: int) -> Iterator[tuple[Redis, str, Settings, Callable[[int], None]]]:
    """Redis (TCP with a password, as a deployment's), a web server with the result cache off, and
    a way to start `workers` workers later (so that memory can be measured with none)."""
    install_sample_photos(root / "images")
    redis_server = EmbeddedRedis(root / "redis", password="imgclf-redis-cost")
    settings = Settings(
        redis_url=redis_server.url,
        data_dir=root,
        image_dir=root / "images",
        model_dir=Settings().model_dir,
        models=[MODEL],
        runtime="onnxruntime",
        result_cache_ttl=0,
        port=free_port(),
        log_level="WARNING",
    )
    connection = Redis.from_url(redis_server.url)
    children: list[subprocess.Popen[bytes]] = []

    def start_workers(count: int) -> None:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        started = [spawn("worker", settings.model_copy(update={"workers": count}), **quiet) for _ in range(count)]
        children.extend(started)
        wait_for_workers(connection, count, started)

    redis_server.start()
    try:
        web = spawn("web", settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        children.append(web)
        url = f"http://127.0.0.1:{settings.port}"
        wait_for_http(f"{url}/healthz", web)
        yield connection, url, settings, start_workers
    finally:
        stop_all(children)
        connection.close()
        redis_server.stop()


def measure_all(jobs: int, clients: int, workers: int, replay_seconds: float) -> dict[str, Any]:
    """Everything docs/scaling.md quotes, on a stack started for it in a temporary folder."""
    uploads = max(10, jobs // 2)
    with tempfile.TemporaryDirectory(prefix="imgclf-redis-cost-") as tmp, service(Path(tmp), workers) as stack:
        redis, url, settings, start_workers = stack
        image_ids = ImageCatalogue(settings.image_dir).ids()
        photo = (settings.image_dir / UPLOAD_PHOTO).read_bytes()
        queued = measure_queued_memory(redis, url, image_ids, photo=photo)
        start_workers(workers)
        _drain(redis)
        catalogue = measure_redis_cost(redis, url, image_ids, jobs, clients=clients)
        upload = measure_redis_cost(redis, url, image_ids, uploads, clients=clients, photo=photo)
        captured = capture_commands(settings.redis_url or "", lambda: run_jobs(url, image_ids, jobs, clients, None))
    ceilings = _ceilings(round_trips(captured), jobs, replay_seconds)
    return {
        "catalogue": asdict(catalogue) | {"total_commands": round(catalogue.total_commands, 1)},
        "upload": asdict(upload) | {"total_commands": round(upload.total_commands, 1)},
        "queued_memory": asdict(queued),
        "ceiling": [
            asdict(ceiling)
            | {
                "redis_cpu_ms_per_job": round(ceiling.redis_cpu_ms_per_job, 3),
                "jobs_per_redis_core": round(ceiling.jobs_per_redis_core),
            }
            for ceiling in ceilings
        ],
        "redis": _redis_version(),
        "machine": {"cores": os.cpu_count(), "cpu": _cpu_model()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _drain(redis: Redis, timeout: float = 120) -> None:
    """Wait until the workers took every queued job (those `measure_queued_memory` left)."""
    deadline = time.monotonic() + timeout
    queue = make_queue(redis)
    while queue.count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # the last jobs run


REPLAY_CONNECTIONS = 8
"""Connections per client process in the replay: Redis sees as many clients as a busy deployment's
web replicas and workers keep open."""

BATCH = 10
"""Commands per round trip in the replay that shows what batching the job path would save."""


def _ceilings(trips: list[RoundTrip], jobs_in_window: int, seconds: float) -> list[Ceiling]:
    """The replay against a bare redis-server with the service's settings (append-only file, TCP):
    the round trips as the service sent them, then the same commands `BATCH` to a round trip."""
    with tempfile.TemporaryDirectory(prefix="imgclf-redis-replay-") as tmp:
        bare = EmbeddedRedis(Path(tmp), password="imgclf-redis-replay")
        bare.start()
        redis = Redis.from_url(bare.url)
        processes = os.cpu_count() or 1
        try:
            return [
                replay_ceiling(redis, bare.url, trips, jobs_in_window, "as sent", processes, REPLAY_CONNECTIONS,
                               seconds),
                replay_ceiling(redis, bare.url, batched(trips, BATCH), jobs_in_window,
                               f"{BATCH} commands per round trip", processes, REPLAY_CONNECTIONS, seconds),
            ]  # fmt: skip
        finally:
            redis.close()
            bare.stop()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _redis_version() -> str:
    return subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True).stdout.strip()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m imgclf.bench.redis_cost`: measure on a stack of its own and print JSON."""
    parser = argparse.ArgumentParser(prog="python -m imgclf.bench.redis_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per measurement (default 100)")
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent users (default 8, imgclf bench's saturation)"
    )
    parser.add_argument("--workers", type=int, default=2, help="workers (default 2)")
    parser.add_argument("--replay-seconds", type=float, default=3.0, help="length of each replay (default 3)")
    options = parser.parse_args(argv)
    print(json.dumps(measure_all(options.jobs, options.clients, options.workers, options.replay_seconds), indent=2))


if __name__ == "__main__":
    main()
