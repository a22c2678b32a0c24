"""The last resort: any exception the app did not handle becomes a JSON 500 (pure ASGI).

Starlette's own last resort, ServerErrorMiddleware, sits outside every middleware an app adds,
so its answer (a text/plain 500) skipped the security headers (measured). This layer sits
inside the security headers and answers `{"detail": "..."}` with a generic message: the
exception's text, paths and traceback go to the log, never to the caller.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imgclf.errors import ServiceError
from imgclf.web.error_response import INTERNAL_ERROR, error_response

log = logging.getLogger(__name__)


class UnhandledErrorMiddleware:
    """Logs an unhandled exception with its traceback and answers a JSON 500 if it still can."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("Unhandled error answering %s %s", scope["method"], scope["path"])
            # Once the status line is out there is no other answer to give; the server closes the
            # connection on the unfinished response.
            if not response_started:
                await error_response(ServiceError(INTERNAL_ERROR), path=scope.get("path", ""))(scope, receive, send)
