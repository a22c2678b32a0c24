"""The worker's heartbeat and the reaper of dead workers' jobs, in a thread beside the jobs."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from imgclf.jobs.liveness import HEARTBEAT_INTERVAL, beat, is_ready
from imgclf.jobs.recovery import REAP_INTERVAL, reap

log = logging.getLogger(__name__)


class Upkeep(threading.Thread):
    """Beats for the worker once it is ready and reaps orphaned jobs every few seconds.

    It has a Redis connection of its own, so a job in progress never delays a heartbeat, and it
    runs from the process's start: a worker restarted after a crash requeues its predecessor's
    job while it is still loading its models.
    """

    def __init__(self, connection: Redis, retries: int, ready_file: Path | None = None) -> None:
        super().__init__(name="upkeep", daemon=True)
        self.connection = connection
        self.retries = retries
        self.ready_file = ready_file
        """Touched after each heartbeat (settings.worker_ready_file): a health check reads its age."""
        self.worker_name: str | None = None
        """The name to beat for: set once the worker has registered with its models loaded."""
        self.runtimes: dict[str, str] = {}
        """Model id -> runtime, sent with each beat."""
        self._stopped = threading.Event()
        self._failing = False

    def run(self) -> None:
        if self.ready_file is not None:  # a predecessor's file says nothing about this worker
            self.ready_file.unlink(missing_ok=True)
        next_reap = 0.0
        while not self._stopped.wait(HEARTBEAT_INTERVAL if self.worker_name else 0.5):
            try:
                if self.worker_name:
                    beat(self.connection, self.worker_name, self.runtimes)
                    if is_ready(self.runtimes):  # the rule every count of workers follows
                        self._touch_ready_file()
                if time.monotonic() >= next_reap:
                    reap(self.connection, self.retries)
                    next_reap = time.monotonic() + REAP_INTERVAL
                self._failing = False
            except RedisError as exc:
                if not self._failing:  # once per outage, not every second
                    log.warning("heartbeat: Redis unreachable (%s)", exc)
                self._failing = True

    def _touch_ready_file(self) -> None:
        if self.ready_file is None:
            return
        try:
            self.ready_file.touch()
        except OSError as exc:  # a health check will say so; the worker itself goes on
            log.warning("cannot touch the ready file %s: %s", self.ready_file, exc.strerror)
            self.ready_file = None

    def stop(self) -> None:
        self._stopped.set()
