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
from imgclf.jobs.webhooks import WebhookSender
from imgclf.worker.context import WorkerContext, build_context
from imgclf.worker.rq_worker import RECONNECT_BACKOFF_MAX, ClassificationWorker, unique_name
from imgclf.worker.upkeep import Upkeep

log = logging.getLogger(__name__)

RQ_PER_JOB_LINES = frozenset({"dequeue_job_and_maintain_ttl", "handle_job_success", "_finalize_success"})
"""RQ's functions that log four INFO lines for every job (taken, completed, OK, result kept)."""


class WithoutRqJobLines(logging.Filter):
    """Drops RQ's own INFO lines about each job; its warnings, errors and start/stop lines stay.

    The task logs one line per job with the same job id plus the model, photo and answer
    (`tasks._classify`). RQ's four more cost about 4 ms of a worker's CPU per job, a tenth of
    all it spends (measured with 8 users: 36.0 -> 31.8 ms with every INFO line off); at DEBUG
    they are all kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.funcName not in RQ_PER_JOB_LINES


class _StopRequested(BaseException):
    """SIGTERM or SIGINT while no RQ loop runs (loading models, waiting for Redis).

    A BaseException, as KeyboardInterrupt is: the signal may land inside code that catches
    Exception and goes on (logging's handlers do, when it lands while a line is written), and the
    stop request must not be lost there.
    """


def _stop_now(signum: int, _frame: object) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def _stop_on_signals() -> None:
    # Outside RQ's loop (which installs its own handlers: finish the job, then stop) a stop request
    # ends the worker at once and cleanly: exit status 0, as a supervisor expects after SIGTERM.
    signal.signal(signal.SIGTERM, _stop_now)
    signal.signal(signal.SIGINT, _stop_now)


def run_worker(settings: Settings) -> None:
    """Serve jobs until stopped (SIGINT or SIGTERM: finish the current job; exit status 0).

    A worker that loses Redis does not exit: it connects again with a back-off and registers
    under a new name (its job, if it had one, is requeued by the reaper).
    """
    _stop_on_signals()
    if logging.getLevelName(settings.log_level.upper()) != logging.DEBUG:
        logging.getLogger("rq.worker").addFilter(WithoutRqJobLines())
    try:
        _serve(settings)
    except _StopRequested as stop:
        log.info("stopping: %s while not serving jobs", stop)


def _serve(settings: Settings) -> None:
    redis_url = settings.required_redis_url()
    connection = Redis.from_url(redis_url)
    _wait_for_redis(connection)
    upkeep = Upkeep(
        Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2),
        settings.job_retries,
        settings.worker_ready_file,
    )
    upkeep.start()
    try:
        _serve_with_reconnects(settings, connection, upkeep)
    finally:
        upkeep.stop()


def _serve_with_reconnects(settings: Settings, connection: Redis, upkeep: Upkeep) -> None:
    context = build_context(settings)
    webhooks = None
    if settings.webhook_hosts and settings.webhook_secret:
        webhooks = WebhookSender(settings.webhook_secret.get_secret_value(), settings.webhook_hosts)
    try:
        _work(settings, connection, upkeep, context, webhooks)
    finally:
        if webhooks is not None:
            webhooks.stop()


def _work(
    settings: Settings, connection: Redis, upkeep: Upkeep, context: WorkerContext, webhooks: WebhookSender | None
) -> None:
    while True:
        worker = ClassificationWorker(
            [make_queue(connection)],
            connection=connection,
            serializer=JSONSerializer,
            name=unique_name(),
            upkeep=upkeep,
            context=context,
            webhooks=webhooks,
        )
        try:
            worker.work(logging_level=settings.log_level.upper())
            return
        except RedisError as exc:
            upkeep.worker_name = None
            if worker._shutdown_requested_date is not None:
                # SIGTERM/SIGINT arrived (RQ's handler notes it here) and Redis went away as well, as
                # when `serve` and its embedded Redis stop together: RQ's clean-up then fails on
                # the dead Redis. The request to stop stands; reconnecting would ignore it.
                log.info("stopping: asked to stop while Redis was unreachable (%s)", exc)
                return
            # RQ's handlers only set flags its loop reads; while we wait, a stop request must stop us.
            _stop_on_signals()
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
