"""The result cache: a repeated request (same model, same image bytes) is answered without a worker."""

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from imgclf.config import Settings
from imgclf.jobs.queue import make_queue
from imgclf.web.app import create_app
from tests.integration.test_worker_flow import classify, fresh_photo


@pytest.fixture
def client(worker_settings: Settings, worker: subprocess.Popen[bytes]) -> Iterator[TestClient]:
    with TestClient(create_app(worker_settings)) as test_client:
        yield test_client


@pytest.fixture
def jobs_run(worker_settings: Settings) -> Iterator[Callable[[], int]]:
    connection = Redis.from_url(worker_settings.redis_url or "")
    registry = make_queue(connection).finished_job_registry
    yield lambda: registry.count
    connection.close()


def test_a_repeated_request_is_answered_from_the_cache(
    client: TestClient, image_dir: Path, jobs_run: Callable[[], int]
) -> None:
    photo = fresh_photo(image_dir)
    first = classify(client, "efficientnet_lite0", photo)
    assert first["task_status"] == "finished" and "cached" not in first
    done = jobs_run()

    second = classify(client, "efficientnet_lite0", photo)

    assert second["task_status"] == "finished"
    assert second["cached"] is True
    assert second["data"] == first["data"]
    assert second["seen"] == {"finished"}  # finished at the first poll
    assert jobs_run() == done  # no worker was involved


def test_another_model_or_other_bytes_are_not_cache_hits(client: TestClient, image_dir: Path) -> None:
    photo = fresh_photo(image_dir)
    classify(client, "efficientnet_lite0", photo)
    assert "cached" not in classify(client, "efficientnet_lite1", photo)
    (image_dir / photo).write_bytes((image_dir / photo).read_bytes() + b"\0")  # same name, new bytes
    assert "cached" not in classify(client, "efficientnet_lite0", photo)


def test_the_cache_can_be_turned_off(
    worker_settings: Settings, worker: subprocess.Popen[bytes], image_dir: Path
) -> None:
    with TestClient(create_app(worker_settings.model_copy(update={"result_cache_ttl": 0}))) as client:
        photo = fresh_photo(image_dir)
        classify(client, "efficientnet_lite0", photo)
        assert "cached" not in classify(client, "efficientnet_lite0", photo)
