"""The lesson's routes against a real Redis, with no worker: what the web process answers."""

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imgclf.web.app import create_app
from tests.conftest import job_id_from_location, job_id_from_page, make_settings, submit, unreachable_redis_url

COFFEE = {"model_id": "efficientnet_lite0", "image_id": "coffee.jpg"}


def test_home_page_links_to_the_form(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/classifications"' in response.text


def test_info_lists_what_may_be_picked(client: TestClient) -> None:
    body = client.get("/info").json()
    assert body["models"] == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18"]
    assert "chelsea.jpg" in body["images"] and "grace_hopper.jpg" in body["images"]
    assert set(body["unavailable_models"]) == {"alexnet", "vgg16", "inception_v3"}


def test_the_form_offers_models_and_images(client: TestClient) -> None:
    page = client.get("/classifications").text
    assert '<select id="model_id" name="model_id"' in page
    assert '<option value="efficientnet_lite0"' in page
    assert '<option value="chelsea.jpg"' in page
    assert '<option value="vgg16" disabled>' in page


def test_a_valid_post_queues_one_job_and_redirects_to_its_result_page(
    client: TestClient, queue_length: Callable[[], int]
) -> None:
    response = client.post("/classifications", data=COFFEE, follow_redirects=False)
    assert response.status_code == 303
    job_id = job_id_from_location(response.headers["location"])
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert job_id_from_page(page.text) == job_id
    assert '<img src="/images/coffee.jpg"' in page.text
    assert queue_length() == 1
    status = client.get(f"/classifications/{job_id}")
    assert status.status_code == 200
    assert status.json() == {"task_status": "queued", "data": None}


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({}, "model_id", "Pick a model."),
        ({"model_id": "", "image_id": ""}, "image_id", "Pick a photo from the catalogue, or upload one"),
        (
            {"model_id": "resnet9000", "image_id": "chelsea.jpg"},
            "model_id",
            "Unknown model &#39;resnet9000&#39;",
        ),
        ({"model_id": "vgg16", "image_id": "chelsea.jpg"}, "model_id", "not available on this server"),
        ({"model_id": "efficientnet_lite0", "image_id": "../../etc/passwd"}, "image_id", "Unknown image"),
        ({"model_id": "efficientnet_lite0", "image_id": "/etc/passwd"}, "image_id", "Unknown image"),
    ],
)
def test_bad_input_gets_the_form_back_with_a_message_and_queues_nothing(
    client: TestClient, queue_length: Callable[[], int], form: dict[str, str], field: str, message: str
) -> None:
    response = client.post("/classifications", data=form)
    assert response.status_code == 422
    assert f'id="{field}-error">' in response.text
    assert message in response.text
    assert queue_length() == 0


def test_a_json_body_instead_of_a_form_is_a_form_error(client: TestClient, queue_length: Callable[[], int]) -> None:
    response = client.post("/classifications", json=COFFEE)
    assert response.status_code == 422
    assert "Pick a model." in response.text
    assert queue_length() == 0


def test_a_status_request_may_wait_for_the_job(client: TestClient) -> None:
    job_id = submit(client, COFFEE["model_id"], COFFEE["image_id"])
    # no worker reads this database: the wait ends with the job still queued
    assert client.get(f"/classifications/{job_id}?wait=1").json() == {"task_status": "queued", "data": None}
    assert client.get(f"/classifications/{job_id}?wait=31").status_code == 422
    assert client.get(f"/classifications/{job_id}?wait=soon").status_code == 422


@pytest.mark.parametrize("job_id", ["3f2b8c1e-0000-4000-8000-000000000000", "not-a-job", "rq:job:x"])
def test_an_unknown_job_is_a_404_with_a_json_message(client: TestClient, job_id: str) -> None:
    response = client.get(f"/classifications/{job_id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "never existed or its result expired" in response.json()["detail"]


def test_a_path_that_is_no_route_is_a_404_pointing_at_the_docs(client: TestClient) -> None:
    response = client.get("/classifications/..%2F..%2Fetc%2Fpasswd/x")
    assert response.status_code == 404
    assert "/docs" in response.json()["detail"]


def test_catalogue_images_are_served_and_nothing_else(client: TestClient) -> None:
    photo = client.get("/images/chelsea.jpg")
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.content[:2] == b"\xff\xd8"
    for path in ("/images/..%2Fmodels", "/images/%2Fetc%2Fpasswd", "/images/missing.jpg"):
        assert client.get(path).status_code == 404


def test_openapi_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/info", "/classifications/{job_id}"} <= set(paths)


def test_pages_are_sent_with_security_headers(client: TestClient) -> None:
    headers = client.get("/classifications").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "script-src" not in headers["content-security-policy"]  # default-src 'self' only
    assert headers["x-frame-options"] == "DENY"


def test_docs_and_errors_are_sent_with_security_headers(client: TestClient) -> None:
    docs = client.get("/docs").headers
    assert "script-src 'self' 'unsafe-inline'" in docs["content-security-policy"]  # Swagger starts inline
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["x-content-type-options"] == "nosniff"
    assert "script-src" not in missing.headers["content-security-policy"]


def test_redis_down_is_a_503_not_a_500(image_dir: Path, model_dir: Path) -> None:
    settings = make_settings(unreachable_redis_url(), image_dir, model_dir)
    with TestClient(create_app(settings)) as client:
        response = client.post("/classifications", data=COFFEE)
        assert response.status_code == 503
        assert "cannot be reached" in response.json()["detail"]
        status = client.get("/classifications/3f2b8c1e-0000-4000-8000-000000000000")
        assert status.status_code == 503


def test_a_file_where_a_field_belongs_is_a_422_that_echoes_nothing(client: TestClient) -> None:
    response = client.post(
        "/classifications",
        files={"model_id": ("secret-name.txt", b"x" * 10, "text/plain")},
        data={"image_id": "coffee.jpg"},
    )
    assert response.status_code == 422
    assert "secret-name" not in response.text
    assert "max_mem_size" not in response.text
