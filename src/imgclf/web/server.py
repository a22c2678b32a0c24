"""`imgclf web`: the app under uvicorn (uvloop + httptools), with limits on the request head.

uvicorn's httptools protocol reads request heads of any size and any number of fields
(measured: 50 MB of headers were read and parsed) and waits forever for a head that never ends.
`LimitedHttpToolsProtocol` bounds the head where its bytes arrive, before any of the app runs:

- `max_header_bytes` (16 KiB) for the request line and headers: browsers send 1-2 KiB, large
  cookies included rarely over 8 KiB (nginx's default buffer for one header line), and 16 KiB
  a connection is all a client can make this process hold before a request starts. Past it: 431
  and the connection closed, counted as the bytes come (so a 50 MB header is refused after the
  first read past the limit, never read whole).
- `max_header_count` (100) header fields, Apache's default (LimitRequestFields): browsers send
  about 20. Past it: 431, closed.
- `header_timeout` (10 s) to send a whole head, from the connection's start or a request's first
  byte: a slowloris client that trickles a head is disconnected. The same bound closes
  connections that never send anything.
- `keep_alive_timeout` (5 s) for an idle connection between requests: uvicorn's own timer.

Body limits are the app's, per route (`imgclf.web.middleware.body_limits`).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from imgclf.config import Settings
from imgclf.web.app import create_app
from imgclf.web.middleware.security_headers import RAW_HEADERS


class _HeadRefused(Exception):
    """Raised in a parser callback to stop httptools once the head was refused."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size, field count and time limit on request heads.

    httptools hands over the URL in pieces as it arrives but each header only once it is complete,
    buffering it meanwhile; so a head is measured twice: exactly, as the URL and the complete
    headers are parsed, and roughly, as the bytes of a head that is not complete yet arrive
    (one read of the socket at most over the limit).
    """

    max_header_bytes: ClassVar[int] = 16_384
    max_header_count: ClassVar[int] = 100
    header_timeout: ClassVar[float] = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_bytes = 0
        """URL, header names and values of the current head, as parsed."""
        self._head_fields = 0
        self._unparsed_head_bytes = 0
        """Bytes received while a head was not complete, whether parsed yet or not."""
        self._awaiting_head = True
        self._request_ended = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    @classmethod
    def with_limits(cls, settings: Settings) -> type[LimitedHttpToolsProtocol]:
        """This protocol with the settings' limits (uvicorn takes a class and builds one per connection)."""
        limits = {
            "max_header_bytes": settings.max_header_bytes,
            "max_header_count": settings.max_header_count,
            "header_timeout": settings.header_timeout,
        }
        return type(cls.__name__, (cls,), limits)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with the refusal and the count of a head still unparsed.
        if self._refused:
            return
        head_in_progress = self._awaiting_head
        self._request_ended = False
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused:
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # A read in which a request ended may start with that request's body: not counted.
        if head_in_progress and self._awaiting_head and not self._request_ended:
            self._unparsed_head_bytes += len(data)
            if self._unparsed_head_bytes > self.max_header_bytes:
                self._refuse_head(self._too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_fields = 0
        if self._head_timer is None:
            self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_head(len(url), fields=0)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value), fields=1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._awaiting_head = False
        self._unparsed_head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head = True
        self._request_ended = True

    def _count_head(self, size: int, fields: int) -> None:
        self._head_bytes += size
        self._head_fields += fields
        if self._head_bytes > self.max_header_bytes:
            self._refuse_head(self._too_large())
            raise _HeadRefused
        if self._head_fields > self.max_header_count:
            self._refuse_head(f"The request has more header fields than this server accepts ({self.max_header_count}).")
            raise _HeadRefused

    def _too_large(self) -> str:
        return f"The request line and headers are larger than this server accepts ({self.max_header_bytes:,} bytes)."

    def _refuse_head(self, detail: str) -> None:
        """Answer 431 and close; whatever else the client sends is dropped unread."""
        self._refused = True
        self._cancel_head_timer()
        self.logger.warning("431 for %s: %s", self._peer(), detail)
        if self.cycle is None or self.cycle.response_complete:  # else a response is half written
            body = json.dumps({"detail": detail}).encode()
            headers = [
                *self.server_state.default_headers,
                *RAW_HEADERS,
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            self.transport.write(STATUS_LINE[431] + lines + b"\r\n" + body)
        self.transport.close()

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head waits for the response before it: the delay is ours, not the client's.
            self._start_head_timer()
            return
        self.logger.info("Closed %s: no complete request head within %g s", self._peer(), self.header_timeout)
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"


def run(settings: Settings) -> None:
    """Serve the web app on `settings.host:settings.port` until interrupted."""
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=LimitedHttpToolsProtocol.with_limits(settings),
        timeout_keep_alive=math.ceil(settings.keep_alive_timeout),  # uvicorn takes whole seconds
        log_config=None,  # keep the format configure_logging set up
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
