"""`imgclf worker`: load every available model once, then take jobs from the queue, beating a
heartbeat, requeueing dead workers' jobs, and running nothing but the service's own tasks."""

from __future__ import annotations

import logging
import signal
import time

from redis import Redis
from redis.exceptions import RedisError
from rq.serializers import JSONSerializer

from imgclf.config import Settings
from imgclf.jobs.queue import make_queue
from imgclf.worker.context import build_context
from imgclf.worker.rq_worker import RECONNECT_BACKOFF_MAX, ClassificationWorker, unique_name
from imgclf.worker.upkeep import Upkeep

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Serve jobs until stopped (SIGINT or SIGTERM: finish the current job).

    A worker that loses Redis does not exit: it connects again with a back-off and registers
    under a new name (its job, if it had one, is requeued by the reaper).
    """
    redis_url = settings.required_redis_url()
    connection = Redis.from_url(redis_url)
    _wait_for_redis(connection)
    upkeep = Upkeep(Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2), settings.job_retries)
    upkeep.start()
    context = build_context(settings, connection)
    while True:
        worker = ClassificationWorker(
            [make_queue(connection)],
            connection=connection,
            serializer=JSONSerializer,
            name=unique_name(),
            upkeep=upkeep,
            context=context,
        )
        try:
            worker.work(logging_level=settings.log_level.upper())
            upkeep.stop()
            return
        except RedisError as exc:
            upkeep.worker_name = None
            if worker._shutdown_requested_date is not None:
                # SIGTERM/SIGINT arrived (RQ's handler notes it here) and Redis went away as well, as
                # when `serve` and its embedded Redis stop together: RQ's clean-up then fails on
                # the dead Redis. The request to stop stands; reconnecting would ignore it.
                log.info("stopping: asked to stop while Redis was unreachable (%s)", exc)
                upkeep.stop()
                return
            # RQ's handlers only set flags its loop reads; while we wait, SIGTERM must just stop us.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            log.warning("lost Redis (%s); connecting again", exc)
            _wait_for_redis(connection)


def _wait_for_redis(connection: Redis) -> None:
    delay = 1.0
    while True:
        try:
            connection.ping()
            return
        except RedisError as exc:
            log.warning("Redis unreachable (%s); trying again in %.0f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, RECONNECT_BACKOFF_MAX)
