"""`imgclf serve`: Redis (embedded unless REDIS_URL is set), the workers and the web server as
child processes of one command, stopped together on Ctrl+C (or SIGTERM), none left behind."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from types import FrameType

from redis import Redis
from rq import SimpleWorker

from imgclf.config import Settings
from imgclf.embedded_redis import EmbeddedRedis
from imgclf.images import ImageCatalogue
from imgclf.prepare import install_sample_photos
from imgclf.processes import answers, settings_env, stop

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux only: if `serve` itself is killed with SIGKILL, the kernel sends the children
    # SIGTERM, so not even that leaves a process behind.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_options() -> dict[str, object]:
    # A session of their own: Ctrl+C reaches only `serve`, which then stops the children
    # in order (web first, Redis last) instead of all at once.
    options: dict[str, object] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with_parent
    return options


class Stop(Exception):
    """SIGTERM or SIGINT arrived: shut everything down."""


class Children:
    """The processes `serve` started, stopped in the reverse order of their start."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env=env, **_child_options())  # type: ignore[call-overload]
        self.processes.append((name, process))
        return process

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.processes.append((name, process))

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.processes:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop_all(self, timeout: float = 20.0) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                log.info("stopping %s (pid %d)", name, process.pid)
                if stop(process, timeout):
                    log.warning("%s did not stop in %.0f s; killed it", name, timeout)


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
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children.stop_all()
        print("Stopped.", flush=True)


def _run(settings: Settings, children: Children) -> int:
    if not ImageCatalogue(settings.images_path).ids():
        added = install_sample_photos(settings.images_path)
        log.info("catalogue was empty: added %d sample photos", len(added))

    redis_url = settings.redis_url
    if not redis_url:
        redis = EmbeddedRedis(settings.data_dir / "redis")
        redis.start(popen_options=_child_options())
        assert redis.process is not None
        children.adopt("redis", redis.process)
        redis_url = redis.url
        log.info("embedded Redis on %s, data in %s", redis_url, redis.data_dir)
    env = settings_env(settings.model_copy(update={"redis_url": redis_url}))
    command = [sys.executable, "-m", "imgclf"]
    for index in range(settings.workers):
        children.start(f"worker {index + 1}", [*command, "worker"], env)
    children.start("web", [*command, "web"], env)

    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{shown_host}:{settings.port}"
    announced_web = announced_workers = False
    connection = Redis.from_url(redis_url)
    while True:
        exited = children.first_exited()
        if exited:
            name, code = exited
            log.error("%s exited with code %d; stopping the service", name, code)
            return 1
        if not announced_web and answers(f"{url}/info"):
            print(f"Image classifier running at {url}  (Ctrl+C to stop)", flush=True)
            announced_web = True
        if announced_web and not announced_workers:
            alive = len(SimpleWorker.all(connection=connection))
            if alive >= settings.workers:
                print(f"{alive} worker(s) ready; models loaded.", flush=True)
                announced_workers = True
        time.sleep(0.2)
