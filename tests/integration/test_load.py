"""Load against a real `imgclf web` with no worker behind it, so jobs stay queued: long polls
that cost no thread, the queue's bound (503 + Retry-After), the per-client rate limit (429)."""

import asyncio
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from imgclf.jobs.queue import make_queue
from imgclf.ops.embedded_redis import free_port
from imgclf.web import app as app_module
from imgclf.web.app import create_app
from tests.conftest import fresh_photo, job_id_from_location, job_id_from_page, make_settings, running_web, samples

FORM = {"model_id": "efficientnet_lite0", "image_id": "coffee.jpg"}


def fresh_form(image_dir: Path) -> dict[str, str]:
    """The form for a photo of its own, so that a flood does not hang on whether identical requests
    share a queued job (they do while the result cache is on)."""
    return {"model_id": "efficientnet_lite0", "image_id": fresh_photo(image_dir)}


@contextmanager
def web_without_workers(
    redis_url: str, image_dir: Path, model_dir: Path, **settings: Any
) -> Iterator[tuple[str, Redis]]:
    """A web server on the database at `redis_url` and a client of that database."""
    connection = Redis.from_url(redis_url)
    web_settings = make_settings(
        redis_url,
        image_dir,
        model_dir,
        port=free_port(),
        models=["efficientnet_lite0"],
        result_cache_ttl=0,
        **settings,
    )
    try:
        with running_web(web_settings) as url:
            yield url, connection
    finally:
        connection.close()


def test_200_long_polls_leave_healthz_answering(redis_url: str, image_dir: Path, model_dir: Path) -> None:
    with web_without_workers(redis_url, image_dir, model_dir) as (url, _):
        job_id = job_id_from_page(httpx.post(f"{url}/classifications", data=FORM, follow_redirects=True).text)

        async def run() -> tuple[list[float], list[int]]:
            limits = httpx.Limits(max_connections=300)
            async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
                polls = [
                    asyncio.create_task(client.get(f"/classifications/{job_id}", params={"wait": 8}))
                    for _ in range(200)
                ]
                await asyncio.sleep(1.5)  # every poll is waiting now
                assert not any(poll.done() for poll in polls)
                latencies = []
                for _ in range(20):
                    started = time.perf_counter()
                    # A generous bound, not a measurement: with a thread per waiting poll (as before)
                    # /healthz queued behind them for the whole wait.
                    response = await client.get("/healthz", timeout=2)
                    latencies.append(time.perf_counter() - started)
                    assert response.status_code == 200
                    await asyncio.sleep(0.05)
                answers = await asyncio.gather(*polls)
                return latencies, [answer.status_code for answer in answers]

        latencies, statuses = asyncio.run(run())
        assert statuses == [200] * 200
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000
        print(f"/healthz under 200 long polls: median {statistics.median(latencies) * 1000:.1f} ms, p99 {p99:.1f} ms")


def test_a_flood_past_the_bound_gets_503_with_retry_after_and_loses_nothing(
    redis_url: str, image_dir: Path, model_dir: Path
) -> None:
    with web_without_workers(redis_url, image_dir, model_dir, max_queued_jobs=20) as (url, connection):
        forms = [fresh_form(image_dir) for _ in range(60)]

        async def flood() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                return await asyncio.gather(*(client.post("/classifications", data=form) for form in forms))

        answers = asyncio.run(flood())
        statuses = sorted({answer.status_code for answer in answers})
        assert statuses == [303, 503], statuses
        accepted = [job_id_from_location(answer.headers["location"]) for answer in answers if answer.status_code == 303]
        for refused in (answer for answer in answers if answer.status_code == 503):
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert "busy" in refused.json()["detail"]
        assert 0 < len(accepted) <= 20  # never past the bound, even with 60 requests in flight together
        assert sorted(make_queue(connection).job_ids) == sorted(accepted)  # every accepted job still waits

        while httpx.post(f"{url}/classifications", data=fresh_form(image_dir)).status_code == 303:
            pass  # fill the queue to its bound
        browser = httpx.post(f"{url}/classifications", data=fresh_form(image_dir), headers={"Accept": "text/html"})
        assert browser.status_code == 503 and "Retry-After" in browser.headers
        assert "busy" in browser.text and "<form" in browser.text  # the form again, with the reason
        program = httpx.post(f"{url}/classifications", data=FORM)
        assert program.status_code == 503 and "Retry-After" in program.headers
        assert "busy" in program.json()["detail"]
        assert make_queue(connection).count == 20


def test_a_client_past_its_rate_limit_gets_429_and_others_do_not(
    redis_url: str, image_dir: Path, model_dir: Path
) -> None:
    # The test's client is 127.0.0.1, a trusted proxy by default: X-Forwarded-For names the client.
    with web_without_workers(redis_url, image_dir, model_dir, rate_limit_per_minute=3) as (url, _):
        first = {"X-Forwarded-For": "203.0.113.7"}
        assert [httpx.post(f"{url}/classifications", data=FORM, headers=first).status_code for _ in range(3)] == [
            303
        ] * 3
        refused = httpx.post(f"{url}/classifications", data=FORM, headers=first)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        other = httpx.post(f"{url}/classifications", data=FORM, headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 303


def test_queue_metrics_count_rejections(redis_url: str, image_dir: Path, model_dir: Path) -> None:
    with web_without_workers(redis_url, image_dir, model_dir, max_queued_jobs=1) as (url, _):
        assert httpx.post(f"{url}/classifications", data=FORM).status_code == 303
        # The same request again is a job of its own: with the result cache off, a queued job is
        # not reused either.
        assert httpx.post(f"{url}/classifications", data=FORM).status_code == 503
        metrics = samples(httpx.get(f"{url}/metrics").text)
        assert metrics[("imgclf_rejected_submissions_total", (("reason", "queue_full"),))] == 1
        assert metrics[("imgclf_queue_depth", ())] == 1


def test_a_client_cannot_dodge_the_rate_limit_with_a_forwarded_header(
    redis_url: str, image_dir: Path, model_dir: Path
) -> None:
    # Only 192.0.2.1 is a trusted proxy: the test's client is not, so its X-Forwarded-For is ignored.
    with web_without_workers(
        redis_url, image_dir, model_dir, rate_limit_per_minute=2, forwarded_allow_ips="192.0.2.1"
    ) as (url, _):
        statuses = [
            httpx.post(f"{url}/classifications", data=FORM, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(3)
        ]
        assert statuses == [303, 303, 429]


def test_past_the_long_poll_limit_a_status_read_answers_at_once(
    redis_url: str, image_dir: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The web's asyncio Redis pool holds MAX_LONG_POLLS connections (1,000; 2 here). With every one
    # held by a waiting long poll, a status read, with or without `wait`, of the lesson's route or
    # of /api/v1, still answers at once (on the synchronous client), never a 503.
    monkeypatch.setattr(app_module, "MAX_LONG_POLLS", 2)
    app = create_app(make_settings(redis_url, image_dir, model_dir, models=["efficientnet_lite0"]))

    async def scenario() -> tuple[list[httpx.Response], bool]:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client,
        ):
            posted = await client.post("/classifications", data=FORM, headers={"Accept": "application/json"})
            url = f"/classifications/{job_id_from_location(posted.headers['location'])}"
            polls = [asyncio.create_task(client.get(url, params={"wait": 20})) for _ in range(2)]
            await asyncio.sleep(1)  # both are waiting on the job's result stream now
            v1 = f"/api/v1/classifications/{url.rsplit('/', 1)[1]}"
            answers = [await client.get(url), await client.get(url, params={"wait": 20})]
            answers.append(await client.get(v1, params={"wait": 20}))
            waiting = not any(poll.done() for poll in polls)
            for poll in polls:
                poll.cancel()
            return answers, waiting

    answers, still_waiting = asyncio.run(scenario())
    assert still_waiting  # the answers came while both long polls held their connections
    assert [answer.status_code for answer in answers] == [200, 200, 200], [answer.text for answer in answers]
    assert [answer.json()["task_status"] for answer in answers[:2]] == ["queued", "queued"]
    assert answers[2].json()["status"] == "queued"
