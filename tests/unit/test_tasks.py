"""The job function, run in this process as a worker would run it."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgclf.errors import ClassificationError
from imgclf.images.catalogue import ImageCatalogue
from imgclf.models.loading import load_classifier
from imgclf.models.registry import MODELS
from imgclf.ops.prepare import install_sample_photos
from imgclf.worker import tasks


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Path]:
    images = tmp_path / "images"
    install_sample_photos(images)
    (tmp_path / "outside.jpg").write_bytes((images / "coffee.jpg").read_bytes())
    tasks.install(
        tasks.WorkerContext(
            classifiers={"efficientnet_lite0": load_classifier(MODELS["efficientnet_lite0"], tmp_path)},
            catalogue=ImageCatalogue(images),
            max_image_pixels=10_000_000,
        )
    )
    yield images
    tasks.install(None)


def test_returns_the_top_five_as_json_ready_lists(installed: Path) -> None:
    result = tasks.classify("efficientnet_lite0", "coffee.jpg")
    assert len(result) == 5
    assert result[0][0] == "espresso"
    assert all(isinstance(row, list) and len(row) == 2 for row in result)


def test_the_worker_checks_the_image_id_again(installed: Path) -> None:
    with pytest.raises(ClassificationError, match=re.escape("No image '../outside.jpg' in the catalogue")):
        tasks.classify("efficientnet_lite0", "../outside.jpg")


def test_a_model_the_worker_did_not_load_is_a_clear_failure(installed: Path) -> None:
    with pytest.raises(ClassificationError, match="not loaded by the worker"):
        tasks.classify("resnet18", "coffee.jpg")


def test_without_loaded_models_the_job_explains_where_to_run() -> None:
    with pytest.raises(ClassificationError, match="imgclf worker"):
        tasks.classify("efficientnet_lite0", "coffee.jpg")
