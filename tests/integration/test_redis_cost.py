"""`imgclf.bench.redis_cost` against real processes: the figures docs/scaling.md builds on (commands,
bytes and memory per job) come out of a real web process and worker, and mean what the doc says."""

import subprocess
from pathlib import Path

import httpx
from redis import Redis

from imgclf.bench.redis_cost import (
    capture_commands,
    measure_queued_memory,
    measure_redis_cost,
    replay_ceiling,
    round_trips,
    run_jobs,
    submit,
    used_memory,
)
from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.ops.embedded_redis import free_port
from tests.conftest import BROKEN_IMAGE, make_settings, running_web

MOST_COMMANDS_PER_JOB = 300
"""A sane bound: about 100 were counted when the doc was written; three times that is a regression."""


def photos(image_dir: Path) -> list[str]:
    return [image_id for image_id in ImageCatalogue(image_dir).ids() if image_id != BROKEN_IMAGE]


def test_a_job_costs_redis_a_bounded_number_of_commands_bytes_and_memory(
    worker_settings: Settings, worker: subprocess.Popen[bytes], redis_url: str, image_dir: Path, model_dir: Path
) -> None:
    image_ids = photos(image_dir)
    photo = (image_dir / "chelsea.jpg").read_bytes()
    # No worker reads this test's database: what it submits stays queued.
    idle_settings = make_settings(redis_url, image_dir, model_dir, port=free_port(), result_cache_ttl=0)
    idle = Redis.from_url(redis_url)
    with running_web(idle_settings) as url:
        queued = measure_queued_memory(idle, url, image_ids, jobs=50, uploads=4, photo=photo)
        assert 0 < queued.job_key_bytes <= queued.bytes_per_queued_job < 4 * queued.job_key_bytes
        # What the doc multiplies out: N more waiting jobs take about N x the bytes per queued job.
        before = used_memory(idle)
        with httpx.Client(base_url=url, timeout=30) as client:
            for image_id in image_ids * (60 // len(image_ids) + 1):
                submit(client, image_id, None)
        grown = used_memory(idle) - before
        expected = (60 // len(image_ids) + 1) * len(image_ids) * queued.bytes_per_queued_job
        assert 0.5 * expected < grown < 2 * expected, (grown, expected)
        # A waiting upload holds its photo (the original and the copy the page shows) beside its job.
        assert queued.bytes_per_upload > queued.upload_photo_bytes + queued.bytes_per_queued_job
    idle.close()

    busy_settings = worker_settings.model_copy(update={"port": free_port(), "result_cache_ttl": 0})
    redis = Redis.from_url(worker_settings.redis_url or "")
    with running_web(busy_settings) as url:
        cost = measure_redis_cost(redis, url, image_ids, jobs=10, clients=2)
        upload = measure_redis_cost(redis, url, image_ids, jobs=4, clients=2, photo=photo)
    redis.close()
    assert 10 < cost.total_commands < MOST_COMMANDS_PER_JOB, cost.commands
    assert round(cost.commands.get("rpush", 0) + cost.commands.get("lpush", 0)) == 1  # one push on the queue
    assert round(cost.commands.get("xadd", 0)) == 1  # one result written
    assert 0 < cost.net_in_bytes < 100_000 and 0 < cost.net_out_bytes < 100_000
    assert cost.redis_cpu_ms > 0
    assert cost.finished_key_bytes > queued.job_key_bytes  # a finished job keeps its result as well
    # An upload crosses the network into Redis (web -> Redis) and out again (Redis -> worker).
    assert upload.net_in_bytes > len(photo) and upload.net_out_bytes > len(photo)
    assert upload.total_commands > cost.total_commands


def test_a_captured_window_of_jobs_replays_against_redis_without_errors(
    worker_settings: Settings, worker: subprocess.Popen[bytes], redis_url: str, image_dir: Path
) -> None:
    settings = worker_settings.model_copy(update={"port": free_port(), "result_cache_ttl": 0})
    with running_web(settings) as url:
        captured = capture_commands(settings.redis_url or "", lambda: run_jobs(url, photos(image_dir), 4, 2, None))
    trips = round_trips(captured)
    assert 0 < len(trips) < len(captured)  # some commands went together (pipelines, MULTI ... EXEC)
    redis = Redis.from_url(redis_url)
    ceiling = replay_ceiling(redis, redis_url, trips, 4, "test", processes=1, connections=2, seconds=0.5)
    redis.close()
    assert ceiling.errors == 0
    assert ceiling.jobs_per_s > 0 and ceiling.redis_cores > 0
