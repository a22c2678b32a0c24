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
