"""Adjustments and histograms through /api/v1 against a real Redis and a real worker: applied in
the worker before the model, recorded in the resource, part of the cache key, refused when out
of range; and the downloads (JSON, PNG chart, the photo as classified)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from imgclf.web.result_card import CARD_SIZE
from tests.conftest import fresh_photo
from tests.integration.v1_helpers import poll
from tests.pictures import unique_jpeg

API = "/api/v1/classifications"
LITE0 = "efficientnet_lite0"


def classified(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(API, json={"model": LITE0, **body})
    assert response.status_code in (200, 202), response.text
    return poll(client, response.json()["links"]["self"])


def test_the_worker_applies_the_adjustments_before_the_model_and_counts_the_histograms_after(
    worker_client: TestClient, image_dir: Path
) -> None:
    photo = fresh_photo(image_dir)
    plain = classified(worker_client, image=photo)
    black = classified(worker_client, image=photo, adjustments={"brightness": 0})
    assert plain["adjustments"] is None
    assert black["adjustments"] == {
        "brightness": 0.0,
        "contrast": 1.0,
        "color": 1.0,
        "sharpness": 1.0,
        "rotate": 0,
        "flip": False,
    }
    assert black["status"] == "succeeded" and not black["cached"]
    # The model saw a black picture: another answer than for the photo itself.
    assert black["result"]["top5"] != plain["result"]["top5"]
    histogram = plain["result"]["histogram"]
    assert set(histogram) == {"red", "green", "blue", "luminance"}
    pixels = sum(histogram["red"])
    assert pixels > 1000 and all(len(counts) == 256 and sum(counts) == pixels for counts in histogram.values())
    assert sum(1 for count in histogram["luminance"] if count) > 50  # a photo, not a flat picture
    dark = black["result"]["histogram"]
    assert all(counts[0] == sum(counts) for counts in dark.values())  # every pixel black

    turned = classified(worker_client, image=photo, adjustments={"rotate": 90, "flip": True})
    # Turning moves pixels, it does not change them: the same counts.
    assert turned["result"]["histogram"] == histogram


def test_the_adjustments_are_part_of_the_cache_key(worker_client: TestClient, image_dir: Path) -> None:
    photo = fresh_photo(image_dir)
    assert not classified(worker_client, image=photo)["cached"]
    brighter = worker_client.post(API, json={"model": LITE0, "image": photo, "adjustments": {"brightness": 1.4}})
    assert brighter.status_code == 202 and not brighter.json()["cached"]  # not the plain photo's answer
    done = poll(worker_client, brighter.json()["links"]["self"])
    again = worker_client.post(API, json={"model": LITE0, "image": photo, "adjustments": {"brightness": 1.4}})
    assert again.status_code == 200 and again.json()["cached"] is True
    assert again.json()["result"] == done["result"] and again.json()["adjustments"] == done["adjustments"]
    # Only the adjustments that change something count: the defaults are the plain photo.
    same = worker_client.post(API, json={"model": LITE0, "image": photo, "adjustments": {"brightness": 1}})
    assert same.status_code == 200 and same.json()["adjustments"] is None


def test_an_upload_is_adjusted_too_and_its_adjustments_come_as_json_text(
    worker_client: TestClient, image_dir: Path
) -> None:
    data = unique_jpeg(image_dir)
    response = worker_client.post(
        API,
        data={"model": LITE0, "adjustments": json.dumps({"color": 0, "rotate": 270})},
        files={"file": ("cat.jpg", data, "image/jpeg")},
    )
    assert response.status_code == 202, response.text
    done = poll(worker_client, response.json()["links"]["self"])
    assert done["adjustments"]["color"] == 0 and done["adjustments"]["rotate"] == 270
    histogram = done["result"]["histogram"]
    assert histogram["red"] == histogram["green"] == histogram["blue"]  # colour 0: grey


def test_adjustments_out_of_range_are_refused_field_by_field(worker_client: TestClient, image_dir: Path) -> None:
    photo = fresh_photo(image_dir)
    cases = [
        ({"brightness": 2.5}, "adjustments.brightness"),
        ({"contrast": -0.1}, "adjustments.contrast"),
        ({"rotate": 45}, "adjustments.rotate"),
        ({"flip": "yes"}, "adjustments.flip"),
        ({"gamma": 1.2}, "adjustments.gamma"),
    ]
    for adjustments, field in cases:
        response = worker_client.post(API, json={"model": LITE0, "image": photo, "adjustments": adjustments})
        assert response.status_code == 422, (adjustments, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [error["field"] for error in response.json()["errors"]] == [field], response.text
    for text in ("not json", "[1, 2]", '{"sharpness": "NaN"}'):
        response = worker_client.post(API, data={"model": LITE0, "image": photo, "adjustments": text})
        assert response.status_code == 422, (text, response.text)
        assert response.json()["errors"][0]["field"].startswith("adjustments")


def test_an_idempotency_key_reused_with_other_adjustments_is_refused(
    worker_client: TestClient, image_dir: Path
) -> None:
    photo = fresh_photo(image_dir)
    headers = {"Idempotency-Key": "adjustments-" + photo}
    first = worker_client.post(API, json={"model": LITE0, "image": photo}, headers=headers)
    assert first.status_code in (200, 202)
    other = worker_client.post(
        API, json={"model": LITE0, "image": photo, "adjustments": {"flip": True}}, headers=headers
    )
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"


def test_the_downloads_have_file_names_and_the_chart_is_a_png_card(worker_client: TestClient, image_dir: Path) -> None:
    photo = fresh_photo(image_dir)
    done = classified(worker_client, image=photo, adjustments={"rotate": 90})
    job = done["links"]["self"]
    stem = f"{Path(photo).stem}-{LITE0}-{done['id'][:8]}"

    saved = worker_client.get(f"{job}?download=true")
    assert saved.headers["content-disposition"] == f'attachment; filename="{stem}.json"'
    assert saved.json() == worker_client.get(job).json() == done

    chart = worker_client.get(f"{job}/chart.png?download=true")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.headers["content-disposition"] == f'attachment; filename="{stem}.png"'
    with Image.open(io.BytesIO(chart.content)) as card:
        assert card.format == "PNG" and card.size == CARD_SIZE
    assert worker_client.get(f"{job}/chart.png").headers["content-disposition"].startswith("inline;")

    original = worker_client.get(f"{job}/image?download=true")
    assert original.headers["content-disposition"] == f'attachment; filename="{Path(photo).stem}.jpg"'
    adjusted = worker_client.get(f"{job}/image?adjusted=true")
    assert adjusted.headers["content-type"] == "image/jpeg"
    assert adjusted.headers["content-disposition"] == f'inline; filename="{stem}-adjusted.jpg"'
    with Image.open(io.BytesIO(original.content)) as before, Image.open(io.BytesIO(adjusted.content)) as after:
        assert after.size == (before.height, before.width)  # turned a quarter


def test_a_chart_is_refused_until_the_job_succeeded(client: TestClient, image_dir: Path) -> None:
    # `client` has no worker: the job stays queued.
    queued = client.post(API, json={"model": LITE0, "image": fresh_photo(image_dir)}).json()
    response = client.get(f"{queued['links']['self']}/chart.png")
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "queued" in response.json()["detail"]
    assert client.get(f"{API}/{'0' * 8}-0000-4000-8000-{'0' * 12}/chart.png").status_code == 404


def test_a_file_name_sent_with_an_upload_cannot_break_the_header(worker_client: TestClient, image_dir: Path) -> None:
    data = unique_jpeg(image_dir)
    response = worker_client.post(
        API, data={"model": LITE0}, files={"file": ('evil"; filename="x.exe\r\n.jpg', data, "image/jpeg")}
    )
    done = poll(worker_client, response.json()["links"]["self"])
    disposition = worker_client.get(f"{done['links']['self']}/chart.png?download=true").headers["content-disposition"]
    name = disposition.removeprefix('attachment; filename="').removesuffix('"')
    assert name.endswith(".png") and all(char.isalnum() or char in "._-" for char in name), disposition
