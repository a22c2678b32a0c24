"""The queue itself: its name, the job functions by name, what job meta holds, and Redis errors
as the one error users see for them.

Jobs are stored with RQ's JSON serializer, so nothing read back from Redis is unpickled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.serializers import JSONSerializer

from imgclf.errors import QueueUnavailable

QUEUE_NAME = "classification"
"""The FIFO queue web processes push to and workers pop from."""

CLASSIFY_TASK = "imgclf.worker.tasks.classify"
"""The job function, by name, so the web process never imports the worker side (torch). The
worker looks it up in `imgclf.worker.tasks.TASKS`; it is the function's dotted path, so RQ's own
tools (rq info, the dashboard) show a name that leads to the code."""

CLASSIFY_UPLOAD_TASK = "imgclf.worker.tasks.classify_upload"
"""The job function for an uploaded photo, read from the upload store by its SHA-256."""

IMAGE_META_KEY = "image"
"""Job meta key: what was classified, as the job resource shows it (`{"id": ...}` for a catalogue
photo; sha256, format, width, height and file name for an upload)."""

CALLBACK_META_KEY = "callback_url"
"""Job meta key: where the worker POSTs the job resource when the job ends (already checked)."""

ERROR_CODE_META_KEY = "error_code"
"""Job meta key: a stable code for the failure (`invalid_image`, `timed_out`, ...) beside its message."""

ERROR_META_KEY = "error"
"""Job meta key where a worker leaves a message a person can read when a job fails."""

ATTEMPT_META_KEY = "attempt"
"""Job meta key: which try this is (absent: the first); the reaper counts it up when it requeues."""

CACHED_META_KEY = "cached"
"""Job meta key, true on a job answered from the result cache (finished from the start)."""

GENERIC_FAILURE = "The classification failed inside the worker; the operators can find the job id in its log."

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""RQ gives jobs uuid4 ids; anything else cannot be one of ours."""


def make_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


@contextmanager
def queue_errors() -> Iterator[None]:
    """Turn a Redis error into QueueUnavailable (503, Retry-After): the one place that does."""
    try:
        yield
    except RedisError as exc:
        raise QueueUnavailable() from exc


def current_job_id() -> str | None:
    """The id of the job this thread runs, if any (for log lines)."""
    job = get_current_job()
    return job.id if job is not None else None
