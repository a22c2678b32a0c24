"""Chaos under `imgclf serve`: kill -9 a worker mid-job, kill -9 the embedded Redis; every job
acknowledged before ends finished with the right answer, and serve goes on answering."""

import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image
from redis import Redis
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from imgclf.images.samples import install_sample_photos
from imgclf.jobs.queue import make_queue
from tests.conftest import CATS, job_id_from_location, samples, submit, wait_for_end
from tests.integration.serve_process import Serve, serve

JOBS = 50
SLOW_IMAGE = "slow.png"


def redis_of(running: Serve) -> Redis:
    """A client of serve's embedded Redis, at the URL serve gave its workers."""
    worker = next(child for child in running.children() if "worker" in child.cmdline())
    return Redis.from_url(worker.environ()["IMGCLF_REDIS_URL"])


def slow_catalogue(tmp_path: Path) -> None:
    """The sample photos plus a 25-megapixel PNG that takes a worker most of a second, so a kill
    lands mid-job."""
    folder = tmp_path / "data" / "images"
    install_sample_photos(folder)
    noise = np.random.default_rng(0).integers(0, 256, (5000, 5000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / SLOW_IMAGE, compress_level=1)


def kill_a_busy_worker(running: Serve, connection: Redis) -> tuple[Job, int, float]:
    """Kill -9 a worker in the middle of a job: returns that job, how many workers were killed to
    hit one mid-job, and when the last one was.

    The worker is picked by a job seen in the started registry, but that job may end between the
    look and the kill (the worker then dies in its next job, or between two): so the victim is
    read after the kill, as the job still started under the killed worker's name (nothing moves
    it before the reaper, seconds later). A worker that held none is restarted by serve and
    another is tried.
    """
    registry = make_queue(connection).started_job_registry
    killed: set[str] = set()
    for kills in range(1, 4):
        deadline = time.monotonic() + 60
        while not (names := running_workers(registry, connection) - killed):
            assert time.monotonic() < deadline, "no job started"
            time.sleep(0.02)
        name = min(names)
        os.kill(int(name.split(".")[1]), signal.SIGKILL)
        killed.add(name)
        killed_at = time.monotonic()
        held = [
            job
            for job in Job.fetch_many(registry.get_job_ids(cleanup=False), connection, serializer=JSONSerializer)
            if job and job.worker_name == name and job.get_status() == JobStatus.STARTED
        ]
        running.wait_for("died (killed by SIGKILL)")
        if held:
            return held[0], kills, killed_at
    pytest.fail("three workers killed, none of them in the middle of a job")


def running_workers(registry: StartedJobRegistry, connection: Redis) -> set[str]:
    """The names of the workers that have a job started (a job RQ has registered but not yet
    marked started has no worker name yet)."""
    jobs = Job.fetch_many(registry.get_job_ids(cleanup=False), connection, serializer=JSONSerializer)
    return {job.worker_name for job in jobs if job and job.worker_name}


def test_a_worker_killed_mid_job_loses_no_job(tmp_path: Path, model_dir: Path) -> None:
    slow_catalogue(tmp_path)
    with (
        serve(tmp_path, model_dir, IMGCLF_RESULT_CACHE_TTL="0") as (running, url),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        reference = wait_for_end(client, submit(client, "efficientnet_lite0", SLOW_IMAGE), 240, outages=True)
        assert reference["task_status"] == "finished"
        job_ids = [submit(client, "efficientnet_lite0", SLOW_IMAGE) for _ in range(JOBS)]

        victim, kills, killed_at = kill_a_busy_worker(running, redis_of(running))
        assert httpx.get(f"{url}/healthz").status_code == 200  # serve goes on
        while victim.refresh() or victim.meta.get("attempt") != 2:
            waited = time.monotonic() - killed_at
            assert waited < 60, f"the killed job was not put back on the queue (it is {victim.get_status()})"
            time.sleep(0.1)
        print(f"killed job requeued {time.monotonic() - killed_at:.1f} s after the kill")

        bodies = {job_id: wait_for_end(client, job_id, 240, outages=True) for job_id in job_ids}
        assert [body["task_status"] for body in bodies.values()] == ["finished"] * JOBS
        assert {body["data"][0][0] for body in bodies.values()} == {reference["data"][0][0]}
        assert bodies[victim.id]["attempt"] == 2
        metrics = samples(httpx.get(f"{url}/metrics").text)
        assert metrics[("imgclf_child_restarts_total", (("kind", "worker"),))] == kills
        # A worker killed after taking a job but before starting it has it requeued too (as stranded).
        assert 1 <= metrics[("imgclf_orphaned_jobs_total", (("outcome", "requeued"),))] <= kills
        assert running.process.poll() is None


def test_a_killed_redis_loses_no_acknowledged_job(tmp_path: Path, model_dir: Path) -> None:
    with (
        serve(tmp_path, model_dir, IMGCLF_RESULT_CACHE_TTL="0") as (running, url),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        photos = ["chelsea.jpg", "coffee.jpg"]
        acknowledged = {
            submit(client, "efficientnet_lite0", photos[index % 2]): photos[index % 2] for index in range(JOBS)
        }
        redis = next(child for child in running.children() if Path(child.exe()).name == "redis-server")
        redis.kill()
        killed_at = time.monotonic()
        psutil.wait_procs([redis], timeout=10)

        # While Redis is away: the web answers, with 503 + Retry-After for a new job; once it is
        # back, new jobs are accepted again.
        refusals = 0
        while True:
            assert httpx.get(f"{url}/healthz").status_code == 200
            response = client.post(
                "/classifications", data={"model_id": "efficientnet_lite0", "image_id": "coffee.jpg"}
            )
            if response.status_code == 303:
                acknowledged[job_id_from_location(response.headers["location"])] = "coffee.jpg"
                break
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) > 0
            refusals += 1
            assert time.monotonic() - killed_at < 60, "Redis did not come back"
            time.sleep(0.1)
        print(f"accepting jobs again {time.monotonic() - killed_at:.1f} s after Redis was killed ({refusals} 503s)")

        for position, (job_id, photo) in enumerate(acknowledged.items()):
            print(f"job {position} of {len(acknowledged)}: {job_id}")  # shown if an assertion fails
            body = wait_for_end(client, job_id, 240, outages=True)
            assert body["task_status"] == "finished", body
            top = body["data"][0][0]
            assert top in CATS if photo == "chelsea.jpg" else top == "espresso"
        print(f"all {len(acknowledged)} jobs finished {time.monotonic() - killed_at:.1f} s after the kill")
        assert running.process.poll() is None
