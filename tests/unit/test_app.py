"""The app's own answers, before any route touches Redis (so no Redis runs here)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imgclf.config import Settings
from imgclf.web.app import create_app
from tests.conftest import unreachable_redis_url


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(redis_url=unreachable_redis_url(), data_dir=tmp_path)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/classifications", "GET, HEAD, POST"),  # the form (GET) and its post
        ("PUT", "/classifications/0b4a2d3c-1111-4222-8333-444455556666", "GET, HEAD"),
        ("POST", "/", "GET, HEAD"),
        ("POST", "/static/style.css", "GET, HEAD"),
    ],
)
def test_a_405_names_every_method_the_path_answers(client: TestClient, method: str, path: str, allowed: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json()["detail"] == f"{method} is not allowed on {path}; it answers {allowed}."
