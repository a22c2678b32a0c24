import io
import json
import logging
from collections.abc import Iterator

import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from imgclf.ops.embedded_redis import EmbeddedRedis
from imgclf.ops.logs import JobContext, configure_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def use_stream(stream: io.StringIO) -> None:
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


def test_json_lines_carry_the_job_id_given_as_extra(captured: io.StringIO) -> None:
    configure_logging("INFO", "json")
    use_stream(captured)
    logging.getLogger("imgclf.jobs.queue").info("queued", extra={"job_id": "abc"})
    line = json.loads(captured.getvalue())
    assert line["job_id"] == "abc"
    assert line["message"] == "queued"
    assert line["level"] == "INFO"


def test_text_lines_name_the_job_only_when_there_is_one(captured: io.StringIO) -> None:
    configure_logging("INFO", "text")
    use_stream(captured)
    logging.getLogger("imgclf.x").info("with", extra={"job_id": "abc"})
    logging.getLogger("imgclf.x").info("without")
    with_job, without = captured.getvalue().splitlines()
    assert " job=abc with" in with_job
    assert "job=" not in without


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def log_inside_a_job() -> None:
    logging.getLogger("imgclf.worker.tasks").info("working")


def test_lines_logged_while_a_job_runs_get_its_id(redis_server: EmbeddedRedis) -> None:
    connection = Redis.from_url(redis_server.url_for_db(13))
    connection.flushdb()
    handler = Recorder()
    records = handler.records
    handler.addFilter(JobContext())
    logger = logging.getLogger("imgclf.worker.tasks")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        job = Queue("logs", connection=connection).enqueue(log_inside_a_job)
        SimpleWorker(["logs"], connection=connection).work(burst=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        connection.close()
    seen = [(record.getMessage(), getattr(record, "job_id", None)) for record in records]
    assert seen == [("working", job.id)]
