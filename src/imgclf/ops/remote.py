"""`imgclf classify --url`: classify local files through a running service's JSON API.

Every file is submitted first (POST /api/v1/classifications, multipart), so the service's workers
have them all at once, then each job is long-polled until it ends. Each POST carries an
`Idempotency-Key` of its own, so sending it again after a timeout or a dropped connection never
queues a second job. A busy answer (503, 429, or 409 while the first try of a resent POST is still
being answered) is retried after its Retry-After, a bounded number of times.

A file that cannot be read, or that the service refuses, is that file's failure, in the service's
own words; a service that cannot be reached at all ends the run (ServiceUnreachable). This module
speaks HTTP only, as any client would: it imports nothing of the service.
"""

from __future__ import annotations

import json
import mimetypes
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

API_PATH = "/api/v1/classifications"
UNFINISHED = frozenset({"queued", "running"})
PROBLEM_TYPE = "urn:imgclf:problem:"

POLL_WAIT_SECONDS = 30
"""How long one GET waits for its job to end (long polling; the API allows up to 60)."""
MAX_BUSY_RETRIES = 5
"""Times a request answered 409, 429 or 503 with a Retry-After is sent again before that answer stands."""
MAX_RETRY_AFTER_SECONDS = 30
"""Longest wait taken from one Retry-After."""
MAX_NETWORK_RETRIES = 3
"""Times a request that failed on the way (refused, reset, timed out) is sent again."""
NETWORK_BACKOFF_SECONDS = 0.5
"""Pause before the first resend after a network failure; it doubles with each resend."""
CONNECT_TIMEOUT_SECONDS = 10
RETRIED_STATUSES = frozenset({409, 429, 503})


class RemoteError(Exception):
    """Base of the errors that end a remote run, rather than fail one file:

    RemoteError
     ├── InvalidServiceUrl    the URL is not one of a service (a usage error)
     └── ServiceUnreachable   no answer from the service, even after resending
    """


class InvalidServiceUrl(RemoteError):
    pass


class ServiceUnreachable(RemoteError):
    pass


@dataclass
class Outcome:
    """One file's fate: the job resource the service last showed for it, and, if the client gave
    up on it (unreadable, refused, still unfinished at the deadline), why, as `{code, message}`."""

    file: Path
    job: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.job is not None and self.job["status"] == "succeeded"

    def as_json(self) -> dict[str, Any]:
        """The job resource with the file's name; a file with no job gets `id: null, status: failed`."""
        body: dict[str, Any] = {"file": str(self.file), **(self.job or {"id": None, "status": "failed"})}
        if self.error is not None:
            body["error"] = self.error
        return body


def service_url(text: str) -> httpx.URL:
    """The service's base URL from `text`, or InvalidServiceUrl saying what a usable one looks like."""
    hint = "give the service's address with http:// or https://, like http://127.0.0.1:8000"
    try:
        url = httpx.URL(text.strip())
        port = url.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidServiceUrl(f"{text!r} is not a URL ({exc}): {hint}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidServiceUrl(f"{text!r} is not a service URL: {hint}")
    if port is not None and not 0 < port < 65536:
        raise InvalidServiceUrl(f"{text!r} has no valid port (1 to 65535): {hint}")
    if url.query or url.fragment:
        raise InvalidServiceUrl(f"{text!r} has a query or fragment: {hint}")
    return url


def classify_remote(
    base_url: str,
    model: str,
    files: Iterable[Path],
    *,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> list[Outcome]:
    """Classify each file with `model` through the service at `base_url`; one Outcome per file, in order.

    Args:
        timeout: seconds from now after which a job still unfinished is given up on (it stays
            queued on the service).
        transport: what carries the requests; None for the network (tests pass a stand-in).

    Raises InvalidServiceUrl, or ServiceUnreachable if the service does not answer.
    """
    deadline = time.monotonic() + timeout
    base = service_url(base_url)
    # Redirects are not followed: a redirected POST loses its body, and one to another host
    # would send the photos somewhere the user did not name. A 3xx is reported instead.
    with httpx.Client(
        base_url=base,
        timeout=httpx.Timeout(POLL_WAIT_SECONDS + 15, connect=CONNECT_TIMEOUT_SECONDS),
        follow_redirects=False,
        transport=transport,
    ) as client:
        outcomes = [_submit(client, model, path) for path in files]
        for outcome in outcomes:
            _wait(client, outcome, deadline)
    return outcomes


def render_table(outcomes: Iterable[Outcome]) -> str:
    """Per file: its name and status (or why it failed), then its top 5 as `imgclf classify` prints them."""
    blocks = []
    for outcome in outcomes:
        job = outcome.job or {}
        if outcome.error is not None:
            status = f"{job.get('status', 'failed')}: {outcome.error['message']}"
        elif job.get("status") == "succeeded":
            status = "succeeded (cached)" if job.get("cached") else "succeeded"
        else:
            error = job.get("error") or {}
            status = f"{job.get('status')}: {error.get('message', 'no reason given')}"
        lines = [f"{outcome.file}  {status}"]
        for entry in (job.get("result") or {}).get("top5", []):
            lines.append(f"{entry['probability'] * 100:6.2f} %  {entry['label']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_json(outcomes: Iterable[Outcome]) -> str:
    return json.dumps([outcome.as_json() for outcome in outcomes], indent=2, ensure_ascii=False)


def _submit(client: httpx.Client, model: str, path: Path) -> Outcome:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Outcome(path, error={"code": "unreadable", "message": f"cannot read the file: {exc.strerror or exc}"})
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = _send(
        client,
        "POST",
        API_PATH,
        data={"model": model},
        files={"file": (path.name, data, media_type)},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    if response.status_code not in (200, 202):
        return Outcome(path, error=_refusal(response))
    return _job_outcome(path, response)


def _wait(client: httpx.Client, outcome: Outcome, deadline: float) -> None:
    """Long-poll the outcome's job until it ends or the deadline passes, keeping its last resource."""
    while outcome.error is None and outcome.job is not None and outcome.job["status"] in UNFINISHED:
        url = f"{API_PATH}/{quote(outcome.job['id'], safe='')}"
        left = int(deadline - time.monotonic())
        if left < 1:
            message = f"not finished before the timeout; the job goes on: {client.build_request('GET', url).url}"
            outcome.error = {"code": "timeout", "message": message}
            return
        response = _send(client, "GET", url, params={"wait": min(POLL_WAIT_SECONDS, left)})
        if response.status_code != 200:
            outcome.error = _refusal(response)
            return
        polled = _job_outcome(outcome.file, response)
        outcome.job, outcome.error = polled.job or outcome.job, polled.error


def _send(client: httpx.Client, method: str, url: str, **request: Any) -> httpx.Response:
    """The service's answer, once network failures and busy answers were retried a bounded number of times."""
    busy = failures = 0
    while True:
        try:
            response = client.request(method, url, **request)
        except httpx.TransportError as exc:  # refused, reset, timed out, DNS, ...
            if failures >= MAX_NETWORK_RETRIES:
                reason = str(exc) or type(exc).__name__
                raise ServiceUnreachable(
                    f"cannot reach {client.base_url} ({reason}; tried {failures + 1} times)"
                ) from exc
            time.sleep(NETWORK_BACKOFF_SECONDS * 2**failures)
            failures += 1
            continue
        delay = _retry_after(response)
        if response.status_code not in RETRIED_STATUSES or delay is None or busy >= MAX_BUSY_RETRIES:
            return response
        response.close()
        time.sleep(delay)
        busy += 1


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the answer asks to wait before trying again (its Retry-After, bounded), if it asks."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    # The service sends seconds; an HTTP-date (another server's way) is taken as one second.
    return float(min(int(value), MAX_RETRY_AFTER_SECONDS)) if value.strip().isdigit() else 1.0


def _job_outcome(path: Path, response: httpx.Response) -> Outcome:
    """The job resource a 200/202 answer carries, or a failure if the answer is not one."""
    body = _json_object(response)
    if not isinstance(body.get("id"), str) or not isinstance(body.get("status"), str):
        message = f"the answer from {response.request.url} is not a classification job: is that an imgclf service?"
        return Outcome(path, error={"code": "not-a-job", "message": message})
    return Outcome(path, job=body)


def _refusal(response: httpx.Response) -> dict[str, str]:
    """Why the service refused a request: its problem details' `detail`, else the HTTP status."""
    status = f"{response.status_code} {response.reason_phrase}".strip()
    if response.is_redirect:
        location = response.headers.get("Location", "")
        message = f"the server answered {status} to {location}; redirects are not followed: use that address"
        return {"code": "redirect", "message": message}
    body = _json_object(response)
    detail, kind = body.get("detail"), body.get("type")
    if not isinstance(detail, str) or not detail:
        return {"code": f"http-{response.status_code}", "message": f"the server answered {status}"}
    code = kind.removeprefix(PROBLEM_TYPE) if isinstance(kind, str) else f"http-{response.status_code}"
    return {"code": code, "message": f"{detail} ({status})"}


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; empty if it has none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
