"""The optional per-client limit on submissions (`IMGCLF_RATE_LIMIT_PER_MINUTE`).

A fixed one-minute window counted in Redis, so every web replica shares the count. The client is
the address uvicorn reports: the peer's, or the one in X-Forwarded-For when the peer is a proxy
listed in `IMGCLF_FORWARDED_ALLOW_IPS` (so a client cannot pick its own address by sending the
header, and behind the compose balancer each client still counts on its own).
"""

from __future__ import annotations

import time

from redis import Redis

from imgclf.errors import TooManyRequests

KEY_PREFIX = "imgclf:rate:"
WINDOW = 60
"""Seconds of one counting window."""


def take(connection: Redis, client: str, per_minute: int) -> None:
    """Count one submission of `client`; TooManyRequests past `per_minute` in this window."""
    now = time.time()
    window = int(now // WINDOW)
    key = f"{KEY_PREFIX}{window}:{client}"
    pipe = connection.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, WINDOW + 1)
    count, _ = pipe.execute()
    if int(count) > per_minute:
        raise TooManyRequests(per_minute, max(1, int((window + 1) * WINDOW - now + 0.999)))
