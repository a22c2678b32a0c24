"""Log lines written while RQ runs a job, through a real Redis."""

import logging

from redis import Redis
from rq import Queue, SimpleWorker

from imgclf.ops.logs import JobContext


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def log_inside_a_job() -> None:
    logging.getLogger("imgclf.worker.tasks").info("working")


def test_lines_logged_while_a_job_runs_get_its_id(redis_url: str) -> None:
    connection = Redis.from_url(redis_url)
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
