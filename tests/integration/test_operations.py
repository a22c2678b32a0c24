"""Health, readiness and metrics as an operator (or a load balancer, or Prometheus) sees them."""

import socket
from pathlib import Path

from fastapi.testclient import TestClient
from redis import Redis

from imgclf.jobs.liveness import beat
from imgclf.ops.healthcheck import check_worker
from imgclf.web.app import create_app
from tests.conftest import make_settings, samples, unreachable_redis_url


def test_healthz_says_the_process_is_alive(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}


def test_readyz_is_503_with_a_reason_when_no_worker_is_alive(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("No worker is ready")


def test_every_count_of_workers_counts_only_workers_that_serve_a_model(
    client: TestClient, redis_url: str, image_dir: Path, model_dir: Path
) -> None:
    # A worker that found no export and no weights (a stack started before its init step ran)
    # beats, but can classify nothing: /readyz, the metric and the container health check agree.
    connection = Redis.from_url(redis_url)
    settings = make_settings(redis_url, image_dir, model_dir)
    beat(connection, f"{socket.gethostname()}.1.empty-handed", {})
    assert client.get("/readyz").status_code == 503
    assert samples(client.get("/metrics").text)[("imgclf_workers_alive", ())] == 0
    assert "no worker of host" in (check_worker(settings) or "")
    beat(connection, f"{socket.gethostname()}.2.serving", {"efficientnet_lite0": "onnxruntime"})
    assert client.get("/readyz").json() == {"status": "ready", "workers": 1}
    assert samples(client.get("/metrics").text)[("imgclf_workers_alive", ())] == 1
    assert check_worker(settings) is None


def test_readyz_and_metrics_report_an_unreachable_redis(image_dir: Path, model_dir: Path) -> None:
    settings = make_settings(unreachable_redis_url(), image_dir, model_dir)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "Redis (the job queue) is unreachable" in response.json()["reason"]
        assert samples(client.get("/metrics").text)[("imgclf_redis_up", ())] == 0


def test_metrics_show_the_queue_and_the_http_requests(client: TestClient) -> None:
    before = samples(client.get("/metrics").text)
    assert before[("imgclf_redis_up", ())] == 1
    assert before[("imgclf_queue_depth", ())] == 0
    assert before[("imgclf_workers_alive", ())] == 0

    client.post("/classifications", data={"model_id": "efficientnet_lite0", "image_id": "coffee.jpg"})
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    assert after[("imgclf_queue_depth", ())] == 1
    posted = ("handler", "/classifications"), ("method", "POST")
    counts = [
        value
        for (name, labels), value in after.items()
        if name == "http_request_duration_seconds_count" and set(posted) <= set(labels)
    ]
    assert counts == [1.0]
    assert ("imgclf_job_inference_seconds_count", ()) in after
