"""Starting the service's own processes (`imgclf web`, `imgclf worker`) as children and waiting
until they serve: used by `serve`, the benchmark and the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Literal

from redis import Redis
from rq import SimpleWorker

from imgclf.config import Settings

Role = Literal["web", "worker"]


def settings_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment that makes a child process build the same settings."""
    env = {key: value for key, value in (base or os.environ).items() if not key.startswith("IMGCLF_")}
    env.pop("REDIS_URL", None)
    for name, value in settings.model_dump(exclude_none=True).items():
        if name in ("image_dir", "model_dir", "data_dir"):
            value = str(value.resolve())
        elif isinstance(value, list):
            value = ",".join(value)
        env[f"IMGCLF_{name.upper()}"] = str(value)
    env["IMGCLF_TORCH_THREADS"] = str(settings.threads_per_worker())
    return env


def spawn(
    role: Role, settings: Settings, extra_env: Mapping[str, str] | None = None, **popen: object
) -> subprocess.Popen[bytes]:
    """Start `imgclf <role>` with these settings."""
    env = {**settings_env(settings), **(extra_env or {})}
    command = [sys.executable, "-m", "imgclf", role]
    return subprocess.Popen(command, env=env, **popen)  # type: ignore[call-overload]


def wait_for_workers(
    connection: Redis, count: int, processes: Sequence[subprocess.Popen[bytes]], timeout: float = 180
) -> None:
    """Return once `count` workers are registered; raise if one of `processes` exits first."""
    deadline = time.monotonic() + timeout
    while len(SimpleWorker.all(connection=connection)) < count:
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
    if process.poll() is not None:
        return False
    process.terminate()
    try:
        process.wait(timeout)
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True
