"""/api/v1/classifications when things happen around a job, caused for real rather than mocked:
jobs ahead finishing, a DELETE before a worker exists, a webhook receiver, the same
Idempotency-Key at once, a full queue or upload store, a rate limit, Redis stopped, unknown ids."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import io
import itertools
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from redis import Redis

from imgclf.jobs import uploads
from imgclf.jobs.queue import make_queue
from imgclf.jobs.webhooks import EVENT_HEADER, SIGNATURE_HEADER
from imgclf.ops.embedded_redis import EmbeddedRedis, free_port
from imgclf.ops.processes import spawn, stop, wait_for_workers
from imgclf.web.app import create_app
from tests.conftest import fresh_photo, make_settings, running_web
from tests.integration.v1_helpers import stored_keys
from tests.pictures import unique_jpeg

API = "/api/v1/classifications"
PROBLEM_JSON = "application/problem+json"
SECRET = "webhook-test-secret"
MIB = 1024 * 1024
AHEAD = 8
"""Jobs queued ahead of the one whose position is watched."""
WAIT = 60
"""Seconds any one wait in these tests may take, once a worker is ready."""
WORKER_START = 180
"""Seconds a worker may take to load its model and register."""
UNKNOWN_JOB = "0b0f5d5c-7c1e-4f0a-9d7e-3f1b2a4c5d6e"


def noise_jpeg(seed: int, side: int = 400) -> bytes:
    """A photo JPEG compresses badly (hundreds of KB), different for every seed."""
    noise = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    encoded = io.BytesIO()
    Image.fromarray(noise).save(encoded, format="JPEG", quality=95)
    return encoded.getvalue()


def upload_files(name: str, data: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "image/jpeg")}


def assert_problem(response: Any, status: int, fragment: str) -> dict[str, Any]:
    """`response` (from httpx or the TestClient) is an RFC 9457 problem with this status and words."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and fragment in problem["detail"], problem
    return problem


def parse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) of each Server-Sent Event; comments (pings) skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield fields.get("event", "message"), json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def follow_events(url: str, timeout: float) -> list[tuple[str, dict[str, Any]]]:
    """Every event of a job's stream until the server ends it, or until `timeout` seconds passed
    (the server's pings keep an idle stream open, so a read timeout alone would not end it)."""
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", url, timeout=WAIT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = itertools.takewhile(lambda _: time.monotonic() < deadline, response.iter_lines())
        return list(parse_events(lines))


@dataclass
class Drain:
    """What was seen while jobs queued with no worker running were drained by one started later."""

    url: str
    positions_queued: list[int | None]
    """Positions of the jobs ahead and of the watched one, read right after each was queued."""
    position_after_delete: int
    """The watched job's position once a job ahead of it was deleted."""
    positions_draining: list[int]
    """The watched job's positions, polled while the worker took the jobs ahead."""
    watched: dict[str, Any]
    """The watched job's resource once it ended."""
    events: list[tuple[str, dict[str, Any]]]
    """The watched job's event stream, opened before the worker started."""
    deleted: dict[str, Any]
    """The deleted job's resource after the worker drained the queue."""
    upload_gone_at_once: bool
    upload_after_drain: bytes | None
    deleted_image: int
    """Status of GET .../image for the deleted job."""


@pytest.fixture(scope="module")
def drain(fresh_redis_url: Callable[[], str], image_dir: Path, model_dir: Path) -> Iterator[Drain]:
    """A real `imgclf web` and, started only once jobs wait on its queue, a worker of this
    module's own (webhooks on, to 127.0.0.1): AHEAD catalogue jobs, an upload, then the watched
    job are queued; the upload's job is deleted; the watched job is followed by polling and by
    its event stream while the worker drains the queue. The worker then stays up for the module."""
    settings = make_settings(
        fresh_redis_url(),
        image_dir,
        model_dir,
        port=free_port(),
        models=["efficientnet_lite0"],
        runtime="torch",
        webhook_hosts=["127.0.0.1"],
        webhook_secret=SECRET,
    )
    connection = Redis.from_url(settings.redis_url or "")
    with running_web(settings) as url, httpx.Client(base_url=url, timeout=WAIT) as http:
        model = {"model": "efficientnet_lite0"}
        ids = [http.post(API, json={**model, "image": fresh_photo(image_dir)}).json()["id"] for _ in range(AHEAD)]
        upload = http.post(API, data=model, files=upload_files("cat.jpg", unique_jpeg(image_dir))).json()
        watched_id = http.post(API, json={**model, "image": fresh_photo(image_dir)}).json()["id"]
        ids += [upload["id"], watched_id]
        positions_queued = [http.get(f"{API}/{job_id}").json()["position"] for job_id in ids]

        assert http.delete(f"{API}/{upload['id']}").status_code == 204
        upload_gone_at_once = uploads.original(connection, upload["image"]["sha256"]) is None
        position_after_delete = http.get(f"{API}/{watched_id}").json()["position"]

        with ThreadPoolExecutor(1) as pool:
            events = pool.submit(follow_events, f"{url}{API}/{watched_id}/events", WORKER_START + WAIT)
            worker = spawn("worker", settings)
            try:
                wait_for_workers(connection, 1, [worker], timeout=WORKER_START)
                positions_draining = []
                deadline = time.monotonic() + WAIT
                while (body := http.get(f"{API}/{watched_id}").json())["status"] in ("queued", "running"):
                    if body["position"] is not None:
                        positions_draining.append(body["position"])
                    assert time.monotonic() < deadline, f"the watched job did not end within {WAIT} s"
                    time.sleep(0.01)
                yield Drain(
                    url=url,
                    positions_queued=positions_queued,
                    position_after_delete=position_after_delete,
                    positions_draining=positions_draining,
                    watched=body,
                    events=events.result(timeout=WAIT),
                    deleted=http.get(f"{API}/{upload['id']}").json(),
                    upload_gone_at_once=upload_gone_at_once,
                    upload_after_drain=uploads.original(connection, upload["image"]["sha256"]),
                    deleted_image=http.get(f"{API}/{upload['id']}/image").status_code,
                )
            finally:
                stop(worker)
                connection.close()


def test_position_counts_the_jobs_ahead(drain: Drain) -> None:
    assert drain.positions_queued == list(range(AHEAD + 2))


def test_position_goes_down_while_jobs_ahead_finish(drain: Drain) -> None:
    assert drain.position_after_delete == AHEAD  # the deleted job no longer counts
    seen = drain.positions_draining
    assert seen == sorted(seen, reverse=True), seen  # never up
    print(f"positions seen while the queue drained: {seen}")
    assert len(set(seen)) >= 2, f"never saw the position go down: {seen}"
    assert drain.watched["status"] == "succeeded" and drain.watched["position"] is None


def test_a_deleted_queued_job_never_runs_and_its_upload_is_gone(drain: Drain) -> None:
    deleted = drain.deleted
    # The worker took the job after it (the watched one): it passed this one without running it.
    assert drain.watched["status"] == "succeeded"
    assert deleted["status"] == "canceled" and deleted["error"]["code"] == "canceled"
    assert deleted["result"] is None and deleted["started_at"] is None
    assert drain.upload_gone_at_once and drain.upload_after_drain is None
    assert drain.deleted_image == 404


def test_events_follow_a_job_until_its_result(drain: Drain) -> None:
    names = {name for name, _ in drain.events}
    assert names == {"status"}, drain.events
    statuses = [data["status"] for _, data in drain.events]
    assert statuses[0] == "queued" and drain.events[0][1]["position"] == AHEAD
    assert statuses[-1] == "succeeded" and statuses.count("succeeded") == 1
    last = drain.events[-1][1]
    assert last == drain.watched  # the whole resource, as GET shows it
    assert len(last["result"]["top5"]) == 5


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    """A webhook receiver on 127.0.0.1: its URL, and what it was POSTed (headers, body)."""
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put(({name.lower(): value for name, value in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/imgclf?token=abc", received
    server.shutdown()
    server.server_close()


def test_a_webhook_brings_the_finished_job_signed(
    drain: Drain, image_dir: Path, receiver: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]
) -> None:
    callback_url, received = receiver
    with httpx.Client(base_url=drain.url, timeout=WAIT) as http:
        response = http.post(
            API, json={"model": "efficientnet_lite0", "image": fresh_photo(image_dir), "callback_url": callback_url}
        )
        assert response.status_code == 202, response.text
        try:
            headers, body = received.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail(f"no webhook arrived within {WAIT} s")
        resource = http.get(response.headers["location"]).json()
    assert headers[SIGNATURE_HEADER.lower()] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[EVENT_HEADER.lower()] == "classification.ended"
    assert headers["content-type"] == "application/json"
    sent = json.loads(body)
    assert sent["id"] == response.json()["id"] and sent["status"] == "succeeded"
    assert sent == resource
    assert received.empty()


def test_a_webhook_is_sent_even_when_the_answer_is_known_already(
    drain: Drain, image_dir: Path, receiver: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]
) -> None:
    callback_url, received = receiver
    request = {"model": "efficientnet_lite0", "image": fresh_photo(image_dir)}
    with httpx.Client(base_url=drain.url, timeout=WAIT) as http:
        first = http.post(API, json=request)
        known = http.get(f"{first.headers['location']}?wait={WAIT}").json()
        assert known["status"] == "succeeded"
        assert http.post(API, json=request).json()["cached"] is True  # the result cache knows this photo now
        response = http.post(API, json={**request, "callback_url": callback_url})
        assert response.status_code == 202, response.text  # a job of its own, whose end a worker announces
        try:
            headers, body = received.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail(f"no webhook arrived within {WAIT} s")
    assert headers[SIGNATURE_HEADER.lower()] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    sent = json.loads(body)
    assert sent["id"] == response.json()["id"] and sent["status"] == "succeeded"
    assert sent["result"] == known["result"]


@pytest.mark.parametrize(
    "callback_url",
    ["http://example.com/hook", "http://localhost:9/hook", "http://127.0.0.2/hook", "file:///etc/passwd"],
)
def test_a_callback_to_a_host_not_listed_is_refused(
    redis_url: str, image_dir: Path, model_dir: Path, queue_length: Callable[[], int], callback_url: str
) -> None:
    settings = make_settings(redis_url, image_dir, model_dir, webhook_hosts=["127.0.0.1"], webhook_secret=SECRET)
    request = {"model": "efficientnet_lite0", "image": "chelsea.jpg", "callback_url": callback_url}
    with TestClient(create_app(settings)) as client:
        response = client.post(API, json=request)
        problem = assert_problem(response, 422, "callback_url")
        assert [error["field"] for error in problem["errors"]] == ["callback_url"]
        assert client.post(API, json={**request, "callback_url": "http://127.0.0.1:9/hook"}).status_code == 202
    assert queue_length() == 1  # the listed host's job only


def test_webhooks_are_off_by_default(client: TestClient, queue_length: Callable[[], int]) -> None:
    response = client.post(
        API, json={"model": "efficientnet_lite0", "image": "chelsea.jpg", "callback_url": "http://127.0.0.1:9/hook"}
    )
    problem = assert_problem(response, 422, "Webhooks are off")
    assert [error["field"] for error in problem["errors"]] == ["callback_url"]
    assert queue_length() == 0


def test_the_same_idempotency_key_at_once_gives_one_job(
    client: TestClient, queue_length: Callable[[], int], redis_url: str, image_dir: Path
) -> None:
    key = str(uuid.uuid4())
    data = unique_jpeg(image_dir)
    start = threading.Barrier(6)

    def post(together: bool = True) -> Any:
        if together:
            start.wait(timeout=WAIT)
        files = upload_files("cat.jpg", data)
        return client.post(API, data={"model": "efficientnet_lite0"}, files=files, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: post(), range(6)))
    accepted = [answer for answer in answers if answer.status_code == 202]
    busy = [answer for answer in answers if answer.status_code == 409]
    assert accepted and len(accepted) + len(busy) == len(answers), [answer.text for answer in answers]
    for answer in busy:  # told to retry while the first one was being answered
        assert answer.headers["content-type"] == PROBLEM_JSON and answer.headers["retry-after"] == "1"
    print(f"{len(busy)} of {len(answers)} were told to retry")
    retried = [post(together=False) for _ in busy]
    assert [answer.status_code for answer in retried] == [202] * len(busy)
    assert len({answer.json()["id"] for answer in accepted + retried}) == 1
    assert queue_length() == 1
    connection = Redis.from_url(redis_url)
    assert len(stored_keys(connection)) == 2  # one photo, and the list of the jobs that use it
    connection.close()


def test_a_full_queue_is_a_503_with_retry_after_and_keeps_no_upload(
    redis_url: str, image_dir: Path, model_dir: Path
) -> None:
    settings = make_settings(redis_url, image_dir, model_dir, max_queued_jobs=1)
    connection = Redis.from_url(redis_url)
    with TestClient(create_app(settings)) as client:
        first = client.post(API, json={"model": "efficientnet_lite0", "image": fresh_photo(image_dir)})
        assert first.status_code == 202, first.text
        refused = client.post(
            API, data={"model": "efficientnet_lite0"}, files=upload_files("a.jpg", unique_jpeg(image_dir))
        )
        also_refused = client.post(API, json={"model": "efficientnet_lite0", "image": fresh_photo(image_dir)})
    for response in (refused, also_refused):
        assert_problem(response, 503, "busy")
        assert int(response.headers["retry-after"]) >= 1
    assert make_queue(connection).count == 1
    assert uploads.stored_bytes(connection) == 0 and not stored_keys(connection)
    connection.close()


def test_a_full_upload_store_is_a_503_until_a_job_is_deleted(redis_url: str, image_dir: Path, model_dir: Path) -> None:
    settings = make_settings(redis_url, image_dir, model_dir, upload_store_bytes=MIB)
    connection = Redis.from_url(redis_url)
    with TestClient(create_app(settings)) as client:
        accepted = []
        for seed in range(10):
            before = uploads.stored_bytes(connection)
            response = client.post(
                API, data={"model": "efficientnet_lite0"}, files=upload_files("n.jpg", noise_jpeg(seed))
            )
            if response.status_code != 202:
                break
            assert uploads.stored_bytes(connection) > before
            accepted.append(response.json()["id"])
        else:
            pytest.fail("10 uploads of hundreds of KB each fitted in a 1 MiB store")
        assert accepted, "the first upload was refused"
        assert_problem(response, 503, "as many uploaded photos as it may")
        assert response.headers["retry-after"] == "60"
        assert uploads.stored_bytes(connection) == before <= MIB
        assert make_queue(connection).count == len(accepted)
        assert client.delete(f"{API}/{accepted[0]}").status_code == 204
        again = client.post(API, data={"model": "efficientnet_lite0"}, files=upload_files("n.jpg", noise_jpeg(seed)))
        assert again.status_code == 202, again.text
    connection.close()


def test_past_the_rate_limit_is_a_429_with_retry_after(redis_url: str, image_dir: Path, model_dir: Path) -> None:
    settings = make_settings(redis_url, image_dir, model_dir, rate_limit_per_minute=2)
    if time.time() % 60 > 55:  # the three requests must fall in one one-minute window
        time.sleep(60 - time.time() % 60)
    connection = Redis.from_url(redis_url)
    with TestClient(create_app(settings)) as client:
        answers = [
            client.post(API, json={"model": "efficientnet_lite0", "image": fresh_photo(image_dir)}) for _ in range(2)
        ]
        refused = client.post(
            API, data={"model": "efficientnet_lite0"}, files=upload_files("a.jpg", unique_jpeg(image_dir))
        )
    assert [answer.status_code for answer in answers] == [202, 202]
    assert_problem(refused, 429, "the limit is 2 a minute")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert make_queue(connection).count == 2
    assert uploads.stored_bytes(connection) == 0
    connection.close()


def test_redis_stopped_is_a_503_with_retry_after_and_then_it_recovers(
    own_redis: EmbeddedRedis, image_dir: Path, model_dir: Path
) -> None:
    redis = own_redis
    with TestClient(create_app(make_settings(redis.url, image_dir, model_dir))) as client:
        job = client.post(API, json={"model": "efficientnet_lite0", "image": "chelsea.jpg"})
        assert job.status_code == 202, job.text
        url = job.headers["location"]
        redis.stop()
        answers = [
            client.post(API, json={"model": "efficientnet_lite0", "image": "coffee.jpg"}),
            client.get(url),
            client.delete(url),
            client.get(f"{url}/events"),
        ]
        redis.start()
        back = client.get(url)
    for answer in answers:
        assert_problem(answer, 503, "cannot be reached")
        assert answer.headers["retry-after"] == "5"
    assert back.status_code == 200 and back.json()["status"] == "queued"


@pytest.mark.parametrize("suffix", ["", "/events", "/image"])
@pytest.mark.parametrize("job_id", [UNKNOWN_JOB, "not-a-job"])
def test_an_unknown_job_is_a_404_problem(client: TestClient, job_id: str, suffix: str) -> None:
    assert_problem(client.get(f"{API}/{job_id}{suffix}"), 404, "No classification job")
    if not suffix:
        assert_problem(client.delete(f"{API}/{job_id}"), 404, "No classification job")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/jpeg", None])
def test_a_body_neither_json_nor_a_form_is_a_415(
    client: TestClient, queue_length: Callable[[], int], content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(API, content=b'{"model": "efficientnet_lite0", "image": "chelsea.jpg"}', headers=headers)
    assert_problem(response, 415, "multipart/form-data")
    assert queue_length() == 0
