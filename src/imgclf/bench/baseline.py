"""The lesson's design, kept as the benchmark's baseline: RQ's forking `Worker` whose process
has not imported torch, and a job that imports torch and builds the model (eager) inside every
job, as the lesson's `classify_image` does. Run as `python -m imgclf.bench.baseline`.

This module must not import torch at the top: the forked job would then start with torch
already imported, which the lesson's worker does not."""

from __future__ import annotations

from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

QUEUE_NAME = "baseline"
JOB_FUNCTION = "imgclf.bench.baseline.classify_like_the_lesson"


def classify_like_the_lesson(model_id: str, image_path: str) -> list[list[object]]:
    """Import torch, build the model, classify one image, return the top 5: all inside the job."""
    from pathlib import Path

    from imgclf.config import Settings
    from imgclf.images.decoding import open_rgb
    from imgclf.models.loading import load_classifier
    from imgclf.models.registry import MODELS

    settings = Settings()
    classifier = load_classifier(MODELS[model_id], settings.models_path)
    image = open_rgb(Path(image_path), settings.max_image_pixels)
    return [[label, percent] for label, percent in classifier.classify([image])[0]]


def make_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def main() -> None:
    """A forking worker on the baseline queue, as in the lesson's worker.py."""
    import os

    connection = Redis.from_url(os.environ["IMGCLF_REDIS_URL"])
    Worker([make_queue(connection)], connection=connection, serializer=JSONSerializer).work()


if __name__ == "__main__":
    main()
