"""The end-to-end load generator: virtual users that submit like the form does and poll like
the result page does, until each job is finished; or, against the synchronous reference
(`sync_reference`), that post and wait for the answer.

The client is aiohttp rather than httpx: the load generator shares this machine's cores with the
service it measures, and at saturation (8 users, 2 workers) httpx's client used 0.22 cores where
aiohttp's uses 0.07, which left the service about 8 % more throughput (64 -> 69 jobs/s).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import aiohttp

JOB_ID = re.compile(r"/results/([0-9a-f-]{36})$")
"""The form's POST answers 303 to the job's page; the job id is the end of that Location. The
page itself is not fetched (a browser would: one more small request per job)."""

WAIT = 10
"""Each status request waits up to this many seconds for the job to end (long polling), as the
result page does: one request per job in the usual case, and the result as soon as it exists."""


@dataclass
class LoadResult:
    concurrency: int
    seconds: float
    submit: list[float] = field(default_factory=list)
    """Seconds from sending the POST to having the job id (none against the reference)."""
    result: list[float] = field(default_factory=list)
    """Seconds from sending the POST to seeing `finished`."""
    failed: int = 0

    @property
    def throughput(self) -> float:
        return len(self.result) / self.seconds


async def _user(
    session: aiohttp.ClientSession, images: Iterator[str], deadline: float, out: LoadResult, model_id: str
) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        form = {"model_id": model_id, "image_id": next(images)}
        async with session.post("/classifications", data=form, allow_redirects=False) as answer:
            match = JOB_ID.search(answer.headers.get("Location", "")) if answer.status == 303 else None
        if match is None:
            out.failed += 1
            continue
        submitted = time.perf_counter()
        while True:
            async with session.get(f"/classifications/{match.group(1)}", params={"wait": WAIT}) as status:
                body = await status.json()
            if body["task_status"] == "finished":
                out.submit.append(submitted - started)
                out.result.append(time.perf_counter() - started)
                break
            if body["task_status"] not in ("queued", "started"):
                out.failed += 1
                break


async def _reference_user(
    session: aiohttp.ClientSession, images: Iterator[str], deadline: float, out: LoadResult
) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        async with session.post("/classify", json={"image": next(images)}) as answer:
            body = await answer.json() if answer.status == 200 else None
        if body is None or len(body["top"]) != 5:
            out.failed += 1
            continue
        out.result.append(time.perf_counter() - started)


User = Callable[[aiohttp.ClientSession, Iterator[str], float, LoadResult], Awaitable[None]]
"""One virtual user: (session, its photos, deadline, where to count) -> runs until the deadline."""


async def _run(
    user: User, base_url: str, images: list[str], concurrency: int, seconds: float, *, reconnect: bool = False
) -> LoadResult:
    result = LoadResult(concurrency, seconds)
    connector = aiohttp.TCPConnector(limit=concurrency * 2, force_close=reconnect)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url=base_url, connector=connector, timeout=timeout) as session:
        # Stagger the users over the images so that concurrent jobs are not all the same photo.
        deadline = time.perf_counter() + seconds
        users = [
            user(session, itertools.cycle(images[index % len(images) :] + images), deadline, result)
            for index in range(concurrency)
        ]
        started = time.perf_counter()
        await asyncio.gather(*users)
        result.seconds = time.perf_counter() - started  # users finish their last job after the deadline
    return result


def generate_load(base_url: str, model_id: str, images: list[str], concurrency: int, seconds: float) -> LoadResult:
    """Run `concurrency` users against the service for about `seconds`."""
    return asyncio.run(_run(functools.partial(_user, model_id=model_id), base_url, images, concurrency, seconds))


def generate_reference_load(base_url: str, images: list[str], concurrency: int, seconds: float) -> LoadResult:
    """Run `concurrency` users against the synchronous reference for about `seconds`.

    Every request comes on a new connection: a kept-alive connection stays with the worker
    process that accepted it, and while that process classifies another request it waits even
    though the other processes are idle. A new connection is accepted by a process that is free,
    as a synchronous server's workers share the work."""
    return asyncio.run(_run(_reference_user, base_url, images, concurrency, seconds, reconnect=True))
