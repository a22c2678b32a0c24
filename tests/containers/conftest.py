"""The compose stack for real: the images built, `docker compose up` with the load balancer, two
web replicas, two workers and Redis, reached through 127.0.0.1 only (the balancer's published
port) and, for what a user cannot see, through `docker` itself (inspect, exec, the host PID of a
container to crash it).

Needs a Docker engine with the Compose v2 plugin. Without one, every test here is skipped with
the reason (`pytest -ra` lists it in the summary); CI's `.ci/run` starts an engine first with
../shared/tools/docker-engine.sh. Images come from the pinned digests unless PYTHON_IMAGE,
REDIS_IMAGE and HAPROXY_IMAGE name local ones (as .ci/run does where no registry is reachable).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imgclf.jobs.liveness import BEAT_PREFIX, NAMES_KEY
from imgclf.ops.embedded_redis import free_port
from tests.conftest import samples

ROOT = Path(__file__).parents[2]
PROJECT = "imgclf-ci"
BUILD_TIMEOUT = 1800  # a first build downloads torch for the export image
UP_TIMEOUT = 900  # the first `up` exports the models before web and workers start
SECRET = "/run/imgclf-secrets/redis-password"
HOST_TIMEOUT = 10.0


def engine_problem() -> str | None:
    """Why the container suite cannot run here, or None."""
    docker = shutil.which("docker")
    if docker is None:
        return "the docker command is not installed"
    info = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        lines = info.stderr.strip().splitlines() or ["no answer"]
        return f"no Docker engine answers ({lines[-1]})"
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        return "the Compose v2 plugin (`docker compose`) is missing"
    return None


def wait_until(condition: Callable[[], Any], what: str, timeout: float) -> Any:
    """The first true value of `condition`, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
            if value:
                return value
        except (httpx.TransportError, subprocess.CalledProcessError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


class Stack:
    """One compose project of this repository's compose.yaml, and what the tests do to it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": PROJECT,
            "HTTP_PORT": str(port),
            "WORKERS": "2",
            "WEB_REPLICAS": "2",
        }
        self.http = httpx.Client(base_url=self.url, timeout=HOST_TIMEOUT)

    # --- docker -------------------------------------------------------------------------------
    def compose(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            ["docker", "compose", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def docker(self, *args: str, timeout: float = 60) -> str:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=True
        ).stdout.strip()

    def containers(self, service: str, *, every: bool = False) -> list[str]:
        """Ids of a service's containers (running ones, or `every` one, exited included)."""
        return self.compose("ps", "-q", *(["-a"] if every else []), service).split()

    def inspect(self, container: str) -> dict[str, Any]:
        details: dict[str, Any] = json.loads(self.docker("inspect", container))[0]
        return details

    def crash(self, container: str) -> None:
        """kill -9 of the container's main process from the host: a crash, which the restart
        policy answers (`docker kill` counts as a manual stop and restarts nothing). Returns once
        Docker has restarted the container."""
        before = self.inspect(container)
        os.kill(before["State"]["Pid"], signal.SIGKILL)

        def restarted() -> bool:
            return bool(self.inspect(container)["RestartCount"] > before["RestartCount"])

        wait_until(restarted, f"container {container[:12]} to restart", 60)

    def redis(self, *args: str) -> str:
        """A redis-cli command inside the Redis container, authenticated from the secret file."""
        script = f'REDISCLI_AUTH="$(head -n 1 {SECRET})" exec redis-cli "$@"'
        return self.docker("exec", self.containers("redis")[0], "sh", "-c", script, "sh", *args)

    def live_workers(self) -> list[str]:
        names = self.redis("SMEMBERS", NAMES_KEY).split()
        return [name for name in names if self.redis("EXISTS", BEAT_PREFIX + name) == "1"]

    def inside(self, container: str, path: str, port: int = 8000) -> str:
        """GET `path` from inside a container (bash's /dev/tcp): the raw HTTP answer."""
        script = (
            f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 "
            "&& cat <&3"
        )
        return self.docker("exec", container, "bash", "-c", script)

    def metrics(self, container: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """A web replica's /metrics (the first one's by default), read inside the network."""
        answer = self.inside(container or self.containers("web")[0], "/metrics")
        return samples(answer.split("\n\n", 1)[1])  # after the headers (text mode made \r\n \n)

    def metric(self, name: str) -> float:
        return self.metrics()[(name, ())]

    def requests_served(self, container: str) -> float:
        """The API requests one web replica has answered (not the health checks' and ours)."""
        return sum(
            value
            for (name, labels), value in self.metrics(container).items()
            if name == "http_request_duration_seconds_count" and dict(labels).get("handler", "").startswith("/api/")
        )

    def health(self, container: str) -> str:
        return str(self.inspect(container)["State"].get("Health", {}).get("Status", "none"))

    def wait_healthy(self, container: str, timeout: float = 60) -> None:
        wait_until(lambda: self.health(container) == "healthy", f"container {container[:12]} healthy", timeout)

    # --- the service, as a user reaches it ----------------------------------------------------
    def submit(self, image: str = "coffee.jpg", model: str = "efficientnet_lite0", **adjustments: Any) -> str:
        body: dict[str, Any] = {"model": model, "image": image}
        if adjustments:
            body["adjustments"] = adjustments
        answer = self.http.post("/api/v1/classifications", json=body)
        assert answer.status_code in (200, 202), answer.text
        return str(answer.json()["id"])

    def upload(self, picture: bytes, model: str = "efficientnet_lite0", **adjustments: Any) -> str:
        """Classify an uploaded picture; the job id."""
        answer = self.http.post(
            "/api/v1/classifications",
            data={"model": model, "adjustments": json.dumps(adjustments)},
            files={"file": ("picture.png", picture, "image/png")},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/api/v1/classifications/{job_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def wait_for_start(self, job_id: str, timeout: float = 60) -> None:
        wait_until(lambda: self.job(job_id)["status"] != "queued", f"job {job_id} to start", timeout)

    def wait_for_end(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        """The job once it has ended; Redis or a replica may be away for a while meanwhile."""

        def ended() -> dict[str, Any] | None:
            answer = self.http.get(f"/api/v1/classifications/{job_id}", params={"wait": 5})
            if answer.status_code != 200:  # 503 while Redis restarts
                return None
            body: dict[str, Any] = answer.json()
            return body if body["status"] in ("succeeded", "failed", "canceled") else None

        result: dict[str, Any] = wait_until(ended, f"job {job_id} to end", timeout)
        return result

    def ready(self, workers: int) -> None:
        """Wait for `workers` live workers and every web replica healthy."""
        wait_until(lambda: len(self.live_workers()) == workers, f"{workers} live workers", 180)
        for web in self.containers("web"):
            self.wait_healthy(web, 120)

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    problem = engine_problem()
    if problem is not None:
        pytest.skip(
            f"container suite skipped: {problem}. It needs a Docker engine with Compose v2; "
            "CI's .ci/run starts one with ../shared/tools/docker-engine.sh"
        )
    running = Stack(free_port())
    running.compose("down", "-v", "--remove-orphans")  # what an interrupted run left
    try:
        running.compose("build", timeout=BUILD_TIMEOUT)
        running.compose("up", "-d", timeout=UP_TIMEOUT)
        running.ready(workers=2)
        yield running
    finally:
        log = ROOT / "build" / "containers.log"
        log.parent.mkdir(exist_ok=True)
        log.write_text(running.compose("logs", "--no-color", "--timestamps", timeout=120))
        running.close()
        running.compose("down", "-v", "--remove-orphans", timeout=300)
