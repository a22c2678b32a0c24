"""`Idempotency-Key` on POST /api/v1/classifications, as payment APIs do it: the same key within
`result_ttl` answers with the same job instead of queuing a second one, so a client may retry a
POST whose answer it never got.

The key is claimed (SET NX) before the job is submitted, so two requests with one key racing
each other cannot both queue: the second sees the claim and is told to retry (409) until the
first has its job. A key reused with a different request (another model, photo or callback) is
refused (422): answering it with the first job would hide the mistake.
"""

from __future__ import annotations

import hashlib
import json

from redis import Redis

from imgclf.errors import IdempotencyConflict, InvalidRequest

PREFIX = "imgclf:idempotency:"
MAX_KEY_LENGTH = 255
CLAIM_SECONDS = 30
"""How long a claim lasts before its request settles it with a job: far longer than a submit
takes, so that a request that never settles (its process killed, or Redis lost before it could
abandon the claim) holds the key for this long, not for the whole result TTL."""
_PENDING = "pending"


def validate_key(key: str) -> str:
    """The header's value if usable: 1-255 visible ASCII characters."""
    if not key or len(key) > MAX_KEY_LENGTH or not all(33 <= ord(char) <= 126 for char in key):
        raise InvalidRequest(
            {"Idempotency-Key": f"Send 1 to {MAX_KEY_LENGTH} visible ASCII characters (a UUID is usual)."}
        )
    return key


def fingerprint(*parts: str | None) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def claim(connection: Redis, key: str, request: str, ttl: int) -> str | None:
    """None if this request now owns `key`; else the job id the key already answers with.

    Raises IdempotencyConflict while the first request with the key is still being answered,
    InvalidRequest if the key was used for a different request.
    """
    redis_key = _redis_key(key)
    if connection.set(redis_key, json.dumps([_PENDING, request]), nx=True, ex=min(ttl, CLAIM_SECONDS)):
        return None
    raw = connection.get(redis_key)
    if raw is None:  # expired between the two calls: try once more
        return claim(connection, key, request, ttl)
    job_id, earlier = json.loads(raw)
    if earlier != request:
        raise InvalidRequest(
            {"Idempotency-Key": "This key was already used for a different request; send a new key for a new request."}
        )
    if job_id == _PENDING:
        raise IdempotencyConflict("A request with this Idempotency-Key is still being answered; retry in a second.")
    return str(job_id)


def settle(connection: Redis, key: str, request: str, job_id: str, ttl: int) -> None:
    """The request that claimed `key` has its job."""
    connection.set(_redis_key(key), json.dumps([job_id, request]), ex=ttl)


def abandon(connection: Redis, key: str) -> None:
    """The request that claimed `key` failed (a full queue, ...): a retry may queue anew."""
    connection.delete(_redis_key(key))


def _redis_key(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode()).hexdigest()
