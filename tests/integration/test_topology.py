"""The compose topology as local processes: a password-protected Redis, two `imgclf web` replicas
behind a real nginx using deploy/nginx/default.conf, and two `imgclf worker`s, each started with
the command and environment its compose service declares."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from redis import Redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imgclf.jobs.queue import CLASSIFY_TASK, make_queue
from imgclf.ops.embedded_redis import EmbeddedRedis, free_port
from imgclf.ops.processes import stop
from tests.conftest import samples, submit

ROOT = Path(__file__).parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PASSWORD = "topology-secret"
JOBS = 12


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, enough for compose.yaml."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        if name in variables:
            return variables[name]
        assert operator != ":?", f"{name} is required: {default}"
        return default

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", substitute, value)


def service_process(name: str, overrides: dict[str, str], variables: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a compose service's command with its environment, as the image's entrypoint would."""
    service = COMPOSE["services"][name]
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMGCLF_")}
    env.update({key: interpolate(str(value), variables) for key, value in service["environment"].items()})
    env.update(overrides)
    command = [sys.executable, "-m", "imgclf", *service["command"]]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


class Topology:
    def __init__(self, tmp: Path, image_dir: Path, model_dir: Path) -> None:
        self.tmp = tmp
        self.redis = EmbeddedRedis(tmp / "redis", password=PASSWORD)
        self.redis.start()
        self.variables = {"REDIS_PASSWORD": PASSWORD, "WORKER_THREADS": "1"}
        self.common = {
            # compose's redis://:<password>@redis:6379/0, pointed at this machine's Redis
            "IMGCLF_REDIS_URL": interpolate(
                COMPOSE["services"]["web"]["environment"]["IMGCLF_REDIS_URL"], self.variables
            ).replace("@redis:6379", f"@127.0.0.1:{self.redis.port}"),
            "IMGCLF_IMAGE_DIR": str(image_dir),
            "IMGCLF_MODEL_DIR": str(model_dir),
            "IMGCLF_MODELS": "efficientnet_lite0",
            "IMGCLF_HOST": "127.0.0.1",
            # Every job must reach a worker here: with the result cache, repeated photos would not.
            "IMGCLF_RESULT_CACHE_TTL": "0",
        }
        self.web_ports = [free_port(), free_port()]
        self.webs = [
            service_process("web", {**self.common, "IMGCLF_PORT": str(port)}, self.variables) for port in self.web_ports
        ]
        self.workers = [self.start_worker(), self.start_worker()]
        self.lb_port = free_port()
        self.nginx = self.start_nginx()
        self.url = f"http://127.0.0.1:{self.lb_port}"
        self.connection = Redis.from_url(self.common["IMGCLF_REDIS_URL"])
        wait_until(lambda: httpx.get(f"{self.url}/readyz").status_code == 200, "the stack to be ready")
        wait_until(lambda: httpx.get(f"{self.url}/readyz").json()["workers"] == 2, "both workers")

    def start_worker(self) -> subprocess.Popen[bytes]:
        return service_process("worker", self.common, self.variables)

    def start_nginx(self) -> subprocess.Popen[bytes]:
        site = (ROOT / "deploy" / "nginx" / "default.conf").read_text()
        servers = "\n    ".join(f"server 127.0.0.1:{port};" for port in self.web_ports)
        site = site.replace("server web:8000;", servers).replace("listen 80;", f"listen 127.0.0.1:{self.lb_port};")
        assert servers in site and str(self.lb_port) in site
        (self.tmp / "site.conf").write_text(site)
        user = "user root;" if os.geteuid() == 0 else ""
        temp_paths = " ".join(
            f"{kind}_temp_path {self.tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.tmp / "nginx.conf").write_text(
            f"{user}\nworker_processes 1;\npid {self.tmp}/nginx.pid;\nerror_log {self.tmp}/error.log;\n"
            f"events {{ worker_connections 256; }}\n"
            f"http {{ access_log {self.tmp}/access.log; {temp_paths} include {self.tmp}/site.conf; }}\n"
        )
        return subprocess.Popen([NGINX, "-p", str(self.tmp), "-c", str(self.tmp / "nginx.conf"), "-g", "daemon off;"])

    def close(self) -> None:
        for process in [self.nginx, *self.webs, *self.workers]:
            stop(process)
        self.connection.close()
        self.redis.stop()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, image_dir: Path, model_dir: Path) -> Iterator[Topology]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: `make test` installs Debian's nginx package")
    stack = Topology(tmp_path_factory.mktemp("topology"), image_dir, model_dir)
    yield stack
    stack.close()


def requests_served(port: int, handler: str) -> float:
    metrics = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    return sum(
        value
        for (name, labels), value in metrics.items()
        if name == "http_request_duration_seconds_count" and ("handler", handler) in labels
    )


def test_requests_are_spread_over_both_web_replicas(topology: Topology) -> None:
    for _ in range(20):
        assert httpx.get(f"{topology.url}/info").status_code == 200
    served = [requests_served(port, "/info") for port in topology.web_ports]
    assert sum(served) >= 20
    assert all(count >= 5 for count in served), served


def test_jobs_are_processed_by_both_workers(topology: Topology) -> None:
    photos = ("chelsea.jpg", "coffee.jpg")
    with httpx.Client(base_url=topology.url) as client:
        job_ids = [submit(client, "efficientnet_lite0", photos[index % 2]) for index in range(JOBS)]

    def all_finished() -> bool:
        statuses = [httpx.get(f"{topology.url}/classifications/{job_id}").json()["task_status"] for job_id in job_ids]
        return all(status == "finished" for status in statuses)

    wait_until(all_finished, "every job to finish")
    workers = {
        Job.fetch(job_id, connection=topology.connection, serializer=JSONSerializer).worker_name for job_id in job_ids
    }
    assert len(workers) == 2, workers


def test_metrics_through_the_balancer_count_what_was_done(topology: Topology) -> None:
    metrics = samples(httpx.get(f"{topology.url}/metrics").text)
    assert metrics[("imgclf_jobs_total", (("status", "finished"),))] == JOBS
    assert metrics[("imgclf_job_inference_seconds_count", ())] == JOBS
    assert metrics[("imgclf_workers_alive", ())] == 2
    assert metrics[("imgclf_queue_depth", ())] == 0


def test_an_event_stream_passes_the_balancer_unbuffered(topology: Topology) -> None:
    # A job that stays queued (created but never pushed to the queue): its stream stays open, so
    # its first event arrives only if nginx passes events on as they come instead of buffering
    # the response until it ends.
    job = make_queue(topology.connection).create_job(
        CLASSIFY_TASK, args=("efficientnet_lite0", "chelsea.jpg"), status=JobStatus.QUEUED
    )
    job.save()
    started = time.monotonic()
    with httpx.stream("GET", f"{topology.url}/api/v1/classifications/{job.id}/events", timeout=10) as events:
        assert events.status_code == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        assert next(lines) == "event: status"
        first = json.loads(next(lines).removeprefix("data: "))
    assert first["status"] == "queued" and first["id"] == job.id
    assert time.monotonic() - started < 5  # not held back until the stream's end (600 s)
    finished = httpx.post(
        f"{topology.url}/api/v1/classifications", json={"model": "efficientnet_lite0", "image": "chelsea.jpg"}
    )
    assert finished.status_code in (200, 202), finished.text
    with httpx.stream("GET", f"{topology.url}{finished.json()['links']['events']}", timeout=60) as events:
        last = [line for line in events.iter_lines() if line.startswith("data: ")][-1]
    assert json.loads(last.removeprefix("data: "))["status"] == "succeeded"


def test_readyz_follows_the_workers(topology: Topology) -> None:
    for worker in topology.workers:
        stop(worker)
    response = httpx.get(f"{topology.url}/readyz")
    assert response.status_code == 503
    assert "No worker is ready" in response.json()["reason"]

    topology.workers = [topology.start_worker()]
    wait_until(lambda: httpx.get(f"{topology.url}/readyz").status_code == 200, "a worker to come back")
    assert httpx.get(f"{topology.url}/readyz").json()["workers"] == 1
