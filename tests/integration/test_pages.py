"""The pages' routes as a program sees them: the form's post (a catalogue photo or an upload) and its
303 to the result page, refusals on the form, and the result page for every state of a job, rendered
on the server (what a browser without JavaScript shows)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from imgclf.jobs import uploads
from imgclf.web.app import create_app
from tests.conftest import (
    CATS,
    fresh_photo,
    job_id_from_location,
    job_id_from_page,
    make_settings,
    submit,
    unreachable_redis_url,
)
from tests.integration.v1_helpers import pretend_running
from tests.pictures import unique_jpeg, write_blank_bilevel_png

LITE0 = "efficientnet_lite0"


@pytest.fixture
def connection(redis_url: str) -> Iterator[Redis]:
    """A client of the database the `client` fixture's app uses."""
    redis = Redis.from_url(redis_url)
    yield redis
    redis.close()


def post_upload(client: TestClient, data: bytes, name: str = "my cat.jpg", **fields: str) -> Any:
    """Post the form with a file, as a browser does."""
    return client.post(
        "/classifications",
        data={"model_id": LITE0, **fields},
        files={"file": (name, data, "image/jpeg")},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )


def test_pages_link_the_api_docs_only_where_they_are_public(redis_url: str, image_dir: Path, model_dir: Path) -> None:
    with TestClient(create_app(make_settings(redis_url, image_dir, model_dir))) as client:
        assert 'href="/docs"' in client.get("/").text
        assert "/docs" in client.get("/no-such-page").json()["detail"]
    hidden = make_settings(redis_url, image_dir, model_dir, api_docs_public=False)
    with TestClient(create_app(hidden)) as client:
        assert "/docs" not in client.get("/").text  # behind the compose balancer, /docs is a 404
        assert "/docs" not in client.get("/no-such-page").json()["detail"]


def test_the_form_offers_the_catalogue_and_an_upload_with_its_limit(client: TestClient) -> None:
    page = client.get("/classifications").text
    assert 'enctype="multipart/form-data"' in page
    assert '<input type="file" id="file" name="file"' in page
    assert '<label for="file">' in page
    assert f'data-max-file-bytes="{10 * 1024 * 1024 - 2048}"' in page
    assert "at most 10 MB" in page
    # The catalogue's first photo is picked, as before uploads: "None" is for those who upload.
    assert re.search(r'<option value="" >None: I upload a photo below</option>\s*<option value="[^"]+" selected>', page)


def test_an_upload_is_queued_and_the_result_page_shows_it_back_re_encoded(
    client: TestClient, image_dir: Path, queue_length: Callable[[], int]
) -> None:
    answer = post_upload(client, unique_jpeg(image_dir))
    assert answer.status_code == 303, answer.text
    job_id = job_id_from_location(answer.headers["location"])
    assert f'href="/results/{job_id}"' in answer.text  # the note a 303 carries
    assert queue_length() == 1
    page = client.get(answer.headers["location"])
    assert page.status_code == 200
    assert job_id_from_page(page.text) == job_id
    assert f'<img src="/api/v1/classifications/{job_id}/image" alt="my cat.jpg">' in page.text
    assert "451 x 300 pixels" in page.text and "classified by EfficientNet-Lite0" in page.text
    assert 'data-status="queued">1st in line, about 30 s</p>' in page.text  # no worker: the default ETA
    assert '<meta http-equiv="refresh"' in page.text  # without JavaScript the page reloads itself
    shown = client.get(f"/api/v1/classifications/{job_id}/image")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("upload", "fields", "status", "message"),
    [
        (lambda photo: b"%PDF-1.4 not a photo", {}, 415, "not an image the service accepts"),
        (lambda photo: photo[:3000], {}, 422, "truncated or damaged"),
        (lambda photo: photo, {"image_id": "chelsea.jpg"}, 422, "not both"),
    ],
)
def test_a_bad_upload_gets_the_form_back_with_the_reason_on_the_file_field(
    client: TestClient,
    image_dir: Path,
    queue_length: Callable[[], int],
    upload: Callable[[bytes], bytes],
    fields: dict[str, str],
    status: int,
    message: str,
) -> None:
    answer = post_upload(client, upload(unique_jpeg(image_dir)), **fields)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert 'id="file-error" role="alert">' in answer.text
    assert message in answer.text
    assert '<form method="post"' in answer.text
    assert queue_length() == 0


def test_an_upload_with_too_many_pixels_is_a_413_on_the_file_field(
    client: TestClient, tmp_path: Path, queue_length: Callable[[], int]
) -> None:
    huge = tmp_path / "huge.png"
    write_blank_bilevel_png(huge, 20_000, 20_000)  # 400 megapixels in a small file
    answer = post_upload(client, huge.read_bytes(), "huge.png")
    assert answer.status_code == 413
    assert 'id="file-error" role="alert">' in answer.text and "40,000,000 pixels" in answer.text
    assert '<option value="" selected>None: I upload a photo below</option>' in answer.text  # as it was posted
    assert queue_length() == 0


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(
    redis_url: str, image_dir: Path, model_dir: Path
) -> None:
    settings = make_settings(redis_url, image_dir, model_dir, max_upload_bytes=4096)
    with TestClient(create_app(settings)) as client:
        # A browser with JavaScript off (no check before sending) gets a page, not JSON.
        page = post_upload(client, unique_jpeg(image_dir))
        assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")
        assert "4,096 bytes" in page.text and 'href="/classifications"' in page.text
        program = client.post(
            "/classifications",
            data={"model_id": LITE0},
            files={"file": ("big.jpg", unique_jpeg(image_dir), "image/jpeg")},
        )
        assert program.status_code == 413 and "4,096 bytes" in program.json()["detail"]
        form = client.get("/classifications").text
        assert f'data-max-file-bytes="{4096 - 2048}"' in form  # what the page checks before sending


def test_the_same_photo_uploaded_twice_is_two_jobs_and_one_stored_copy(
    client: TestClient, image_dir: Path, queue_length: Callable[[], int], connection: Redis
) -> None:
    # Never another person's job (their file name, their DELETE); the bytes are kept once.
    data = unique_jpeg(image_dir)
    before = uploads.stored_bytes(connection)
    first, second = post_upload(client, data), post_upload(client, data)
    assert first.headers["location"] != second.headers["location"]
    assert queue_length() == 2
    once = uploads.stored_bytes(connection) - before
    assert len(data) < once < 2 * len(data)  # the original and its small copy, once


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-job", "rq:job:x", "x" * 300])
def test_an_unknown_or_expired_result_is_a_404_page_that_links_to_the_form(client: TestClient, job_id: str) -> None:
    page = client.get(f"/results/{job_id}")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "expired or never existed" in page.text
    assert 'href="/classifications"' in page.text
    assert job_id not in page.text


def test_the_result_page_says_where_a_job_stands(client: TestClient, connection: Redis, image_dir: Path) -> None:
    jobs = [submit(client, LITE0, fresh_photo(image_dir)) for _ in range(3)]
    assert ">3rd in line, about 30 s</p>" in client.get(f"/results/{jobs[2]}").text

    pretend_running(connection, jobs[2], attempt=2)
    page = client.get(f"/results/{jobs[2]}").text
    assert 'data-status="running">running (attempt 2 of 3)</p>' in page  # job_retries 2: three tries
    assert '<meta http-equiv="refresh"' in page

    assert client.delete(f"/api/v1/classifications/{jobs[1]}").status_code == 204
    page = client.get(f"/results/{jobs[1]}").text
    assert 'data-status="canceled">Canceled.</p>' in page
    assert "The job was canceled" in page
    assert '<meta http-equiv="refresh"' not in page


def test_a_finished_job_is_drawn_by_the_server(worker_client: TestClient, image_dir: Path) -> None:
    photo = fresh_photo(image_dir)
    job_id = submit(worker_client, LITE0, photo)
    assert worker_client.get(f"/api/v1/classifications/{job_id}?wait=30").json()["status"] == "succeeded"
    page = worker_client.get(f"/results/{job_id}").text
    assert 'data-status="succeeded">Done.</p>' in page
    rows = re.findall(r'<li><span class="label">([^<]+)</span>.*?<rect class="bar" width="([0-9.]+)"', page)
    assert len(rows) == 5 and rows[0][0] in CATS
    widths = [float(width) for _, width in rows]
    assert widths == sorted(widths, reverse=True) and 0 < widths[0] <= 100
    assert "<dt>The model</dt><dd>" in page and "<dt>Total</dt><dd>" in page
    assert '<meta http-equiv="refresh"' not in page

    again = submit(worker_client, LITE0, photo)
    assert 'data-status="succeeded">Done (from the cache).</p>' in worker_client.get(f"/results/{again}").text


def test_a_failed_job_says_why_in_words(worker_client: TestClient) -> None:
    job_id = submit(worker_client, LITE0, "broken.jpg")
    worker_client.get(f"/api/v1/classifications/{job_id}?wait=30")
    page = worker_client.get(f"/results/{job_id}").text
    assert 'data-status="failed">Failed.</p>' in page
    assert "could not be decoded" in page
    assert 'class="chart"' not in page and "<title>Classification failed - Image classifier</title>" in page


def test_the_result_page_without_redis_is_a_503_page(image_dir: Path, model_dir: Path) -> None:
    with TestClient(create_app(make_settings(unreachable_redis_url(), image_dir, model_dir))) as client:
        page = client.get(f"/results/{uuid.uuid4()}")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == "5"
    assert "cannot be reached" in page.text


def test_a_result_page_shows_histograms_downloads_and_the_way_to_try_again(
    worker_client: TestClient, image_dir: Path
) -> None:
    photo = fresh_photo(image_dir)
    posted = worker_client.post(
        "/classifications",
        data={"model_id": LITE0, "image_id": photo, "brightness": "1.30", "rotate": "90", "flip": "true"},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    job_id = job_id_from_location(posted.headers["location"])
    done = worker_client.get(f"/api/v1/classifications/{job_id}?wait=30").json()
    assert done["adjustments"] == {
        "brightness": 1.3,
        "contrast": 1.0,
        "color": 1.0,
        "sharpness": 1.0,
        "rotate": 90,
        "flip": True,
    }
    page = worker_client.get(f"/results/{job_id}").text
    best = done["result"]["top5"][0]
    assert f"<title>{best['label']}, {best['probability'] * 100:.0f} % - Image classifier</title>" in page
    paths = re.findall(r'<path class="(red|green|blue|luminance)" d="M([^"]+)"/>', page)
    assert [name for name, _ in paths] == ["luminance", "red", "green", "blue"]
    assert all(len(points.split(" L")[-1].split()) >= 2 for _, points in paths)
    assert "with brightness 1.3, rotated 90°, flipped" in page
    assert f"/api/v1/classifications/{job_id}/image?adjusted=true" in page  # the photo as the model saw it
    for link in (f"{job_id}/chart.png?download=true", f"{job_id}?download=true"):
        assert f'href="/api/v1/classifications/{link}" download' in page
    assert f'href="/classifications?again={job_id}"' in page and f'href="/compare?again={job_id}"' in page

    again = worker_client.get(f"/classifications?again={job_id}").text
    assert f'<option value="{photo}" selected>' in again
    assert 'id="brightness" name="brightness" min="0" max="2" step="0.05" value="1.30"' in again
    assert '<option value="90" selected>' in again and 'id="flip" name="flip" value="true" checked' in again


def test_trying_an_upload_again_reuses_its_stored_photo(worker_client: TestClient, image_dir: Path) -> None:
    first = post_upload(worker_client, unique_jpeg(image_dir), name="holiday.jpg")
    first_id = job_id_from_location(first.headers["location"])
    before = worker_client.get(f"/api/v1/classifications/{first_id}?wait=30").json()
    form = worker_client.get(f"/classifications?again={first_id}").text
    assert f'<option value="job:{first_id}" data-preview-url="/api/v1/classifications/{first_id}/image" selected>' in (
        form
    )
    assert "Your photo from the earlier result: holiday.jpg" in form
    posted = worker_client.post(
        "/classifications",
        data={"model_id": LITE0, "image_id": f"job:{first_id}", "contrast": "0.50"},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    second = worker_client.get(posted.headers["location"].replace("/results/", "/api/v1/classifications/")).json()
    assert second["image"] == before["image"]  # the same stored upload, its name kept
    assert second["adjustments"]["contrast"] == 0.5

    worker_client.delete(f"/api/v1/classifications/{first_id}")
    worker_client.delete(f"/api/v1/classifications/{second['id']}")  # the photo is gone with its last job
    gone = worker_client.post(
        "/classifications",
        data={"model_id": LITE0, "image_id": f"job:{first_id}"},
        headers={"Accept": "text/html"},
    )
    assert gone.status_code == 422 and "no longer stored" in gone.text
    unknown = worker_client.post(
        "/classifications", data={"model_id": LITE0, "image_id": f"job:{uuid.uuid4()}"}, headers={"Accept": "text/html"}
    )
    assert unknown.status_code == 422 and "no longer stored" in unknown.text


def test_adjustments_out_of_range_come_back_on_the_form(client: TestClient, image_dir: Path) -> None:
    page = client.post(
        "/classifications",
        data={"model_id": LITE0, "image_id": fresh_photo(image_dir), "brightness": "7", "rotate": "45"},
        headers={"Accept": "text/html"},
    )
    assert page.status_code == 422
    assert page.text.count("Send a number from 0 to 2") == 2  # the summary and beside the slider
    assert "Send 0, 90, 180 or 270 (degrees clockwise)." in page.text
