"""Request body limits, per route, enforced while the body arrives (a pure ASGI middleware).

Measured before this existed: bodies of 100 MB to 1 GB were accepted, spooled to /tmp by the
form parser, and a job was queued. Now every request body is bounded before it is read whole:

- The limit is the route's: `max_form_bytes` (8 KiB) for the form and every other route (a
  form with two ids is under 200 bytes, so 8 KiB leaves room for any honest client), or a
  larger setting a route declares with `@body_limit(...)` (`max_upload_bytes` for uploads).
- A Content-Length over the limit is answered 413 at the route's first read of the body,
  before a byte of it is read (so no `100 Continue` either), or instead of the route's answer
  if it never reads its body. A chunked body is counted as it arrives and refused once over.
- A body that takes longer than `body_timeout` seconds (30 s: 8 KiB in 30 s is a 2 kbit/s
  link) is answered 408, so a slow sender cannot hold a request open.
- Every such refusal closes the connection (`Connection: close`): the server then drops the
  rest of the body instead of reading it to reach the next request. So does any answer given
  without reading the whole body.

It is pure ASGI for the reason given in `imgclf.web.middleware.security_headers`. The limit is looked up when
the body is first read, because only then has the router picked the route (Starlette records it
as `scope["endpoint"]`); requests without a body pass straight through. FastAPI's own
`max_body_size` is not used (so do not give a route one as well): it takes a number at import,
before the settings exist, answers 413 as plain text when a route never reads its body, keeps
the connection open, and has no time limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imgclf.config import Settings
from imgclf.errors import RequestTimeout, RequestTooLarge, ServiceError
from imgclf.web.error_response import error_response

BodyLimit = Literal["max_form_bytes", "max_upload_bytes"]
"""The settings a route may take its body limit from."""

DEFAULT_LIMIT: BodyLimit = "max_form_bytes"

_LIMIT_ATTRIBUTE = "__imgclf_body_limit__"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def body_limit(setting: BodyLimit) -> Callable[[Endpoint], Endpoint]:
    """Give a route the body limit of `setting` instead of `max_form_bytes`.

    Put it under the route's decorator:

        @router.post("/uploads")
        @body_limit("max_upload_bytes")
        async def upload(...) -> ...: ...
    """

    def declare(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _LIMIT_ATTRIBUTE, setting)
        return endpoint

    return declare


class BodyLimitMiddleware:
    """Answers 413 past the route's body limit and 408 past `body_timeout`, and closes."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit_for(self, scope: Scope) -> int:
        """The body limit of the route the router picked (the default when there is none)."""
        setting = getattr(scope.get("endpoint"), _LIMIT_ATTRIBUTE, DEFAULT_LIMIT)
        return int(getattr(self.settings, setting))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_framing(scope["headers"])
        if not declared and not chunked:
            await self.app(scope, receive, send)
            return
        body = _GuardedBody(self, scope, receive, send, declared)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            # The app's reaction to a refused read (FastAPI calls it a malformed body) is not the
            # answer; the refusal below is.
            if body.refusal is None:
                raise
        if body.refusal is not None and not body.response_started:
            accept = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"accept"), "")
            refusal = error_response(body.refusal, close_connection=True, path=scope.get("path", ""), accept=accept)
            await refusal(scope, receive, send)


class _GuardedBody:
    """One request's body as the app reads it: counted, timed, and refused past a limit."""

    def __init__(
        self, middleware: BodyLimitMiddleware, scope: Scope, receive: Receive, send: Send, declared: int | None
    ) -> None:
        self.middleware = middleware
        self.scope = scope
        self.declared = declared
        self.timeout = middleware.settings.body_timeout
        self.deadline = asyncio.get_running_loop().time() + self.timeout
        self.received = 0
        self.complete = False
        self.refusal: ServiceError | None = None
        self.response_started = False
        self._receive = receive
        self._send = send

    def refuse(self, error: ServiceError) -> ServiceError:
        self.refusal = error
        return error

    async def receive(self) -> Message:
        if self.refusal is not None:
            return {"type": "http.disconnect"}
        if self.complete:
            return await self._receive()
        limit = self.middleware.limit_for(self.scope)
        if self.declared is not None and self.declared > limit:
            raise self.refuse(RequestTooLarge(limit))
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            raise self.refuse(RequestTimeout(self.timeout)) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > limit:
                raise self.refuse(RequestTooLarge(limit))
            self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is not None:
            return
        if message["type"] == "http.response.start":
            if not self.complete:
                limit = self.middleware.limit_for(self.scope)
                if self.declared is not None and self.declared > limit:
                    self.refuse(RequestTooLarge(limit))
                    return
                MutableHeaders(scope=message)["Connection"] = "close"
            self.response_started = True
        await self._send(message)


def _body_framing(headers: Iterable[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    """(Content-Length, whether a Transfer-Encoding is set) of a request's raw headers."""
    declared = None
    chunked = False
    for name, value in headers:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:  # the HTTP parser refuses these before the app runs
                declared = None
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked
