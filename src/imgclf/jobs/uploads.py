"""Uploaded photos, kept in Redis for the workers to read: addressed by SHA-256, bounded, expiring.

Redis rather than a folder: a worker on another machine reads the same Redis the job came
through, and nothing named by a user ever becomes a path. Each photo is one hash
(`imgclf:upload:<sha256>`: the original bytes the worker classifies, the re-encoded copy the
page shows, and its description), with the ids of the jobs that use it beside it.

Bounded: every stored photo's size (original + copy) is counted in one total, and a photo that
would take the total past `upload_store_bytes` is refused (503 + Retry-After) instead of pushing
Redis towards its `maxmemory`. Sizes are also kept with each photo's expiry time, so that the
total forgets a photo when Redis expires it: each store first drops what has expired. All of it
runs in Lua scripts, so two web processes never count the same photo twice.

Lifetime: a photo lives as long as a job that names it can still run or show its result (the
job may wait `result_ttl` in the queue, then its result stays `result_ttl`): 2 x `result_ttl`
from its last upload. DELETE of a job deletes the photo at once unless another job still uses it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, cast

from redis import Redis

from imgclf.errors import UploadStoreFull

PREFIX = "imgclf:upload:"
EXPIRY_KEY = "imgclf:uploads:expiry"
"""Sorted set: sha256 -> expiry time (ms since the epoch, Redis' clock)."""
SIZES_KEY = "imgclf:uploads:sizes"
"""Hash: sha256 -> bytes counted for it."""
TOTAL_KEY = "imgclf:uploads:total"
"""Bytes of all stored photos."""

_PRUNE = """
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, sha in ipairs(expired) do
  local size = redis.call('HGET', KEYS[2], sha)
  if size then
    redis.call('DECRBY', KEYS[3], size)
    redis.call('HDEL', KEYS[2], sha)
  end
  redis.call('ZREM', KEYS[1], sha)
end
"""

_STORE = (
    _PRUNE
    + """
-- KEYS: expiry, sizes, total, photo, jobs; ARGV: now, sha, size, ttl_ms, bound, job, original, display, about
local sha, size, ttl, bound = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local expires = now + ttl
if redis.call('EXISTS', KEYS[4]) == 0 then
  local total = tonumber(redis.call('GET', KEYS[3]) or '0')
  if total + size > bound then return 0 end
  redis.call('HSET', KEYS[4], 'original', ARGV[7], 'display', ARGV[8], 'about', ARGV[9])
  redis.call('HSET', KEYS[2], sha, size)
  redis.call('INCRBY', KEYS[3], size)
end
-- The same photo again (another job, maybe another model): one copy, kept for the latest job.
redis.call('PEXPIRE', KEYS[4], ttl)
redis.call('ZADD', KEYS[1], expires, sha)
redis.call('SADD', KEYS[5], ARGV[6])
redis.call('PEXPIRE', KEYS[5], ttl)
return 1
"""
)

_RELEASE = """
-- KEYS: expiry, sizes, total, photo, jobs; ARGV: sha, job. Deletes the photo once no job uses it.
redis.call('SREM', KEYS[5], ARGV[2])
if redis.call('SCARD', KEYS[5]) > 0 then return 0 end
redis.call('DEL', KEYS[4], KEYS[5])
local size = redis.call('HGET', KEYS[2], ARGV[1])
if size then
  redis.call('DECRBY', KEYS[3], size)
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class UploadedPhoto:
    """What the job resource shows of an upload: never its bytes, the name only as data."""

    sha256: str
    format: str
    width: int
    height: int
    filename: str | None = None


def _keys(sha256: str) -> list[str]:
    return [EXPIRY_KEY, SIZES_KEY, TOTAL_KEY, PREFIX + sha256, PREFIX + sha256 + ":jobs"]


def store(
    connection: Redis, photo: UploadedPhoto, original: bytes, display: bytes, job_id: str, ttl: int, bound: int
) -> None:
    """Keep `original` and its `display` copy for job `job_id` for `ttl` seconds (the same photo
    stored again is kept once, for the longest). UploadStoreFull past `bound` bytes."""
    seconds, micros = cast(tuple[int, int], connection.time())
    now_ms = seconds * 1000 + micros // 1000
    about = json.dumps({"format": photo.format, "width": photo.width, "height": photo.height})
    size = len(original) + len(display)
    stored = connection.eval(
        _STORE, 5, *_keys(photo.sha256), now_ms, photo.sha256, size, ttl * 1000, bound, job_id, original, display, about
    )
    if not stored:
        raise UploadStoreFull(bound)


def release(connection: Redis, sha256: str, job_id: str) -> bool:
    """Job `job_id` no longer needs the photo: it is deleted unless another job uses it. True if deleted."""
    return bool(connection.eval(_RELEASE, 5, *_keys(sha256), sha256, job_id))


def original(connection: Redis, sha256: str) -> bytes | None:
    """The uploaded bytes, or None once expired or deleted."""
    return cast(bytes | None, connection.hget(PREFIX + sha256, "original"))


def display_copy(connection: Redis, sha256: str) -> bytes | None:
    """The re-encoded JPEG shown on the page (no metadata), or None once expired or deleted."""
    return cast(bytes | None, connection.hget(PREFIX + sha256, "display"))


def stored_bytes(connection: Redis) -> int:
    """Bytes counted for all stored photos (expired ones drop out at the next store)."""
    return int(cast(Any, connection.get(TOTAL_KEY)) or 0)


def as_meta(photo: UploadedPhoto) -> dict[str, Any]:
    return {"kind": "upload", **asdict(photo)}
