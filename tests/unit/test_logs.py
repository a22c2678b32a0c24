import io
import json
import logging
from collections.abc import Iterator

import pytest

from imgclf.ops.logs import configure_logging


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


def test_rq_s_lines_about_each_job_are_dropped_and_the_rest_kept() -> None:
    from rq.worker.base import BaseWorker

    from imgclf.worker.process import RQ_PER_JOB_LINES, WithoutRqJobLines

    # The names are RQ's own functions: an RQ that renamed them would log its lines again.
    assert all(hasattr(BaseWorker, name) for name in RQ_PER_JOB_LINES)

    def record(level: int, function: str) -> logging.LogRecord:
        return logging.LogRecord("rq.worker", level, "base.py", 1, "message", None, None, func=function)

    kept = WithoutRqJobLines()
    assert not kept.filter(record(logging.INFO, "handle_job_success"))  # "Successfully completed ..."
    assert not kept.filter(record(logging.INFO, "dequeue_job_and_maintain_ttl"))  # the job taken
    assert kept.filter(record(logging.INFO, "work"))  # started, listening, stopping
    assert kept.filter(record(logging.WARNING, "handle_job_success"))  # never a warning
    assert kept.filter(record(logging.ERROR, "dequeue_job_and_maintain_ttl"))
