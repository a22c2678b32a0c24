"""What the tests of /api/v1 and the pages share: polling a job to its end, the upload keys in
Redis, and a job made to look as a worker's take leaves it."""

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imgclf.jobs import uploads
from imgclf.jobs.queue import ATTEMPT_META_KEY, make_queue


def poll(client: TestClient | httpx.Client, url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(url)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] not in ("queued", "running"):
            return body
        assert int(response.headers["retry-after"]) >= 1
        time.sleep(0.05)
    pytest.fail(f"{url} did not end within {timeout} s")


def stored_keys(connection: Redis) -> set[bytes]:
    return set(connection.scan_iter(match=uploads.PREFIX + "*", count=1000))


def pretend_running(connection: Redis, job_id: str, attempt: int) -> None:
    """What a worker's take of a job leaves in Redis: off the queue, started, on its `attempt`th try."""
    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    make_queue(connection).remove(job)
    job.meta[ATTEMPT_META_KEY] = attempt
    job.save_meta()
    job.started_at = datetime.now(UTC)
    job.save()
    job.set_status(JobStatus.STARTED)
