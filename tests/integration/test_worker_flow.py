"""POST -> poll -> result, through a real Redis and a real `imgclf worker` process."""

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imgclf.config import Settings
from imgclf.web.app import create_app
from tests.conftest import BROKEN_IMAGE, job_id_from_page, samples

CATS = {"tiger cat", "Egyptian cat", "tabby"}


@pytest.fixture(scope="module")
def client(worker_settings: Settings, worker: subprocess.Popen[bytes]) -> Iterator[TestClient]:
    with TestClient(create_app(worker_settings)) as test_client:
        yield test_client


def classify(client: TestClient, model_id: str, image_id: str, timeout: float = 60) -> dict[str, Any]:
    """Submit like the form does, then poll like the page does, until the job has ended."""
    page = client.post("/classifications", data={"model_id": model_id, "image_id": image_id})
    assert page.status_code == 200
    job_id = job_id_from_page(page.text)
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/classifications/{job_id}").json()
        seen.add(body["task_status"])
        if body["task_status"] in ("finished", "failed"):
            body["seen"] = seen
            return body
        assert body["data"] is None
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not end within {timeout} s; saw {seen}")


@pytest.mark.parametrize(
    ("image_id", "expected", "within"),
    [
        ("chelsea.jpg", CATS, 1),
        ("coffee.jpg", {"espresso"}, 1),
        # Lite0 sees a gown and a mortarboard first; the uniform is third.
        ("grace_hopper.jpg", {"military uniform"}, 3),
    ],
)
def test_efficientnet_lite0_classifies_real_photos(
    client: TestClient, image_id: str, expected: set[str], within: int
) -> None:
    body = classify(client, "efficientnet_lite0", image_id)
    assert body["task_status"] == "finished", body
    assert "error" not in body
    labels = [label for label, _ in body["data"]]
    percents = [percent for _, percent in body["data"]]
    assert expected & set(labels[:within])
    assert len(labels) == 5 and percents == sorted(percents, reverse=True)


@pytest.mark.parametrize("model_id", ["efficientnet_lite1", "efficientnet_lite2"])
def test_every_offline_model_recognises_the_cat(client: TestClient, model_id: str) -> None:
    body = classify(client, model_id, "chelsea.jpg")
    assert body["task_status"] == "finished"
    assert body["data"][0][0] in CATS


def test_a_torchvision_model_with_weights_in_the_cache_is_served(client: TestClient) -> None:
    # resnet18's weights file was written by the test session (random values), not downloaded.
    body = classify(client, "resnet18", "rocket.jpg")
    assert body["task_status"] == "finished"
    assert len(body["data"]) == 5


def test_an_undecodable_image_fails_with_a_message_a_person_can_read(client: TestClient) -> None:
    body = classify(client, "efficientnet_lite0", BROKEN_IMAGE)
    assert body["task_status"] == "failed"
    assert body["data"] is None
    assert "could not be decoded as an image" in body["error"]


def test_one_long_polling_request_gets_the_result(client: TestClient, image_dir: Path) -> None:
    page = client.post("/classifications", data={"model_id": "efficientnet_lite0", "image_id": fresh_photo(image_dir)})
    job_id = job_id_from_page(page.text)
    body = client.get(f"/classifications/{job_id}", params={"wait": 30}).json()
    assert body["task_status"] == "finished"
    assert body["data"][0][0] in CATS


def test_jobs_are_served_in_order_by_one_worker(client: TestClient) -> None:
    bodies = [classify(client, "efficientnet_lite0", "coffee.jpg") for _ in range(3)]
    assert all(body["data"][0][0] == "espresso" for body in bodies)


def fresh_photo(image_dir: Path) -> str:
    """A catalogue photo no test has classified yet: chelsea plus unique trailing bytes (a new SHA-256)."""
    unique = uuid.uuid4().hex
    (image_dir / f"fresh-{unique}.jpg").write_bytes((image_dir / "chelsea.jpg").read_bytes() + unique.encode())
    return f"fresh-{unique}.jpg"


def test_readiness_and_metrics_count_what_the_worker_did(client: TestClient, image_dir: Path) -> None:
    assert client.get("/readyz").json()["status"] == "ready"
    photo = fresh_photo(image_dir)
    before = samples(client.get("/metrics").text)
    classify(client, "efficientnet_lite0", photo)
    classify(client, "efficientnet_lite0", BROKEN_IMAGE)
    classify(client, "efficientnet_lite0", photo)  # answered by the cache
    after = samples(client.get("/metrics").text)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert after[("imgclf_workers_alive", ())] == 1
    assert grew("imgclf_jobs_total", (("status", "finished"),)) == 1
    assert grew("imgclf_jobs_total", (("status", "failed"),)) == 1
    assert grew("imgclf_job_queue_wait_seconds_count") == 2
    assert grew("imgclf_job_inference_seconds_count") == 1  # the broken image never reached the model
    assert grew("imgclf_job_preprocess_seconds_sum") > 0
    assert grew("imgclf_cache_lookups_total") == 3
    assert grew("imgclf_cache_hits_total") == 1
