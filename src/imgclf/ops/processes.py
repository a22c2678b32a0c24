"""Starting the service's own processes (`imgclf web`, `imgclf worker`) as children and waiting
until they serve: used by `serve`, the benchmark and the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from pydantic import SecretStr
from redis import Redis

from imgclf.config import Settings
from imgclf.jobs.liveness import ready_workers

Role = Literal["web", "worker"]


def settings_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment that makes a child process build the same settings."""
    env = {key: value for key, value in (base or os.environ).items() if not key.startswith("IMGCLF_")}
    env.pop("REDIS_URL", None)
    for name, value in settings.model_dump(exclude_none=True).items():
        if name == "data_dir":
            value = str(value.resolve())
        elif isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, SecretStr):  # its str() is a mask
            value = value.get_secret_value()
        env[f"IMGCLF_{name.upper()}"] = str(value)
    env["IMGCLF_TORCH_THREADS"] = str(settings.threads_per_worker())
    return env


def spawn(role: Role, settings: Settings, **popen: object) -> subprocess.Popen[bytes]:
    """Start `imgclf <role>` with these settings."""
    command = [sys.executable, "-m", "imgclf", role]
    return subprocess.Popen(command, env=settings_env(settings), **popen)  # type: ignore[call-overload]


def wait_for_workers(
    connection: Redis,
    count: int,
    processes: Sequence[subprocess.Popen[bytes]],
    timeout: float = 180,
    counter: Callable[[Redis], int] = lambda connection: len(ready_workers(connection)),
) -> None:
    """Return once `count` workers are ready (as `counter` counts them: by default the service's
    own, with models loaded and a fresh heartbeat); raise if one of `processes` exits first."""
    deadline = time.monotonic() + timeout
    while counter(connection) < count:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a worker exited at start-up with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} worker(s) did not register within {timeout:.0f} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    """True if `url` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Return once `url` answers 200; raise if `process` exits first."""
    deadline = time.monotonic() + timeout
    while not answers(url):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited at start-up with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> bool:
    """SIGTERM (a warm shutdown for workers, an AOF flush for Redis), then SIGKILL if it does not
    end in time; True if it had to be killed."""
    return bool(stop_all([process], timeout))


def stop_all(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 20) -> list[subprocess.Popen[bytes]]:
    """`stop` for several processes at once: all get SIGTERM together and share one deadline, so
    stopping N workers takes as long as the slowest, not the sum. Returns those that were killed."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + timeout
    killed = []
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            killed.append(process)
    return killed
