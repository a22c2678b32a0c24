"""POST -> poll -> result, through a real Redis and a real `imgclf worker` process."""

import itertools
import signal
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from imgclf.config import Settings
from imgclf.jobs.liveness import live_workers
from imgclf.jobs.queue import make_queue
from imgclf.models.manifest import read_manifest
from imgclf.models.registry import MODELS
from imgclf.models.serving import auto_runtime
from tests.conftest import BROKEN_IMAGE, CATS, classify, fresh_photo, samples, submit, wait_for_end


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
    worker_client: TestClient, image_id: str, expected: set[str], within: int
) -> None:
    body = classify(worker_client, "efficientnet_lite0", image_id)
    assert body["task_status"] == "finished", body
    assert "error" not in body
    labels = [label for label, _ in body["data"]]
    percents = [percent for _, percent in body["data"]]
    assert expected & set(labels[:within])
    assert len(labels) == 5 and percents == sorted(percents, reverse=True)


@pytest.mark.parametrize("model_id", ["efficientnet_lite1", "efficientnet_lite2"])
def test_every_offline_model_recognises_the_cat(worker_client: TestClient, model_id: str) -> None:
    body = classify(worker_client, model_id, "chelsea.jpg")
    assert body["task_status"] == "finished"
    assert body["data"][0][0] in CATS


def test_a_torchvision_model_with_weights_in_the_cache_is_served(worker_client: TestClient) -> None:
    # resnet18's weights file was written by the test session (random values), not downloaded.
    body = classify(worker_client, "resnet18", "rocket.jpg")
    assert body["task_status"] == "finished"
    assert len(body["data"]) == 5


def test_an_undecodable_image_fails_with_a_message_a_person_can_read(worker_client: TestClient) -> None:
    body = classify(worker_client, "efficientnet_lite0", BROKEN_IMAGE)
    assert body["task_status"] == "failed"
    assert body["data"] is None
    assert "could not be decoded as an image" in body["error"]


def test_one_long_polling_request_gets_the_result(worker_client: TestClient, image_dir: Path) -> None:
    job_id = submit(worker_client, "efficientnet_lite0", fresh_photo(image_dir))
    body = worker_client.get(f"/classifications/{job_id}", params={"wait": 30}).json()
    assert body["task_status"] == "finished"
    assert body["data"][0][0] in CATS


def test_jobs_are_served_in_order_by_one_worker(
    worker_client: TestClient, worker: subprocess.Popen[bytes], worker_settings: Settings, image_dir: Path
) -> None:
    # Photos no test has classified (no job is a cache hit), submitted while the worker is
    # paused, so that they all wait in the queue together.
    photos = [fresh_photo(image_dir) for _ in range(4)]
    worker.send_signal(signal.SIGSTOP)
    try:
        job_ids = [submit(worker_client, "efficientnet_lite0", photo) for photo in photos]
    finally:
        worker.send_signal(signal.SIGCONT)
    bodies = [wait_for_end(worker_client, job_id) for job_id in job_ids]
    assert all(body["task_status"] == "finished" and body["data"][0][0] in CATS for body in bodies), bodies
    connection = Redis.from_url(worker_settings.redis_url or "")
    jobs = [make_queue(connection).fetch_job(job_id) for job_id in job_ids]
    connection.close()
    runs = [(job.worker_name, job.started_at, job.ended_at) for job in jobs if job is not None]
    assert len(runs) == len(job_ids) and len({name for name, _, _ in runs}) == 1, runs
    for (_, _, ended), (_, started, _) in itertools.pairwise(runs):
        # each job ended before the one submitted after it started: one at a time, first in first out
        assert ended is not None and started is not None and ended <= started, runs


def test_readiness_and_metrics_count_what_the_worker_did(worker_client: TestClient, image_dir: Path) -> None:
    assert worker_client.get("/readyz").json()["status"] == "ready"
    photo = fresh_photo(image_dir)
    before = samples(worker_client.get("/metrics").text)
    classify(worker_client, "efficientnet_lite0", photo)
    classify(worker_client, "efficientnet_lite0", BROKEN_IMAGE)
    classify(worker_client, "efficientnet_lite0", photo)  # answered by the cache
    after = samples(worker_client.get("/metrics").text)

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


def test_each_worker_reports_the_runtime_of_each_model(worker_client: TestClient, worker_settings: Settings) -> None:
    # `auto` serves what the export timed fastest on this machine (its manifest says which: ONNX
    # Runtime or OpenVINO); the label names the worker, so two workers that chose differently
    # would both show.
    spec = MODELS["efficientnet_lite0"]
    manifest = read_manifest(worker_settings.model_dir, spec.id, spec.weights_file)
    assert manifest is not None
    served = auto_runtime(manifest)
    connection = Redis.from_url(worker_settings.redis_url or "")
    (name,) = live_workers(connection)
    runtimes = {
        labels: value
        for (metric, labels), value in samples(worker_client.get("/metrics").text).items()
        if metric == "imgclf_model_runtime"
    }
    assert runtimes[(("model", "efficientnet_lite0"), ("runtime", served), ("worker", name))] == 1
    models = {model["id"]: model for model in worker_client.get("/api/v1/models").json()["models"]}
    assert models["efficientnet_lite0"]["runtime"] == served
