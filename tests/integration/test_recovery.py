"""Jobs whose worker died: the reaper puts them back on the queue, and gives up after the last try.

The dying worker is a real RQ worker process, killed with SIGKILL while it runs a job (a plain
RQ SimpleWorker running `time.sleep`, so the job is reliably mid-way); the reaper is the one the
service's workers run.
"""

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from imgclf.jobs.liveness import beat
from imgclf.jobs.queue import ATTEMPT_META_KEY, ERROR_META_KEY, make_queue
from imgclf.jobs.recovery import reap
from imgclf.ops.embedded_redis import EmbeddedRedis

DYING_WORKER = """
import sys
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
connection = Redis.from_url(sys.argv[1])
SimpleWorker(["classification"], connection=connection, serializer=JSONSerializer, name=sys.argv[2]).work(burst=True)
"""


@pytest.fixture
def connection(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def run_until_started(url: str, job: Job, name: str) -> subprocess.Popen[bytes]:
    """A worker process that has taken `job` and is running it."""
    process = subprocess.Popen([sys.executable, "-c", DYING_WORKER, url, name])
    deadline = time.monotonic() + 30
    while job.get_status(refresh=True) != JobStatus.STARTED:
        assert process.poll() is None, "the worker exited before it took the job"
        assert time.monotonic() < deadline, "the worker did not take the job"
        time.sleep(0.05)
    return process


def kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def test_a_dead_workers_job_goes_back_to_the_front_then_fails_after_the_last_try(
    redis_url: str, connection: Redis
) -> None:
    queue = make_queue(connection)
    job = queue.enqueue("time.sleep", 60)
    for attempt in (1, 2):
        worker = run_until_started(redis_url, job, f"dying.{attempt}")
        kill(worker)
        assert job.get_status(refresh=True) == JobStatus.STARTED  # RQ alone leaves it so for minutes
        later = queue.enqueue("time.sleep", 0)
        assert reap(connection, retries=2) == 1
        job.refresh()
        assert job.get_status() == JobStatus.QUEUED
        assert job.meta[ATTEMPT_META_KEY] == attempt + 1
        assert queue.job_ids == [job.id, later.id]  # at the front: it was taken first
        later.delete()

    worker = run_until_started(redis_url, job, "dying.3")
    woken: list[object] = []
    waiter = threading.Thread(target=lambda: woken.append(job.latest_result(timeout=20)))
    waiter.start()
    kill(worker)
    assert reap(connection, retries=2) == 1
    waiter.join(20)
    job.refresh()
    assert job.get_status() == JobStatus.FAILED
    assert "stopped unexpectedly 3 times" in job.meta[ERROR_META_KEY]
    assert woken and woken[0] is not None, "a client waiting on the result was not woken"
    assert queue.count == 0
    assert reap(connection, retries=2) == 0  # nothing left to do: never loops


def test_a_job_taken_off_the_queue_but_never_started_goes_back_to_the_front(connection: Redis) -> None:
    queue = make_queue(connection)
    job = queue.enqueue("time.sleep", 0)
    later = queue.enqueue("time.sleep", 0)
    # What a worker's dequeue does just before it loses Redis (or dies): the job leaves the queue
    # for RQ's intermediate list and is never marked started (seen in the Redis-kill chaos test).
    connection.lmove(queue.key, queue.intermediate_queue_key)
    assert queue.job_ids == [later.id]
    assert reap(connection, retries=2) == 0  # first seen: a live worker starts it in milliseconds
    assert queue.job_ids == [later.id]
    assert reap(connection, retries=2, stranded_after=0) == 1
    assert queue.job_ids == [job.id, later.id]
    assert connection.llen(queue.intermediate_queue_key) == 0
    assert job.get_status(refresh=True) == JobStatus.QUEUED


def test_a_taken_job_that_has_started_is_not_put_back(connection: Redis) -> None:
    queue = make_queue(connection)
    job = queue.enqueue("time.sleep", 0)
    connection.lmove(queue.key, queue.intermediate_queue_key)
    job.set_status(JobStatus.STARTED)  # its worker got there first
    assert reap(connection, retries=2, stranded_after=0) == 0
    assert queue.count == 0


def test_a_job_whose_worker_beats_is_left_alone(redis_url: str, connection: Redis) -> None:
    queue = make_queue(connection)
    job = queue.enqueue("time.sleep", 60)
    worker = run_until_started(redis_url, job, "alive.1")
    try:
        beat(connection, "alive.1")
        assert reap(connection, retries=2) == 0
        assert job.get_status(refresh=True) == JobStatus.STARTED
    finally:
        kill(worker)


def test_reapers_racing_for_one_job_queue_it_once(redis_url: str, connection: Redis) -> None:
    queue = make_queue(connection)
    job = queue.enqueue("time.sleep", 60)
    kill(run_until_started(redis_url, job, "dying.race"))
    counts: list[int] = []
    reapers = [threading.Thread(target=lambda: counts.append(reap(Redis.from_url(redis_url), 2))) for _ in range(6)]
    for reaper in reapers:
        reaper.start()
    for reaper in reapers:
        reaper.join(30)
    assert sum(counts) == 1
    assert queue.job_ids == [job.id]


def test_only_the_services_own_tasks_run(
    redis_server: EmbeddedRedis, worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """Anyone who can write to Redis can push a job; the worker runs only imgclf's tasks."""
    connection = Redis.from_url(redis_server.url)  # the session worker's database
    foreign_json = make_queue(connection).enqueue("os.mkdir", str(tmp_path / "json"))
    pickled = Queue("classification", connection=connection).enqueue("os.mkdir", str(tmp_path / "pickle"))
    for job in (foreign_json, pickled):
        deadline = time.monotonic() + 30
        while Job.fetch(job.id, connection=connection, serializer=JSONSerializer).get_status() in (
            JobStatus.QUEUED,
            JobStatus.STARTED,
        ):
            assert time.monotonic() < deadline, "the worker never took the foreign job"
            time.sleep(0.05)
        assert Job.fetch(job.id, connection=connection, serializer=JSONSerializer).get_status() == JobStatus.FAILED
    assert not (tmp_path / "json").exists()
    assert not (tmp_path / "pickle").exists()
    assert worker.poll() is None
