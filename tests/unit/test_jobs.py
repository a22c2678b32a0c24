import asyncio

import pytest

from imgclf.errors import UnknownJob
from imgclf.jobs.status import JobView, read_job_view


def test_a_pending_job_has_null_data_and_no_error_field() -> None:
    assert JobView("queued", None).as_contract() == {"task_status": "queued", "data": None}


def test_a_failed_job_carries_its_message() -> None:
    body = JobView("failed", None, "The file could not be decoded as an image").as_contract()
    assert body == {
        "task_status": "failed",
        "data": None,
        "error": "The file could not be decoded as an image",
    }


@pytest.mark.parametrize("job_id", ["../../etc", "rq:job:x", "*", "0" * 36, "A" * 5000])
def test_ids_that_cannot_be_jobs_are_unknown_without_asking_redis(job_id: str) -> None:
    # `None` as the connection: a malformed id must be refused before any Redis call
    with pytest.raises(UnknownJob, match="never existed or its result expired"):
        asyncio.run(read_job_view(None, None, job_id))  # type: ignore[arg-type, unused-ignore]
