"""Shared fixtures: a real Redis server on a free port, a catalogue of real photos, a model
cache holding a weights file the tests write themselves, and real worker / web processes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from imgclf.config import Settings
from imgclf.jobs.queue import make_queue
from imgclf.models.registry import MODELS, torch_hub_checkpoints
from imgclf.ops.embedded_redis import EmbeddedRedis, free_port
from imgclf.ops.prepare import install_sample_photos
from imgclf.ops.processes import spawn, stop, wait_for_http, wait_for_workers

WORKER_MODELS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18"]
"""What the test worker loads: the offline models plus resnet18 with test-written weights."""

BROKEN_IMAGE = "broken.jpg"
"""A catalogue entry that is not an image, for the failed-job path."""


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server of the test session's own, never one already running on 6379."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


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
    """The ticket shown on the result page the form's POST answers with."""
    start = html.index(JOB_ID_MARKER) + len(JOB_ID_MARKER)
    return html[start : html.index("<", start)]


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, redis_server: EmbeddedRedis) -> Iterator[str]:
    """The test module's own database (its `REDIS_DB`), emptied for each test."""
    url = redis_server.url_for_db(request.module.REDIS_DB)
    connection = Redis.from_url(url)
    connection.flushdb()
    yield url
    connection.close()


@pytest.fixture
def queue_length(redis_url: str) -> Iterator[Callable[[], int]]:
    """How many jobs wait in that database's classification queue."""
    connection = Redis.from_url(redis_url)
    yield lambda: make_queue(connection).count
    connection.close()
