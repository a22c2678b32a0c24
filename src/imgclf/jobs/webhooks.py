"""Job webhooks: when a job with a `callback_url` ends, its JSON resource is POSTed there, signed.

The web process checks the URL when the job is submitted (`check_callback_url`, 422 when refused);
the worker hands the body to a `WebhookSender`, whose thread calls `deliver` (retries, backoff).

A callback is a request the service makes for whoever submitted the job, so it must never reach
what only the service can reach (server-side request forgery). Hence:

- the URL's host must be listed in IMGCLF_WEBHOOK_HOSTS exactly (no suffix matching); an empty
  list turns webhooks off;
- every address the host resolves to must be public. An internal address (loopback, private,
  link-local, multicast, reserved, unspecified, or an IPv6 form of one) is called only when the
  operator listed it: the URL names that listed address itself, the allow-list also lists the
  address a listed name resolves to, or the name is `localhost` and resolves to loopback only
  (RFC 6761: the machine answers it, no DNS server that someone else runs). Otherwise anyone who
  controls the DNS of a listed name could point it at 169.254.169.254 or at Redis;
- redirects are never followed (one could lead to an internal host), and neither proxies nor
  .netrc credentials from the environment are used.

Remaining window (DNS rebinding): the URL is checked again right before every delivery attempt,
but httpx resolves the host once more to connect. A DNS server that answers a public address to
the check and an internal one a moment later can still steer one attempt inward. Closing it
means connecting to the checked address itself (pinning), which is not done.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Sequence

import httpx

SIGNATURE_HEADER = "X-Imgclf-Signature"
"""`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, keyed with IMGCLF_WEBHOOK_SECRET."""

EVENT_HEADER = "X-Imgclf-Event"
"""What happened; the only event so far is `ENDED_EVENT`."""

ENDED_EVENT = "classification.ended"
"""A job finished or failed; the body is the job's JSON resource, as its status route shows it."""

DELIVERY_ATTEMPTS = 4
"""Tries of one delivery: the first and 3 retries."""

BACKOFF_SECONDS = (1.0, 2.0, 4.0)
"""Seconds to wait before each retry."""

MAX_URL_LENGTH = 2048
"""Longest callback URL accepted, in characters."""

QUEUE_SIZE = 1000
"""Deliveries a `WebhookSender` holds at most; past it, new ones are dropped (and logged)."""

HOSTS_SETTING = "IMGCLF_WEBHOOK_HOSTS"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# LDH labels (plus `_`, which internal names such as compose services use), after IDNA encoding.
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?")
# The last label of a name that resolvers read as an IPv4 number (`2130706433`, `0x7f.1`, `127.1`).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")

log = logging.getLogger(__name__)


class CallbackRefused(ValueError):
    """The service will not call this callback URL; the message says why, for the person who sent it."""


class _Unresolved(CallbackRefused):
    """The host has no address right now: worth another try at delivery (DNS may be down)."""


def check_callback_url(url: str, allowed_hosts: Sequence[str]) -> str:
    """Return the URL (normalised, without fragment) if the service may call it, else raise CallbackRefused."""
    return str(_checked_url(url, allowed_hosts))


def sign(body: bytes, secret: str) -> str:
    """The `X-Imgclf-Signature` value of a body: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    url: str,
    body: bytes,
    secret: str,
    allowed_hosts: Sequence[str],
    *,
    backoff: Sequence[float] = BACKOFF_SECONDS,
    timeout: float = 5.0,
) -> bool:
    """POST a signed body to a callback URL, retrying failures that may pass; True once answered 2xx.

    Connection errors, timeouts, 5xx and 429 are retried, up to DELIVERY_ATTEMPTS tries, waiting
    `backoff[i]` seconds before retry i (the last value repeats). The URL and the addresses of its
    host are checked again before every try: DNS may have changed since the job was submitted.
    """
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret), EVENT_HEADER: ENDED_EVENT}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for attempt in range(DELIVERY_ATTEMPTS):
            if attempt and backoff:
                time.sleep(backoff[min(attempt, len(backoff)) - 1])
            try:
                target = _checked_url(url, allowed_hosts)
            except _Unresolved as exc:
                log.warning("webhook not sent (try %d of %d): %s", attempt + 1, DELIVERY_ATTEMPTS, exc)
                continue
            except CallbackRefused as exc:
                log.warning("webhook not sent: %s", exc)
                return False
            # Only the host is logged: the paths and queries of webhook URLs often carry tokens.
            try:
                # Streamed and never read: the status is the whole answer, however much the receiver sends.
                with client.stream("POST", target, content=body, headers=headers) as response:
                    status = response.status_code
            except httpx.TransportError as exc:
                log.warning("webhook to %s failed (try %d of %d): %r", target.host, attempt + 1, DELIVERY_ATTEMPTS, exc)
                continue
            if 200 <= status < 300:
                return True
            if status != 429 and status < 500:
                why = "redirects are not followed" if 300 <= status < 400 else "not retried"
                log.warning("webhook to %s answered %d: %s", target.host, status, why)
                return False
            log.warning("webhook to %s answered %d (try %d of %d)", target.host, status, attempt + 1, DELIVERY_ATTEMPTS)
    log.warning("webhook given up after %d tries", DELIVERY_ATTEMPTS)
    return False


class WebhookSender:
    """Delivers webhooks from a daemon thread, so a worker never waits on a slow receiver.

    Deliveries go one at a time, in order, from a bounded in-memory queue: a worker that stops
    without `stop()` loses those still queued (webhooks are best effort; the job's status route
    stays the source of truth).
    """

    def __init__(
        self,
        secret: str,
        allowed_hosts: Sequence[str],
        *,
        backoff: Sequence[float] = BACKOFF_SECONDS,
        timeout: float = 5.0,
        max_queued: int = QUEUE_SIZE,
    ) -> None:
        self._secret = secret
        self._allowed_hosts = tuple(allowed_hosts)
        self._backoff = tuple(backoff)
        self._timeout = timeout
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=max_queued)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imgclf-webhooks", daemon=True)
        self._thread.start()

    def send(self, url: str, body: bytes) -> None:
        """Queue one delivery; never blocks or raises (drops it with a warning when the queue is full)."""
        if self._stopping.is_set():
            log.warning("webhook dropped: the sender is stopping")
            return
        try:
            self._queue.put_nowait((url, body))
        except queue.Full:
            log.warning("webhook dropped: %d deliveries are waiting already", self._queue.maxsize)

    def stop(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued, waiting up to `timeout` seconds; True if the thread ended in time."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return False
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            url, body = item
            try:
                deliver(url, body, self._secret, self._allowed_hosts, backoff=self._backoff, timeout=self._timeout)
            except Exception:
                # One delivery's bug must not end the thread: every later webhook would queue unseen.
                log.exception("webhook delivery crashed")


def _checked_url(url: str, allowed_hosts: Sequence[str]) -> httpx.URL:
    # Parsed by httpx, which also sends it: what is checked is what gets called.
    if not allowed_hosts:
        raise CallbackRefused(f"Webhooks are off on this service ({HOSTS_SETTING} is empty).")
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"The callback_url is longer than {MAX_URL_LENGTH:,} characters.")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise CallbackRefused(f"The callback_url is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise CallbackRefused("The callback_url must be an absolute http:// or https:// URL.")
    if parsed.userinfo:
        raise CallbackRefused(
            "The callback_url must not carry a user name or password: every callback is signed instead "
            f"({SIGNATURE_HEADER})."
        )
    if not parsed.host:
        raise CallbackRefused("The callback_url has no host.")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise CallbackRefused(f"The callback_url's port {parsed.port} is not between 1 and 65535.")
    host = _canonical_host(parsed.raw_host.decode("ascii"))
    if host is None:
        raise CallbackRefused(
            f"The callback_url's host {parsed.host!r} is neither a host name nor an IP address in standard form "
            "(a.b.c.d, or [IPv6] in brackets)."
        )
    allowed = {canonical for entry in allowed_hosts if (canonical := _canonical_host(entry))}
    if host not in allowed:
        raise CallbackRefused(f"The callback_url's host {parsed.host!r} is not listed in {HOSTS_SETTING}.")
    for address in _resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80)):
        if _is_internal(address) and not _internal_allowed(address, host, allowed):
            raise CallbackRefused(
                f"The callback_url's host {parsed.host!r} resolves to an internal address (loopback, private, "
                f"link-local or reserved): the service calls one only if {HOSTS_SETTING} lists that address."
            )
    return parsed.copy_with(host=host, fragment=None)


def _canonical_host(host: str) -> str | None:
    """How a host is compared: IDNA-encoded and lower-cased, or an IP address in its compressed form.

    None for what no allow-list entry can match: a non-standard number (`2130706433`, `0x7f.1`,
    `127.1`, which resolvers still read as 127.0.0.1), or a name with characters DNS does not know.
    """
    try:
        raw = httpx.URL(scheme="http", host=host.strip()).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        return None
    try:
        return ipaddress.ip_address(raw).compressed
    except ValueError:
        pass
    last_label = raw.removesuffix(".").rpartition(".")[2]
    if _NUMERIC_LABEL.fullmatch(last_label) or not _HOST_NAME.fullmatch(raw):
        return None
    return raw


def _resolve(host: str, port: int) -> set[IPAddress]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _Unresolved(f"The callback_url's host {host!r} does not resolve to an address.") from None
    # An IPv6 address may carry a zone (`fe80::1%eth0`); the address is what is judged.
    addresses = {ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found}
    if not addresses:
        raise _Unresolved(f"The callback_url's host {host!r} does not resolve to an address.")
    return addresses


def _is_internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return _is_internal(embedded)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # Shared address space (100.64.0.0/10, carrier NAT) and the like: not private, not public.
        or not address.is_global
    )


def _internal_allowed(address: IPAddress, host: str, allowed: set[str]) -> bool:
    if address.compressed in allowed:
        return True
    return host == "localhost" and address.is_loopback
