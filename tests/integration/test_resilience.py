"""What users and operators meet when parts fail: a failed job's message through a long poll,
foreign job ids, readiness after a worker's death, a worker that outlives a Redis outage, and an
embedded Redis nobody else can reach."""

import stat
import subprocess
import time
from pathlib import Path

import httpx
import psutil
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue

from imgclf.config import Settings
from imgclf.images.digests import FileDigests
from imgclf.jobs.liveness import ready_workers
from imgclf.jobs.submit import catalogue_order, submit_order
from imgclf.ops.embedded_redis import EmbeddedRedis, free_port
from imgclf.ops.processes import spawn, stop, wait_for_workers
from imgclf.web.app import create_app
from tests.conftest import BROKEN_IMAGE, make_settings, running_web, submit, unreachable_redis_url, wait_for_end


def test_a_long_poll_brings_a_failed_jobs_own_message(live_server: str) -> None:
    with httpx.Client(base_url=live_server) as client:
        job_id = submit(client, "efficientnet_lite0", BROKEN_IMAGE)
    body = httpx.get(f"{live_server}/classifications/{job_id}?wait=20", timeout=30).json()
    assert body["task_status"] == "failed"
    assert "could not be decoded as an image" in body["error"], body  # the reason, not a generic failure
    assert "/" not in body["error"]


def test_a_job_id_of_another_queue_is_404_json(live_server: str, worker_settings: Settings) -> None:
    connection = Redis.from_url(worker_settings.redis_url or "")
    foreign = Queue("another-application", connection=connection).enqueue("os.getcwd")  # pickled, not ours
    response = httpx.get(f"{live_server}/classifications/{foreign.id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "never existed" in response.json()["detail"]


def test_readyz_stops_counting_a_killed_worker_within_seconds(redis_url: str, image_dir: Path, model_dir: Path) -> None:
    connection = Redis.from_url(redis_url)
    settings = make_settings(redis_url, image_dir, model_dir, port=free_port(), models=["efficientnet_lite0"])
    worker = spawn("worker", settings)
    try:
        with running_web(settings) as url:
            loading = httpx.get(f"{url}/readyz")
            if not ready_workers(connection):  # still loading its models: not ready yet
                assert loading.status_code == 503
            wait_for_workers(connection, 1, [worker])
            assert httpx.get(f"{url}/readyz").json() == {"status": "ready", "workers": 1}
            worker.kill()
            killed = time.monotonic()
            while httpx.get(f"{url}/readyz").status_code == 200:
                assert time.monotonic() - killed < 30, "/readyz still counts a worker killed 30 s ago"
                time.sleep(0.2)
            print(f"/readyz saw the worker's death after {time.monotonic() - killed:.1f} s")
    finally:
        stop(worker)
        connection.close()


def test_a_worker_outlives_a_redis_outage(own_redis: EmbeddedRedis, image_dir: Path, model_dir: Path) -> None:
    redis = own_redis
    settings = make_settings(redis.url, image_dir, model_dir, models=["efficientnet_lite0"], result_cache_ttl=0)
    connection = Redis.from_url(redis.url)
    worker = spawn("worker", settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_workers(connection, 1, [worker])
        assert redis.process is not None
        redis.process.kill()
        redis.process.wait()
        time.sleep(3)
        assert worker.poll() is None, "the worker exited when Redis went away"
        redis.start()  # same socket, same append-only file
        wait_for_workers(connection, 1, [worker], timeout=60)
        order = catalogue_order(FileDigests(), "efficientnet_lite0", "coffee.jpg", image_dir / "coffee.jpg")
        job_id = submit_order(connection, settings, order).job_id
        with TestClient(create_app(settings)) as client:
            body = wait_for_end(client, job_id)
        assert body["task_status"] == "finished" and body["data"] is not None
        assert body["data"][0][0] == "espresso"
    finally:
        stop(worker)


def test_a_worker_asked_to_stop_while_redis_is_away_stops(
    own_redis: EmbeddedRedis, image_dir: Path, model_dir: Path
) -> None:
    # As when `serve` is killed: its children get SIGTERM and its embedded Redis goes too. The
    # worker used to take RQ's failed clean-up for an outage and wait for Redis forever.
    redis = own_redis
    settings = make_settings(redis.url, image_dir, model_dir, models=["efficientnet_lite0"])
    worker = spawn("worker", settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Redis.from_url(redis.url) as connection:
            wait_for_workers(connection, 1, [worker])
        assert redis.process is not None
        redis.process.kill()
        redis.process.wait()
        time.sleep(1)  # the worker is in RQ's own retry of the lost connection
        worker.terminate()
        assert worker.wait(timeout=15) == 0
    finally:
        stop(worker)


def test_a_worker_waiting_for_redis_stops_cleanly_when_asked(image_dir: Path, model_dir: Path) -> None:
    # The same request outside RQ's loop (no Redis yet, or lost and waiting to reconnect): it used
    # to kill the worker with SIGTERM's default action (exit status -15, a crash to a supervisor).
    settings = make_settings(unreachable_redis_url(), image_dir, model_dir, models=["efficientnet_lite0"])
    worker = spawn("worker", settings, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert worker.stderr is not None
        for line in worker.stderr:  # wait until it is in the waiting loop, not still starting
            if b"Redis unreachable" in line:
                break
        worker.terminate()
        assert worker.wait(timeout=15) == 0
    finally:
        stop(worker)
        if worker.stderr is not None:
            worker.stderr.close()


def test_the_embedded_redis_is_reachable_only_by_the_services_user(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis")
    redis.start()
    try:
        assert redis.process is not None and redis.socket is not None
        server = psutil.Process(redis.process.pid)
        assert server.net_connections(kind="inet") == []  # no TCP port at all
        assert stat.S_IMODE(redis.socket.parent.stat().st_mode) == 0o700
        assert redis.client().ping()
    finally:
        redis.stop()

    protected = EmbeddedRedis(tmp_path / "tcp", password="s3cret-for-the-test")
    protected.start()
    try:
        assert protected.process is not None
        assert "s3cret-for-the-test" not in " ".join(psutil.Process(protected.process.pid).cmdline())
        assert stat.S_IMODE((tmp_path / "tcp" / "redis.conf").stat().st_mode) == 0o600
        refused = Redis(port=protected.port)
        try:
            refused.ping()
            raise AssertionError("Redis answered without the password")
        except Exception as exc:  # redis-py raises AuthenticationError
            assert "auth" in str(exc).lower()
    finally:
        protected.stop()
