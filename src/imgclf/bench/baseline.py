"""The lesson's design, kept as the benchmark's baseline: RQ's forking `Worker` whose process
has not imported torch, and a job that imports torch and builds the model (eager) inside every
job, as the lesson's `classify_image` does. Run as `python -m imgclf.bench.baseline`.

It is the one module outside `jobs` and `worker` that imports rq: it is RQ's own worker as the
lesson ran it, not the service's. The job itself runs the service's `Pipeline` on torch, so the
two designs differ in where the model is built, not in how an image is classified.

This module must not import torch (or anything that does) at the top: the forked job would then
start with torch already imported, which the lesson's worker does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

if TYPE_CHECKING:
    from imgclf.config import Settings

QUEUE_NAME = "baseline"
"""The lesson's worker has a queue of its own: the service's workers never take its jobs."""


def classify_like_the_lesson(model_id: str, image_path: str) -> list[list[object]]:
    """Import torch, build the model, classify one image, return the top 5: all inside the job."""
    from pathlib import Path

    from imgclf.config import Settings
    from imgclf.models.loading import load_classifier
    from imgclf.models.pipeline import Pipeline
    from imgclf.models.registry import MODELS

    settings = Settings()
    pipeline = Pipeline(load_classifier(MODELS[model_id], settings.model_dir), settings.max_image_pixels)
    return [[label, percent] for label, percent in pipeline.run(Path(image_path)).top]


def make_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def start_worker(settings: Settings, connection: Redis) -> subprocess.Popen[bytes]:
    """Start the baseline's worker process and return once RQ lists it."""
    from imgclf.ops.processes import settings_env, stop, wait_for_workers

    # RQ's own registration counts it: the service's heartbeat (`jobs.liveness`) is not the lesson's.
    already = Worker.count(connection=connection)
    env = {**settings_env(settings), "IMGCLF_TORCH_THREADS": str(os.cpu_count() or 1)}
    command = [sys.executable, "-m", "imgclf.bench.baseline"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_workers(connection, already + 1, [process], counter=lambda c: Worker.count(connection=c))
    except BaseException:
        stop(process)
        raise
    return process


def main() -> None:
    """A forking worker on the baseline queue, as in the lesson's worker.py."""
    connection = Redis.from_url(os.environ["IMGCLF_REDIS_URL"])
    Worker([make_queue(connection)], connection=connection, serializer=JSONSerializer).work()


if __name__ == "__main__":
    main()
