"""The result cache: a repeated request (same model, same image bytes) is answered without a worker."""

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imgclf.config import Settings
from imgclf.jobs.queue import make_queue
from imgclf.web.app import create_app
from tests.conftest import classify, fresh_photo, submit


@pytest.fixture
def jobs_run(worker_settings: Settings) -> Iterator[Callable[[], int]]:
    connection = Redis.from_url(worker_settings.redis_url or "")
    registry = make_queue(connection).finished_job_registry
    yield lambda: registry.count
    connection.close()


def test_a_repeated_request_is_answered_from_the_cache(
    worker_client: TestClient, image_dir: Path, jobs_run: Callable[[], int]
) -> None:
    photo = fresh_photo(image_dir)
    first = classify(worker_client, "efficientnet_lite0", photo)
    assert first["task_status"] == "finished" and "cached" not in first
    done = jobs_run()

    second = classify(worker_client, "efficientnet_lite0", photo)

    assert second["task_status"] == "finished"
    assert second["cached"] is True
    assert second["data"] == first["data"]
    assert second["seen"] == {"finished"}  # finished at the first poll
    assert jobs_run() == done  # no worker was involved


def test_a_cache_hit_is_a_finished_job_that_expires_like_any_other(
    worker_client: TestClient, worker_settings: Settings, image_dir: Path
) -> None:
    photo = fresh_photo(image_dir)
    classify(worker_client, "efficientnet_lite0", photo)
    job_id = submit(worker_client, "efficientnet_lite0", photo)

    with Redis.from_url(worker_settings.redis_url or "") as connection:
        # One job store: the ticket is an RQ job, not a second kind of record beside RQ's.
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        assert job.get_status() == JobStatus.FINISHED
        assert job.meta["cached"] is True
        shown = worker_client.get(f"/classifications/{job_id}").json()["data"]
        stored = job.return_value()
        assert stored is not None
        assert [[entry["label"], round(entry["probability"] * 100, 4)] for entry in stored["top5"]] == shown
        assert 0 < connection.ttl(job.key) <= worker_settings.result_ttl
        assert job_id not in make_queue(connection).job_ids  # no worker will ever take it


def test_another_model_or_other_bytes_are_not_cache_hits(worker_client: TestClient, image_dir: Path) -> None:
    photo = fresh_photo(image_dir)
    classify(worker_client, "efficientnet_lite0", photo)
    assert "cached" not in classify(worker_client, "efficientnet_lite1", photo)
    (image_dir / photo).write_bytes((image_dir / photo).read_bytes() + b"\0")  # same name, new bytes
    assert "cached" not in classify(worker_client, "efficientnet_lite0", photo)


def test_the_cache_can_be_turned_off(
    worker_settings: Settings, worker: subprocess.Popen[bytes], image_dir: Path
) -> None:
    with TestClient(create_app(worker_settings.model_copy(update={"result_cache_ttl": 0}))) as client:
        photo = fresh_photo(image_dir)
        classify(client, "efficientnet_lite0", photo)
        assert "cached" not in classify(client, "efficientnet_lite0", photo)
