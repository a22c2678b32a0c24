"""HEAD wherever GET works, as a pure ASGI middleware.

FastAPI's routes answer only the methods they declare, so `HEAD /` was a 405 (measured). HTTP
says a server should answer HEAD like GET without the body: link checkers, monitors and caches
use it. The app sees a GET; this layer drops the body bytes and keeps the headers, so
Content-Length is the GET's.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadMiddleware:
    """Runs a HEAD request as a GET and sends the headers without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # A copy: the server's own scope keeps HEAD, so it writes no body either.
        await self.app({**scope, "method": "GET"}, receive, send_without_body)
