"""`imgclf.ops.remote` against a stand-in for the service (httpx's MockTransport): the URL check,
resending with the same Idempotency-Key, bounded retries, redirects, and the printed table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from imgclf.ops import remote
from imgclf.ops.remote import InvalidServiceUrl, Outcome, ServiceUnreachable, classify_remote, render_table

BASE = "http://imgclf.test:8000"
TOP5 = [
    {"label": "tabby", "class_index": 281, "probability": 0.5},
    {"label": "tiger cat", "class_index": 282, "probability": 0.25},
    {"label": "Egyptian cat", "class_index": 285, "probability": 0.125},
    {"label": "lynx", "class_index": 287, "probability": 0.0625},
    {"label": "tiger", "class_index": 292, "probability": 0.03125},
]

Handler = Callable[[httpx.Request], httpx.Response]


def job(status: str, job_id: str = "job-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job_id,
        "status": status,
        "model": "m",
        "result": None,
        "error": None,
        "cached": False,
    }
    if status == "succeeded":
        body["result"] = {"top5": TOP5}
    return {**body, **fields}


def problem(status: int, detail: str, slug: str, **headers: str) -> httpx.Response:
    body = {"type": f"urn:imgclf:problem:{slug}", "title": "t", "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json", **headers})


def run(handler: Handler, files: list[Path], timeout: float = 10) -> list[Outcome]:
    return classify_remote(BASE, "m", files, timeout=timeout, transport=httpx.MockTransport(handler))


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "cat.jpg"
    path.write_bytes(b"\xff\xd8 stand-in bytes")
    return path


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "NETWORK_BACKOFF_SECONDS", 0)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "https://imgclf.example/prefix/", "http://[::1]:8000"])
def test_http_and_https_urls_with_a_host_are_services(url: str) -> None:
    assert remote.service_url(url).host


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8000", "localhost", "ftp://host", "http://", "http:///x", "http://h:99999", "http://h/?q=1", ""]
)
def test_other_urls_are_refused_with_an_example_of_a_good_one(url: str) -> None:
    with pytest.raises(InvalidServiceUrl, match=re.escape("like http://127.0.0.1:8000")):
        remote.service_url(url)


def test_a_busy_answer_is_retried_with_the_same_idempotency_key(photo: Path) -> None:
    posts: list[httpx.Request] = []

    def service(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
            if len(posts) == 1:
                return problem(503, "The service is busy", "queue-full", **{"Retry-After": "0"})
            return httpx.Response(202, json=job("queued"))
        assert 1 <= int(request.url.params["wait"]) <= 10  # the time left, at most
        return httpx.Response(200, json=job("succeeded"))

    [outcome] = run(service, [photo])

    assert outcome.succeeded
    assert len(posts) == 2
    assert posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
    assert b'name="model"\r\n\r\nm\r\n' in posts[1].content
    assert b'filename="cat.jpg"' in posts[1].content


def test_a_post_lost_on_the_network_is_resent_with_the_same_key_and_each_file_has_its_own(
    photo: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.png"
    other.write_bytes(b"\x89PNG stand-in")
    keys: list[str] = []

    def service(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json=job("succeeded", job_id=f"job-{len(keys)}", cached=True))

    outcomes = run(service, [photo, other])

    assert [outcome.succeeded for outcome in outcomes] == [True, True]
    assert keys[0] == keys[1] != keys[2]


def test_busy_answers_are_retried_a_bounded_number_of_times(photo: Path) -> None:
    posts = 0

    def service(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        posts += 1
        return problem(
            503, "The service is busy: 1,000 classifications are already waiting.", "queue-full", **{"Retry-After": "0"}
        )

    [outcome] = run(service, [photo])

    assert posts == remote.MAX_BUSY_RETRIES + 1
    assert outcome.error == {
        "code": "queue-full",
        "message": "The service is busy: 1,000 classifications are already waiting. (503 Service Unavailable)",
    }


def test_a_service_that_never_answers_ends_the_run(photo: Path) -> None:
    attempts = 0

    def service(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(
        ServiceUnreachable,
        match=r"^cannot reach http://imgclf.test:8000 \(\[Errno 111\] Connection refused; tried 4 times\)$",
    ):
        run(service, [photo])
    assert attempts == remote.MAX_NETWORK_RETRIES + 1


def test_a_redirect_is_reported_not_followed(photo: Path) -> None:
    hosts: list[str] = []

    def service(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(307, headers={"Location": "http://elsewhere.example/api/v1/classifications"})

    [outcome] = run(service, [photo])

    assert hosts == ["imgclf.test"]
    assert outcome.error is not None
    assert outcome.error["code"] == "redirect"
    assert "http://elsewhere.example/api/v1/classifications" in outcome.error["message"]


def test_an_unreadable_file_fails_alone(photo: Path, tmp_path: Path) -> None:
    def service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=job("succeeded"))

    missing, ok = run(service, [tmp_path / "missing.jpg", photo])

    assert missing.error == {"code": "unreadable", "message": "cannot read the file: No such file or directory"}
    assert missing.as_json() == {
        "file": str(tmp_path / "missing.jpg"),
        "id": None,
        "status": "failed",
        **{"error": missing.error},
    }
    assert ok.succeeded


def test_a_job_unfinished_at_the_deadline_is_a_failure_that_says_where_it_goes_on(photo: Path) -> None:
    def service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json=job("queued", job_id="abc"))

    [outcome] = run(service, [photo], timeout=0)

    assert not outcome.succeeded
    assert outcome.as_json()["status"] == "queued"
    assert outcome.error == {
        "code": "timeout",
        "message": f"not finished before the timeout; the job goes on: {BASE}/api/v1/classifications/abc",
    }


def test_an_answer_that_is_not_a_job_is_a_failure(photo: Path) -> None:
    def service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>some other site</html>")

    [outcome] = run(service, [photo])

    assert outcome.error is not None
    assert outcome.error["code"] == "not-a-job"


def test_the_table_gives_each_files_top5_or_why_it_failed(tmp_path: Path) -> None:
    outcomes = [
        Outcome(Path("cat.jpg"), job=job("succeeded")),
        Outcome(Path("cached.jpg"), job=job("succeeded", cached=True)),
        Outcome(Path("broken.jpg"), job=job("failed", error={"code": "invalid-image", "message": "Not decodable."})),
        Outcome(Path("notes.jpg"), error={"code": "unsupported-image", "message": "Not an image. (415 Unsupported)"}),
    ]

    assert render_table(outcomes) == (
        "cat.jpg  succeeded\n"
        " 50.00 %  tabby\n"
        " 25.00 %  tiger cat\n"
        " 12.50 %  Egyptian cat\n"
        "  6.25 %  lynx\n"
        "  3.12 %  tiger\n"
        "\n"
        "cached.jpg  succeeded (cached)\n"
        " 50.00 %  tabby\n"
        " 25.00 %  tiger cat\n"
        " 12.50 %  Egyptian cat\n"
        "  6.25 %  lynx\n"
        "  3.12 %  tiger\n"
        "\n"
        "broken.jpg  failed: Not decodable.\n"
        "\n"
        "notes.jpg  failed: Not an image. (415 Unsupported)"
    )
    assert json.loads(remote.render_json(outcomes[:1])) == [{"file": "cat.jpg", **job("succeeded")}]
