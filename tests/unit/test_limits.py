from collections.abc import Iterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from imgclf.config import Settings
from imgclf.web.middleware.body_limits import BodyLimitMiddleware, body_limit


def make_client() -> TestClient:
    router = APIRouter()  # included, as the service's routes are

    @router.post("/form")
    async def form(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @router.post("/upload")
    @body_limit("max_upload_bytes")
    async def upload(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @router.post("/unread")
    def unread() -> dict[str, str]:
        return {"status": "answered without reading the body"}

    app = FastAPI()
    app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, settings=Settings(max_form_bytes=1024, max_upload_bytes=4096))
    return TestClient(app)


def test_a_route_takes_the_limit_it_declares_and_every_other_route_the_form_limit() -> None:
    client = make_client()
    refused = client.post("/form", content=b"x" * 2000)
    assert refused.status_code == 413
    assert refused.headers["connection"] == "close"
    assert "1,024 bytes" in refused.json()["detail"]
    assert client.post("/upload", content=b"x" * 2000).json() == {"received": 2000}
    too_large = client.post("/upload", content=b"x" * 5000)
    assert too_large.status_code == 413
    assert "4,096 bytes" in too_large.json()["detail"]


def test_a_body_without_a_length_is_counted_as_it_arrives() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b"x" * 500

    client = make_client()
    refused = client.post("/form", content=chunks())
    assert refused.status_code == 413
    assert client.post("/upload", content=chunks()).json() == {"received": 1500}


def test_a_route_that_does_not_read_the_body_still_refuses_one_over_the_limit() -> None:
    client = make_client()
    assert client.post("/unread", content=b"x" * 2000).status_code == 413
    answered = client.post("/unread", content=b"x" * 100)
    assert answered.status_code == 200
    assert answered.headers["connection"] == "close"  # the unread rest is not drained
