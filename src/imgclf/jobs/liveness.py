"""Which workers are alive and ready: the one place that counts them.

A worker counts once it has loaded its models and while its heartbeat is fresh: it refreshes a
key of its own with a short TTL (`HEARTBEAT_TTL`) every `HEARTBEAT_INTERVAL` seconds and lists
its name in a set. Redis expires the key by itself when the worker dies, so no clock of any
machine is compared, and a dead worker stops counting within `HEARTBEAT_TTL` seconds. (RQ's own
registration, `rq:workers`, keeps a worker killed with SIGKILL for its worker_ttl plus a minute
or more, and counts workers that are still loading their models.)

Two questions, asked only here. Is a worker *alive* (`is_alive`, `live_workers`): its heartbeat
is fresh; the reaper asks this, since a job is orphaned only when its worker died. Is it *ready*
(`ready_workers`): alive and serving at least one model (a worker that found no export and no
weights beats too, but can classify nothing); `serve`'s "N worker(s) ready", /readyz, the
metrics, Retry-After estimates and the container health check all count ready workers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from redis import Redis
from rq.utils import as_text

HEARTBEAT_INTERVAL = 2.0
"""Seconds between two heartbeats of a worker."""

HEARTBEAT_TTL = 10
"""Seconds a heartbeat counts: a worker that misses this many seconds of beats is dead."""

NAMES_KEY = "imgclf:workers"
"""Set of the names of workers that have beaten at least once (pruned when their key expires)."""

BEAT_PREFIX = "imgclf:worker:"
"""`imgclf:worker:<name>`: present while that worker's heartbeat is fresh; its value is the JSON
object model id -> runtime of the models that worker serves."""


def beat(connection: Redis, name: str, runtimes: Mapping[str, str] | None = None) -> None:
    """One heartbeat of a ready worker, with the runtime of each model it serves."""
    pipe = connection.pipeline(transaction=False)
    pipe.set(BEAT_PREFIX + name, json.dumps(dict(runtimes or {})), ex=HEARTBEAT_TTL)
    pipe.sadd(NAMES_KEY, name)
    pipe.execute()


def forget(connection: Redis, name: str) -> None:
    """A worker that stops on purpose stops counting at once."""
    pipe = connection.pipeline(transaction=False)
    pipe.delete(BEAT_PREFIX + name)
    pipe.srem(NAMES_KEY, name)
    pipe.execute()


def is_alive(connection: Redis, name: str) -> bool:
    return bool(connection.exists(BEAT_PREFIX + name))


def live_workers(connection: Redis) -> list[str]:
    """Names of the workers alive now (fresh heartbeat), sorted; dead ones are pruned from the set."""
    return list(_heartbeats(connection))


def ready_workers(connection: Redis) -> dict[str, dict[str, str]]:
    """Ready worker name (alive, serving at least one model) -> model id -> the runtime that
    worker serves it on."""
    beats = {name: _runtimes(value) for name, value in _heartbeats(connection).items()}
    return {name: runtimes for name, runtimes in beats.items() if is_ready(runtimes)}


def is_ready(runtimes: Mapping[str, str]) -> bool:
    """Whether a worker serving these models (model id -> runtime) is ready: it serves one at least."""
    return bool(runtimes)


def _heartbeats(connection: Redis) -> dict[str, bytes | str]:
    """Name -> heartbeat value of each live worker, in name order; the names of dead ones (their
    key expired) are pruned from the set. Two round trips: the names, then every value at once."""
    names = sorted(as_text(member) for member in connection.smembers(NAMES_KEY))
    if not names:
        return {}
    values = connection.mget([BEAT_PREFIX + name for name in names])
    dead = [name for name, value in zip(names, values, strict=True) if value is None]
    if dead:
        connection.srem(NAMES_KEY, *dead)
    return {name: value for name, value in zip(names, values, strict=True) if value is not None}


def model_runtimes(connection: Redis) -> dict[str, str]:
    """Model id -> the runtime the live workers serve it on ("onnxruntime, torch" if they differ)."""
    seen: dict[str, set[str]] = {}
    for runtimes in ready_workers(connection).values():
        for model_id, runtime in runtimes.items():
            seen.setdefault(model_id, set()).add(runtime)
    return {model_id: ", ".join(sorted(runtimes)) for model_id, runtimes in seen.items()}


def _runtimes(value: bytes | str) -> dict[str, str]:
    try:
        decoded = json.loads(value)
    except ValueError:  # a heartbeat of an older worker (its value was 1)
        return {}
    return {str(model): str(runtime) for model, runtime in decoded.items()} if isinstance(decoded, dict) else {}
