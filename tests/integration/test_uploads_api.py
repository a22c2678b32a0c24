"""Uploads a user might send, good and bad (`tests.upload_corpus`), through POST
/api/v1/classifications in front of the session's real worker: each gets its documented status
and message, a refused one leaves nothing stored, an accepted one is classified and the worker
lives on. The upload over the body limit goes to a real `imgclf web` over a raw socket."""

from __future__ import annotations

import io
import json
import re
import select
import socket
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from redis import Redis

from imgclf.config import Settings
from imgclf.jobs import uploads
from imgclf.web.app import create_app
from tests.integration.raw_http import SOCKET_TIMEOUT, parse, read_until_closed
from tests.integration.v1_helpers import poll, stored_keys
from tests.upload_corpus import Upload, corpus, upright_and_rotated

API = "/api/v1/classifications"
PROBLEM_JSON = "application/problem+json"

UPLOADS = corpus()
REFUSED = [upload for upload in UPLOADS if upload.status != 202 and not upload.too_big_for_transfer]
ACCEPTED = [upload for upload in UPLOADS if upload.status == 202]
(TOO_BIG,) = [upload for upload in UPLOADS if upload.too_big_for_transfer]

SERVER_PATH = re.compile(r"/[\w.-]+/|\\|\.py\b|Traceback|PIL")
"""What would give away the server's files or internals in a message: a path, a module, a trace."""


@pytest.fixture
def connection(worker_settings: Settings) -> Iterator[Redis]:
    """The session worker's database, where the uploads are kept."""
    redis = Redis.from_url(worker_settings.redis_url or "")
    yield redis
    redis.close()


def post_upload(client: TestClient, model: str, name: str, data: bytes) -> Any:
    # The client's content type is a lie on purpose: the bytes alone decide.
    return client.post(API, data={"model": model}, files={"file": (name, data, "image/jpeg")})


@pytest.mark.parametrize("upload", REFUSED, ids=lambda upload: upload.name)
def test_a_refused_upload_gets_its_status_and_message_and_stores_nothing(
    worker_client: TestClient, connection: Redis, upload: Upload
) -> None:
    bytes_before, keys_before = uploads.stored_bytes(connection), stored_keys(connection)
    response = post_upload(worker_client, "efficientnet_lite0", upload.name, upload.data)
    assert response.status_code == upload.status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    detail = response.json()["detail"]
    assert upload.message is not None and upload.message in detail
    assert not SERVER_PATH.search(detail), detail
    assert uploads.stored_bytes(connection) == bytes_before
    assert stored_keys(connection) == keys_before


@pytest.fixture(scope="module")
def uncached_client(worker_settings: Settings, worker: subprocess.Popen[bytes]) -> Iterator[TestClient]:
    """The web app in front of the session's worker, with the result cache off: every accepted
    upload reaches the worker, even bytes another test classified already (the corpus' upright
    photo is the catalogue's chelsea.jpg)."""
    with TestClient(create_app(worker_settings.model_copy(update={"result_cache_ttl": 0}))) as client:
        yield client


@pytest.mark.parametrize("upload", ACCEPTED, ids=lambda upload: upload.name)
def test_an_accepted_upload_is_classified_and_the_worker_lives_on(
    uncached_client: TestClient, worker: subprocess.Popen[bytes], connection: Redis, upload: Upload
) -> None:
    worker_client = uncached_client
    response = post_upload(worker_client, "efficientnet_lite0", upload.name, upload.data)
    assert response.status_code == 202, response.text
    image = response.json()["image"]
    assert (image["format"], (image["width"], image["height"])) == (upload.format, upload.size)
    assert uploads.original(connection, image["sha256"]) == upload.data
    done = poll(worker_client, response.headers["location"])
    assert done["status"] == "succeeded", done["error"]
    assert len(done["result"]["top5"]) == 5
    shown = worker_client.get(f"{response.headers['location']}/image")
    assert shown.status_code == 200
    with Image.open(io.BytesIO(shown.content)) as picture:
        assert picture.format == "JPEG"
        width, height = upload.size or (0, 0)
        assert (picture.width >= picture.height) == (width >= height)  # shown upright
    assert worker.poll() is None, "the worker died classifying this upload"


def test_an_exif_rotated_photo_is_classified_as_the_upright_one(worker_client: TestClient) -> None:
    upright, rotated = upright_and_rotated()
    # The same sideways pixels with no orientation tag: what a service that ignored EXIF would classify.
    with Image.open(io.BytesIO(rotated)) as picture:
        sideways = io.BytesIO()
        picture.save(sideways, format="JPEG", quality=95)

    def top5(name: str, data: bytes) -> list[str]:
        # efficientnet_lite1: its top 5 for this photo differs when the photo lies on its side.
        response = post_upload(worker_client, "efficientnet_lite1", name, data)
        assert response.status_code in (200, 202), response.text
        done = poll(worker_client, response.headers["location"])
        assert done["status"] == "succeeded", done["error"]
        return [entry["label"] for entry in done["result"]["top5"]]

    expected = top5("upright.jpg", upright)
    assert top5("sideways.jpg", sideways.getvalue()) != expected  # so the comparison below can fail
    got = top5("rotated.jpg", rotated)
    assert got[0] == expected[0]
    assert got == expected


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_upload_over_the_body_limit_is_refused_without_reading_the_rest(
    live_server: str, connection: Redis, framing: str
) -> None:
    """The 11 MB file, to a real server over a raw socket: with a Content-Length, 413 before the
    body is read; chunked, 413 once the limit is passed, never waiting for the body's end. Either
    way the server closes the connection instead of reading the rest."""
    boundary = "imgclf-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nefficientnet_lite0\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{TOO_BIG.name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + TOO_BIG.data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    piece = 64 * 1024
    pieces = [body[start : start + piece] for start in range(0, len(body), piece)]
    if framing == "chunked":  # and never the last, empty chunk
        length = "Transfer-Encoding: chunked"
        pieces = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for chunk in pieces]
    else:
        length = f"Content-Length: {len(body)}"
    head = (
        f"POST {API} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n{length}\r\n\r\n"
    ).encode()
    bytes_before = uploads.stored_bytes(connection)
    parts = urlsplit(live_server)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=SOCKET_TIMEOUT)
    sock.sendall(head)
    sent = 0
    # Send the body as a client does, until the server answers or stops taking bytes.
    while sent < len(pieces) and not select.select([sock], [], [], 0.01)[0]:
        try:
            sock.sendall(pieces[sent])
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
    status, headers, content = parse(read_until_closed(sock))
    if framing == "content-length":
        assert sent < len(pieces), "the server answered only once the whole body was sent"
    assert status == 413
    assert headers["connection"] == "close"
    assert headers["content-type"] == PROBLEM_JSON
    assert TOO_BIG.message is not None and TOO_BIG.message in json.loads(content)["detail"]
    assert uploads.stored_bytes(connection) == bytes_before
