"""`imgclf serve`: Redis (embedded unless REDIS_URL is set), the workers and the web server as
child processes of one command, kept alive until Ctrl+C (or SIGTERM), then stopped together.

A child that dies is started again after a back-off (1 s, doubling up to 30 s; a child that ran
for a minute starts again at 1 s), and the reason is logged. A dead embedded Redis comes back on
the same socket and data (its append-only file), so workers and the web server reconnect by
themselves. Only a child that keeps dying within seconds of its start (`GIVE_UP_AFTER` times in a
row: a port in use, a broken setting) stops the service, since restarting it cannot help.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from redis import Redis
from redis.exceptions import RedisError

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.samples import install_sample_photos
from imgclf.jobs.liveness import ready_workers
from imgclf.jobs.metrics import record_restart
from imgclf.ops.embedded_redis import EmbeddedRedis
from imgclf.ops.processes import answers, settings_env, stop_all

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
"""Seconds before a dead child is started again: doubling from the first to the max."""

STABLE_AFTER = 60.0
"""A child that ran this long before dying is restarted after BACKOFF_FIRST again."""

QUICK_DEATH = 30.0
"""A child that dies within this many seconds of its start failed to start."""

GIVE_UP_AFTER = 5
"""Failed starts in a row after which `serve` stops instead of trying again."""

STOP_TIMEOUT = 20.0
"""Seconds children get to stop (a worker finishes its job) before they are killed."""


def _die_with_parent() -> None:
    # Linux only: if `serve` itself is killed with SIGKILL, the kernel sends the children
    # SIGTERM, so not even that leaves a process behind.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def child_options() -> dict[str, object]:
    # A session of their own: Ctrl+C reaches only `serve`, which then stops the children
    # itself (web and workers first, Redis last) instead of all at once.
    options: dict[str, object] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with_parent
    return options


class Stop(Exception):
    """SIGTERM or SIGINT arrived: shut everything down."""


class GiveUp(Exception):
    """A child keeps failing at start-up."""


def exit_reason(code: int) -> str:
    """`exit code 3` or `killed by SIGKILL`, for the log."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


@dataclass
class Child:
    """One supervised process: how to start it, and its restart bookkeeping."""

    name: str
    kind: str
    """`redis`, `worker` or `web`: the label of the restarts metric."""
    launch: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    failed_starts: int = 0
    backoff: float = BACKOFF_FIRST

    def start(self) -> None:
        self.process = self.launch()
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> bool:
        """Notice a death (schedule the restart) or start a due restart; True if it restarted."""
        if self.restart_at is not None:
            if now < self.restart_at:
                return False
            log.info("starting %s again", self.name)
            try:
                self.start()
            except (OSError, RuntimeError) as exc:  # the embedded Redis did not come up
                self.started_at = now
                self._schedule(now, str(exc))
                return False
            return True
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return False
        self._schedule(now, exit_reason(code))
        return False

    def _schedule(self, now: float, reason: str) -> None:
        lived = now - self.started_at
        if lived < QUICK_DEATH:
            self.failed_starts += 1
            if self.failed_starts >= GIVE_UP_AFTER:
                raise GiveUp(f"{self.name} died {self.failed_starts} times in a row at start-up ({reason})")
        else:
            self.failed_starts = 0
        if lived >= STABLE_AFTER:
            self.backoff = BACKOFF_FIRST
        log.error("%s died (%s) after %.0f s; starting it again in %.0f s", self.name, reason, lived, self.backoff)
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)


class Children:
    """The processes `serve` supervises; Redis, if embedded, is the first."""

    def __init__(self) -> None:
        self.all: list[Child] = []

    def add(self, child: Child) -> None:
        child.start()
        self.all.append(child)

    def check(self, connection: Redis | None) -> None:
        now = time.monotonic()
        for child in self.all:
            if child.check(now) and connection is not None:
                with contextlib.suppress(RedisError):
                    record_restart(connection, child.kind)

    def stop_all(self) -> None:
        """Web and workers in parallel (a job in progress finishes), then Redis."""
        running = [child for child in self.all if child.process is not None and child.process.poll() is None]
        first = [child.process for child in running if child.kind != "redis" and child.process]
        last = [child.process for child in running if child.kind == "redis" and child.process]
        for group in (first, last):
            if group:
                killed = stop_all(group, STOP_TIMEOUT)
                for process in killed:
                    log.warning("pid %d did not stop in %.0f s; killed it", process.pid, STOP_TIMEOUT)


def serve(settings: Settings) -> int:
    """Run the whole service until interrupted; returns the exit code."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    children = Children()
    try:
        return _run(settings, children)
    except Stop:
        print("\nStopping...", flush=True)
        return 0
    except GiveUp as exc:
        log.error("%s; stopping the service", exc)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children.stop_all()
        print("Stopped.", flush=True)


def _run(settings: Settings, children: Children) -> int:
    if not ImageCatalogue(settings.image_dir).ids():
        added = install_sample_photos(settings.image_dir)
        if added:
            log.info("catalogue was empty: added %d sample photos", len(added))
        else:
            log.warning("the catalogue is empty, and the sample photos need imgclf[export] (scikit-image, matplotlib)")

    redis_url = settings.redis_url
    if not redis_url:
        redis = EmbeddedRedis(
            settings.data_dir / "redis", maxmemory=settings.redis_maxmemory, appendfsync=settings.redis_appendfsync
        )

        def start_redis() -> subprocess.Popen[bytes]:
            redis.start(popen_options=child_options())
            assert redis.process is not None
            return redis.process

        children.add(Child("redis", "redis", start_redis))
        redis_url = redis.url
        log.info("embedded Redis on %s, data in %s", redis_url, redis.data_dir)
    settings = settings.model_copy(update={"redis_url": redis_url})
    env = settings_env(settings)
    command = [sys.executable, "-m", "imgclf"]
    for index in range(settings.workers):
        children.add(Child(f"worker {index + 1}", "worker", _launcher([*command, "worker"], env)))
    children.add(Child("web", "web", _launcher([*command, "web"], env)))

    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{shown_host}:{settings.port}"
    announced_web = announced_workers = False
    connection = Redis.from_url(settings.required_redis_url(), socket_connect_timeout=1, socket_timeout=2)
    while True:
        children.check(connection)
        if not announced_web and answers(f"{url}/healthz"):
            print(f"Image classifier running at {url}  (Ctrl+C to stop)", flush=True)
            announced_web = True
        if announced_web and not announced_workers:
            with contextlib.suppress(RedisError):
                ready = len(ready_workers(connection))
                if ready >= settings.workers:
                    print(f"{ready} worker(s) ready; models loaded.", flush=True)
                    announced_workers = True
        time.sleep(0.2)


def _launcher(argv: list[str], env: dict[str, str]) -> Callable[[], subprocess.Popen[bytes]]:
    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=env, **child_options())  # type: ignore[call-overload]

    return launch
