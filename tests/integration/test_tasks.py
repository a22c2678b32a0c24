"""The job function, run in this process with a worker's context, as a worker would run it."""

import json
import re
from pathlib import Path

import pytest

from imgclf.errors import ClassificationError, UnknownImage
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.digests import FileDigests
from imgclf.images.samples import install_sample_photos
from imgclf.jobs.queue import CLASSIFY_TASK
from imgclf.models.loading import load_classifier
from imgclf.models.pipeline import Pipeline
from imgclf.models.registry import MODELS
from imgclf.worker.context import WorkerContext
from imgclf.worker.tasks import TASKS, classify


@pytest.fixture
def context(tmp_path: Path) -> WorkerContext:
    images = tmp_path / "images"
    install_sample_photos(images)
    (tmp_path / "outside.jpg").write_bytes((images / "coffee.jpg").read_bytes())
    classifier = load_classifier(MODELS["efficientnet_lite0"], tmp_path)
    return WorkerContext(
        pipelines={"efficientnet_lite0": Pipeline(classifier, max_pixels=10_000_000)},
        catalogue=ImageCatalogue(images),
        digests=FileDigests(),
    )


def test_returns_the_top_five_with_class_indices_and_timings(context: WorkerContext) -> None:
    result = classify(context, "efficientnet_lite0", "coffee.jpg")
    top5 = result["top5"]
    assert len(top5) == 5
    assert top5[0]["label"] == "espresso" and top5[0]["class_index"] == 967  # ImageNet's espresso
    assert all(0 < entry["probability"] <= 1 for entry in top5)
    assert set(result["timings_ms"]) == {"decode", "preprocess", "inference"}
    assert json.loads(json.dumps(result)) == result  # stored as JSON by RQ


def test_the_worker_checks_the_image_id_again(context: WorkerContext) -> None:
    with pytest.raises(UnknownImage, match=re.escape("No image '../outside.jpg' in the catalogue")):
        classify(context, "efficientnet_lite0", "../outside.jpg")


def test_a_model_the_worker_did_not_load_is_a_clear_failure(context: WorkerContext) -> None:
    with pytest.raises(ClassificationError, match="not loaded by the worker"):
        classify(context, "resnet18", "coffee.jpg")


def test_the_name_the_web_enqueues_is_the_task_the_worker_runs() -> None:
    # The web process names the task without importing it (that would import torch).
    assert TASKS[CLASSIFY_TASK] is classify
    assert f"{classify.__module__}.{classify.__qualname__}" == CLASSIFY_TASK
