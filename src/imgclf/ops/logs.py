"""Logging for every process: one line per event, as text or JSON, with the job id on every
line logged while a job runs (or passed as `extra={"job_id": ...}`)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from imgclf.jobs.queue import current_job_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]%(job)s %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(job_id)s %(message)s"


class JobContext(logging.Filter):
    """Adds `job_id` (or None) and `job` (" job=<id>" or "") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = getattr(record, "job_id", None)
        if job_id is None:
            job_id = current_job_id()
        record.job_id = job_id
        record.job = f" job={job_id}" if job_id else ""
        return True


def configure_logging(level: str, log_format: str) -> None:
    """Send every logger's records to stderr in the chosen format ('text' or 'json')."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobContext())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "time"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
