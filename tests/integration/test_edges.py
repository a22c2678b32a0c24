"""The web process's edges: limits on request heads and bodies, HEAD, links, form origins, errors.

Limits that uvicorn's protocol enforces are checked against real `imgclf web` processes over raw
sockets; what the app decides alone is checked in process, against a Redis database no worker reads.
"""

import json
import logging
import select
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from imgclf.ops.embedded_redis import free_port
from imgclf.web.app import create_app
from tests.conftest import make_settings, running_web, unreachable_redis_url
from tests.integration.raw_http import connect, parse, read_until_closed

MB = 1024 * 1024
FORM = "application/x-www-form-urlencoded"
CHELSEA = {"model_id": "efficientnet_lite0", "image_id": "chelsea.jpg"}
CROSS_SITE = "posted from another site"


@pytest.fixture(scope="module")
def strict_server(fresh_redis_url: Callable[[], str], image_dir: Path, model_dir: Path) -> Iterator[str]:
    """An `imgclf web` of this module's own: 1 s to send a head or a body, answering 127.0.0.1 only,
    uploads (the form's body) up to 16 KiB."""
    settings = make_settings(
        fresh_redis_url(),
        image_dir,
        model_dir,
        port=free_port(),
        header_timeout=1,
        body_timeout=1,
        allowed_hosts=["127.0.0.1"],
        max_upload_bytes=16_384,
    )
    with running_web(settings) as url:
        yield url


def request_head(method: str, path: str, *headers: str) -> bytes:
    """A request line and headers (Host first), ready to send."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    return "".join(f"{line}\r\n" for line in lines).encode() + b"\r\n"


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_sent(live_server: str) -> None:
    sock = connect(live_server)
    sock.sendall(request_head("POST", "/classifications", f"Content-Type: {FORM}", "Content-Length: 1000000000"))
    status, headers, body = parse(read_until_closed(sock))  # not a byte of the body was sent
    assert status == 413
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert "10,485,760 bytes" in json.loads(body)["detail"]  # the form takes uploads: IMGCLF_MAX_UPLOAD_BYTES


def test_a_chunked_body_is_refused_once_it_passes_the_limit(strict_server: str) -> None:
    sock = connect(strict_server)
    sock.sendall(request_head("POST", "/classifications", f"Content-Type: {FORM}", "Transfer-Encoding: chunked"))
    for _ in range(17):  # 17,000 bytes, and never the last chunk: the server must not wait for the end
        sock.sendall(b"3e8\r\n" + b"a" * 1000 + b"\r\n")
    status, headers, body = parse(read_until_closed(sock))
    assert status == 413
    assert headers["connection"] == "close"
    assert "16,384 bytes" in json.loads(body)["detail"]


def test_a_body_sent_too_slowly_is_a_408(strict_server: str) -> None:
    sock = connect(strict_server)
    sock.sendall(request_head("POST", "/classifications", f"Content-Type: {FORM}", "Content-Length: 100"))
    sock.sendall(b"model_id=")  # and then nothing
    status, headers, body = parse(read_until_closed(sock))
    assert status == 408
    assert headers["connection"] == "close"
    assert "did not arrive within 1 s" in json.loads(body)["detail"]


def test_headers_over_the_size_limit_are_a_431(live_server: str) -> None:
    sock = connect(live_server)
    sock.sendall(request_head("GET", "/", "X-Padding: " + "a" * 20_000))
    status, headers, body = parse(read_until_closed(sock))
    assert status == 431
    assert headers["connection"] == "close"
    assert headers["x-content-type-options"] == "nosniff"
    assert "16,384 bytes" in json.loads(body)["detail"]


def test_a_huge_header_is_refused_before_it_is_sent_whole(live_server: str) -> None:
    sock = connect(live_server)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
    piece = b"a" * 65536
    sent = 0
    while sent < 50 * MB and not select.select([sock], [], [], 0.01)[0]:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
    assert sent < 50 * MB, "the server read a 50 MB header without answering"
    status, _, _ = parse(read_until_closed(sock))
    assert status == 431


def test_more_than_100_header_fields_are_a_431(live_server: str) -> None:
    fields = [f"X-Field-{n}: {n}" for n in range(100)]  # with Host: 101
    sock = connect(live_server)
    sock.sendall(request_head("GET", "/healthz", "Connection: close", *fields[:98]))  # 100 in all
    assert parse(read_until_closed(sock))[0] == 200
    sock = connect(live_server)
    sock.sendall(request_head("GET", "/healthz", *fields))
    status, _, body = parse(read_until_closed(sock))
    assert status == 431
    assert "more header fields" in json.loads(body)["detail"]


def test_a_client_that_never_finishes_its_request_head_is_disconnected(strict_server: str) -> None:
    sock = connect(strict_server)
    sock.sendall(b"GET /hea")  # half a request line, then silence
    assert read_until_closed(sock) == b""


@pytest.mark.parametrize("path", ["/", "/classifications", "/info", "/images/chelsea.jpg"])
def test_head_answers_like_get_without_the_body(live_server: str, path: str) -> None:
    head = httpx.head(f"{live_server}{path}")
    get = httpx.get(f"{live_server}{path}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["x-content-type-options"] == "nosniff"


def test_links_never_come_from_the_host_header(live_server: str) -> None:
    with httpx.Client(base_url=live_server, headers={"Host": "evil.example"}) as evil:
        home = evil.get("/")
        form = evil.get("/classifications")
        posted = evil.post("/classifications", data=CHELSEA)
        result = evil.get(posted.headers["location"])
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/results/")  # a path: never a URL from the Host header
    for page in (home, form, result):
        assert page.status_code == 200
        assert "evil.example" not in page.text
    assert 'href="/static/style.css"' in home.text
    assert 'action="/classifications"' in form.text
    assert 'src="/images/chelsea.jpg"' in result.text
    assert 'data-events-url="/api/v1/classifications/' in result.text


def test_links_stay_under_the_root_path(redis_url: str, image_dir: Path, model_dir: Path) -> None:
    app = create_app(make_settings(redis_url, image_dir, model_dir))
    with TestClient(app, root_path="/imgclf") as client:
        home = client.get("/").text
    assert 'href="/imgclf/static/style.css"' in home
    assert 'href="/imgclf/classifications"' in home
    assert 'href="/imgclf/docs"' in home
    assert "testserver" not in home


def test_a_host_that_is_not_allowed_is_refused(strict_server: str) -> None:
    refused = httpx.get(f"{strict_server}/", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert "host" in refused.text.lower()
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{strict_server}/").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
        {"Origin": "http://evil.example"},
        {"Origin": "http://testserver:8080"},
        {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_form_posted_from_another_site_is_refused_and_queues_nothing(
    client: TestClient, queue_length: Callable[[], int], headers: dict[str, str]
) -> None:
    response = client.post("/classifications", data=CHELSEA, headers=headers)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert CROSS_SITE in response.text
    assert '<form method="post"' in response.text
    assert queue_length() == 0


def test_a_form_posted_from_this_site_or_by_a_program_is_queued(
    client: TestClient, queue_length: Callable[[], int]
) -> None:
    refused = client.post("/classifications", data=CHELSEA, headers={"Origin": "http://elsewhere.example"})
    assert refused.status_code == 403
    from_the_page = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    for headers in (from_the_page, {"Sec-Fetch-Site": "none"}, {}):  # the last: curl, scripts
        response = client.post("/classifications", data=CHELSEA, headers=headers, follow_redirects=False)
        assert response.status_code == 303
    assert queue_length() == 1  # the same photo and model: one job, answered to all three


def test_an_unhandled_exception_is_a_json_500_with_the_security_headers(
    image_dir: Path, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(unreachable_redis_url(), image_dir, model_dir))

    @app.get("/explode")
    def explode() -> None:
        raise RuntimeError("cannot open /srv/imgclf/secret.key")

    with caplog.at_level(logging.ERROR):
        response = TestClient(app).get("/explode")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src" not in response.headers["content-security-policy"]
    detail = response.json()["detail"]
    assert "went wrong" in detail
    assert "secret" not in detail and "/srv" not in detail and "RuntimeError" not in detail
    logged = [record for record in caplog.records if record.exc_info]
    assert logged and "/explode" in logged[0].getMessage()
    assert "secret.key" in caplog.text  # the traceback is in the log


def test_a_503_says_when_to_try_again(image_dir: Path, model_dir: Path) -> None:
    settings = make_settings(unreachable_redis_url(), image_dir, model_dir)
    with TestClient(create_app(settings)) as client:
        response = client.post("/classifications", data=CHELSEA)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "cannot be reached" in response.json()["detail"]
