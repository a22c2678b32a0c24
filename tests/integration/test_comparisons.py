"""Comparisons against a real Redis and a real worker: one photo, several models, each its own
job; the API resource, its agreement, the form's post and the shareable page."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import WORKER_MODELS, fresh_photo
from tests.integration.v1_helpers import poll
from tests.pictures import unique_jpeg

API = "/api/v1/comparisons"
LITES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


def test_every_available_model_classifies_the_photo_when_none_are_named(
    worker_client: TestClient, image_dir: Path
) -> None:
    photo = fresh_photo(image_dir)
    response = worker_client.post(API, json={"image": photo})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == response.json()["links"]["self"]
    done = poll(worker_client, response.headers["location"] + "?wait=30")
    assert done["status"] == "succeeded" and done["image"] == {"id": photo}
    assert [entry["model"] for entry in done["classifications"]] == WORKER_MODELS
    for entry in done["classifications"]:
        assert entry["status"] == "succeeded" and len(entry["result"]["top5"]) == 5
        assert entry["timings_ms"]["inference"] > 0
        # Each is an ordinary job with its own resource and page.
        assert worker_client.get(entry["links"]["self"]).json()["result"] == entry["result"]
    assert done["links"]["page"] == f"/comparisons/{done['id']}"
    shared = done["agreement"]["classes"]
    assert shared, "three EfficientNets on a cat share classes"
    for entry in shared:
        assert len(entry["models"]) >= 2
        for model in entry["models"]:
            job = next(job for job in done["classifications"] if job["model"] == model)
            assert entry["class_index"] in [top["class_index"] for top in job["result"]["top5"]]


def test_named_models_an_upload_and_adjustments_in_a_form(worker_client: TestClient, image_dir: Path) -> None:
    data = unique_jpeg(image_dir)
    response = worker_client.post(
        API,
        data={"models": "efficientnet_lite2, efficientnet_lite0", "adjustments": json.dumps({"flip": True})},
        files={"file": ("mine.jpg", data, "image/jpeg")},
    )
    assert response.status_code == 202, response.text
    done = poll(worker_client, response.headers["location"])
    assert [entry["model"] for entry in done["classifications"]] == ["efficientnet_lite2", "efficientnet_lite0"]
    assert done["image"]["filename"] == "mine.jpg" and done["adjustments"]["flip"] is True
    assert all(entry["adjustments"]["flip"] for entry in done["classifications"])
    shas = {entry["image"]["sha256"] for entry in done["classifications"]}
    assert len(shas) == 1  # one stored upload for both jobs


def test_a_wrong_model_or_image_is_refused_before_anything_is_queued(
    worker_client: TestClient, image_dir: Path
) -> None:
    photo = fresh_photo(image_dir)
    for body, field in (
        ({"image": photo, "models": ["efficientnet_lite0", "resnet"]}, "models"),
        ({"image": photo, "models": ["alexnet"]}, "models"),  # no weights here
        ({"image": "nope.jpg"}, "image"),
        ({"image": photo, "adjustments": {"sharpness": 3}}, "adjustments.sharpness"),
    ):
        response = worker_client.post(API, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"] == field
    for comparison_id in ("nope", str(uuid.uuid4())):
        response = worker_client.get(f"{API}/{comparison_id}")
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


def test_the_form_posts_to_a_shareable_page_with_the_shared_classes_marked(
    worker_client: TestClient, image_dir: Path
) -> None:
    photo = fresh_photo(image_dir)
    form = worker_client.get("/compare").text
    assert form.count('name="model_id"') == len(WORKER_MODELS)  # every available model, ticked
    posted = worker_client.post(
        "/compare",
        data={"model_id": LITES, "image_id": photo, "brightness": "1.20"},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    page_url = posted.headers["location"]
    comparison_id = page_url.rsplit("/", 1)[1]
    done = poll(worker_client, f"{API}/{comparison_id}?wait=30")
    assert done["adjustments"]["brightness"] == 1.2
    page = worker_client.get(page_url).text
    assert page.count('<article class="column"') == 3
    assert len(re.findall(r"<li( class=\"agree\")?><span class=\"label\">", page)) == 15
    assert page.count('<li class="agree">') == sum(
        1 for entry in done["agreement"]["classes"] for model in entry["models"]
    )
    assert f'data-recent-url="{page_url}"' in page
    assert "with brightness 1.2" in page


def test_the_form_says_what_is_wrong(worker_client: TestClient, image_dir: Path) -> None:
    photo = fresh_photo(image_dir)
    nothing_ticked = worker_client.post("/compare", data={"image_id": photo}, headers={"Accept": "text/html"})
    assert nothing_ticked.status_code == 422 and "Tick at least one model." in nothing_ticked.text
    too_bright = worker_client.post(
        "/compare", data={"model_id": LITES, "image_id": photo, "brightness": "9"}, headers={"Accept": "text/html"}
    )
    assert too_bright.status_code == 422 and "Send a number from 0 to 2" in too_bright.text
    gone = worker_client.get(f"/comparisons/{uuid.uuid4()}")
    assert gone.status_code == 404 and "No such comparison" in gone.text
