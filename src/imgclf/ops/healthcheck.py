"""`imgclf healthcheck`: the container health checks of the web and worker roles."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from redis import Redis
from redis.exceptions import RedisError

from imgclf.config import MissingRedisUrl, Settings
from imgclf.jobs.liveness import ready_workers


def check_web(settings: Settings) -> str | None:
    """None if this host's web server answers /healthz, else what is wrong."""
    url = f"http://127.0.0.1:{settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"


def check_worker(settings: Settings) -> str | None:
    """None if a worker of this host is ready (models loaded, heartbeat fresh), else what is wrong."""
    try:
        redis_url = settings.required_redis_url()
    except MissingRedisUrl as exc:
        return str(exc)
    prefix = f"{socket.gethostname()}."  # worker names are <hostname>.<pid>.<random>
    try:
        with Redis.from_url(redis_url, socket_connect_timeout=3) as connection:
            names = ready_workers(connection)
    except RedisError as exc:
        return f"Redis is unreachable: {exc}"
    if not any(name.startswith(prefix) for name in names):
        return f"no worker of host {socket.gethostname()} is ready"
    return None
