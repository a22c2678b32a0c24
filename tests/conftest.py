"""Shared fixtures and helpers: a real Redis server on a free port (a fresh database for each test
that asks), a catalogue of real photos, a model cache holding a weights file the tests write
themselves, real worker / web processes, and the form's submit-and-wait as a browser does it."""

from __future__ import annotations

import functools
import http.server
import itertools
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from imgclf.config import Settings
from imgclf.images.samples import install_sample_photos
from imgclf.jobs.queue import make_queue
from imgclf.models.registry import MODELS, torch_hub_checkpoints
from imgclf.ops.embedded_redis import EmbeddedRedis, free_port
from imgclf.ops.processes import spawn, stop, wait_for_http, wait_for_workers
from imgclf.web.app import create_app

WORKER_MODELS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18"]
"""What the test worker loads: the offline models plus resnet18 with test-written weights."""

BROKEN_IMAGE = "broken.jpg"
"""A catalogue entry that is not an image, for the failed-job path."""

CATS = {"tiger cat", "Egyptian cat", "tabby"}
"""What an ImageNet model may rightly call the cat in chelsea.jpg."""

WebClient = httpx.Client | TestClient
"""What the submit-and-wait helpers talk to: a real web server (httpx), or the app in this process
(Starlette's TestClient, which is built on httpx's successor, not on httpx.Client)."""

SESSION_DATABASES = 1024
"""Databases of the session's Redis: 0 is the session worker's, each other one goes to one test."""


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server of the test session's own, never one already running on 6379."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), databases=SESSION_DATABASES)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own, for a test that stops or kills it (the session's must
    stay up); stopped at the end whatever state the test left it in."""
    server = EmbeddedRedis(tmp_path / "own-redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fresh_redis_url(redis_server: EmbeddedRedis) -> Callable[[], str]:
    """Hands out the URL of a database of the session's Redis that nothing has used yet; never db 0."""
    numbers = itertools.count(1)

    def fresh() -> str:
        number = next(numbers)
        if number >= redis_server.databases:
            pytest.fail(
                f"all {redis_server.databases} databases of the session's Redis are used: raise SESSION_DATABASES"
            )
        return redis_server.url_for_db(number)

    return fresh


@pytest.fixture
def redis_url(fresh_redis_url: Callable[[], str]) -> str:
    """An empty database of this test's own, which no worker reads."""
    return fresh_redis_url()


def unreachable_redis_url() -> str:
    """A Redis URL where nothing listens."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def queue_length(redis_url: str) -> Iterator[Callable[[], int]]:
    """How many jobs wait in that database's classification queue."""
    connection = Redis.from_url(redis_url)
    yield lambda: make_queue(connection).count
    connection.close()


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    install_sample_photos(folder)
    (folder / BROKEN_IMAGE).write_bytes(b"this is not a JPEG")
    return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache with resnet18 weights written here (random, seeded), never downloaded."""
    import torch
    import torchvision

    folder = tmp_path_factory.mktemp("models")
    checkpoints = torch_hub_checkpoints(folder)
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), checkpoints / MODELS["resnet18"].weights_file)
    return folder


def tool(name: str) -> str:
    """A command installed in this virtualenv (make runs pytest without activating it), or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: `make test` installs it"
    return found


def make_settings(redis_url: str, image_dir: Path, model_dir: Path, **extra: Any) -> Settings:
    return Settings(
        redis_url=redis_url,
        data_dir=image_dir.parent,
        image_dir=image_dir,
        model_dir=model_dir,
        **extra,
    )


@pytest.fixture
def client(redis_url: str, image_dir: Path, model_dir: Path) -> Iterator[TestClient]:
    """The web app in this process, on a database of this test's own that no worker reads:
    posted jobs stay queued."""
    with TestClient(create_app(make_settings(redis_url, image_dir, model_dir))) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def worker_settings(redis_server: EmbeddedRedis, image_dir: Path, model_dir: Path) -> Settings:
    """Settings of the session's worker and of the web app that talks to it (Redis db 0)."""
    return make_settings(redis_server.url, image_dir, model_dir, models=WORKER_MODELS, port=free_port())


@pytest.fixture(scope="session")
def worker(worker_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """One real `imgclf worker` process, started once for the session."""
    process = spawn("worker", worker_settings)
    connection = Redis.from_url(worker_settings.redis_url or "")
    try:
        wait_for_workers(connection, 1, [process])
    except (RuntimeError, TimeoutError) as exc:
        stop(process)
        pytest.fail(str(exc))
    finally:
        connection.close()
    yield process
    stop(process)


@pytest.fixture(scope="module")
def worker_client(worker_settings: Settings, worker: subprocess.Popen[bytes]) -> Iterator[TestClient]:
    """The web app in this process, in front of the session's worker."""
    with TestClient(create_app(worker_settings)) as test_client:
        yield test_client


@contextmanager
def running_web(settings: Settings) -> Iterator[str]:
    """A real `imgclf web` process with these settings, once it answers; its base URL."""
    process = spawn("web", settings)
    url = f"http://127.0.0.1:{settings.port}"
    try:
        try:
            wait_for_http(f"{url}/healthz", process)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(str(exc))
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="session")
def live_server(worker_settings: Settings, worker: subprocess.Popen[bytes]) -> Iterator[str]:
    """A real `imgclf web` process on a free port, in front of the session's worker."""
    with running_web(worker_settings) as url:
        yield url


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


JOB_ID_MARKER = 'id="job-id">'


def job_id_from_page(html: str) -> str:
    """The ticket shown on a job's result page (/results/{job_id}, where the form's POST redirects)."""
    start = html.index(JOB_ID_MARKER) + len(JOB_ID_MARKER)
    return html[start : html.index("<", start)]


def job_id_from_location(location: str) -> str:
    """The job id at the end of a result page's address (a 303's Location, or a browser's URL)."""
    assert "/results/" in location, location
    return location.rsplit("/", 1)[1]


def submit(client: WebClient, model_id: str, image_id: str) -> str:
    """Post the form as a browser does; the job id of the result page it is redirected to (303)."""
    answer = client.post("/classifications", data={"model_id": model_id, "image_id": image_id}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return job_id_from_location(answer.headers["location"])


def wait_for_end(
    client: WebClient, job_id: str, timeout: float = 60, seen: set[str] | None = None, outages: bool = False
) -> dict[str, Any]:
    """Poll as the result page does until the job has ended; its last answer. Every status the
    polls met is added to `seen`. With `outages`, a 503 (Redis away, with a Retry-After) or a
    dropped connection is waited out, as the page does."""
    seen = set() if seen is None else seen
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = client.get(f"/classifications/{job_id}")
        except httpx.TransportError:
            if not outages:
                raise
            time.sleep(0.5)
            continue
        if outages and response.status_code == 503:
            assert "Retry-After" in response.headers
            time.sleep(0.5)
            continue
        assert response.status_code == 200, f"job {job_id}: {response.text}"
        body: dict[str, Any] = response.json()
        seen.add(body["task_status"])
        if body["task_status"] in ("finished", "failed"):
            return body
        assert body["data"] is None
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not end within {timeout} s; saw {seen}")


def classify(client: WebClient, model_id: str, image_id: str, timeout: float = 60) -> dict[str, Any]:
    """Submit like the form does, then poll like the page does, until the job has ended: its last
    answer, with every status the polls met under "seen"."""
    seen: set[str] = set()
    body = wait_for_end(client, submit(client, model_id, image_id), timeout, seen)
    return {**body, "seen": seen}


def fresh_photo(image_dir: Path) -> str:
    """A catalogue photo no test has classified yet: chelsea plus unique trailing bytes (a new SHA-256)."""
    unique = uuid.uuid4().hex
    (image_dir / f"fresh-{unique}.jpg").write_bytes((image_dir / "chelsea.jpg").read_bytes() + unique.encode())
    return f"fresh-{unique}.jpg"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, standing in for the internet."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll, so that shutdown() returns at once (it waits up to one poll).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
