import hashlib
import hmac
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from imgclf.config import Settings
from imgclf.jobs.webhooks import (
    DELIVERY_ATTEMPTS,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    CallbackRefused,
    WebhookSender,
    check_callback_url,
    deliver,
    sign,
)

SECRET = "s3cret"
FAST = (0.01, 0.01, 0.01)
BODY = '{"id": "j-1", "status": "finished",  "top": [["café", 0.5]]}'.encode()
"""Non-ASCII and odd spacing: a receiver must get these exact bytes to check the signature."""

FakeDns = dict[str, list[str]]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """Names the resolver knows in this test (IP literals resolve to themselves); no real DNS."""
    names: FakeDns = {}

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            if host not in names:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            addresses = [ipaddress.ip_address(name) for name in names[host]]
        families = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [(families[a.version], socket.SOCK_STREAM, 6, "", (str(a), port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def refusal(url: str, allowed_hosts: list[str]) -> str:
    with pytest.raises(CallbackRefused) as refused:
        check_callback_url(url, allowed_hosts)
    return str(refused.value)


def test_webhooks_are_off_by_default() -> None:
    assert Settings().webhook_hosts == []
    assert refusal("https://hooks.example.com/x", Settings().webhook_hosts) == (
        "Webhooks are off on this service (IMGCLF_WEBHOOK_HOSTS is empty)."
    )


def test_only_a_host_listed_exactly_is_called(dns: FakeDns) -> None:
    for name in ("hooks.example.com", "evil.hooks.example.com", "hooks.example.com.evil.net", "example.com"):
        dns[name] = ["93.184.216.34"]
    allowed = ["hooks.example.com"]
    assert check_callback_url("HTTPS://Hooks.Example.COM:443/in?job=1#top", allowed) == (
        "https://hooks.example.com/in?job=1"
    )
    for url in ("https://evil.hooks.example.com/", "https://hooks.example.com.evil.net/", "https://example.com/"):
        message = refusal(url, allowed)
        assert "is not listed in IMGCLF_WEBHOOK_HOSTS" in message
        assert repr(url.split("/")[2]) in message


def test_hosts_are_compared_in_their_idna_form(dns: FakeDns) -> None:
    dns["xn--bcher-kva.example"] = ["93.184.216.34"]
    assert check_callback_url("https://BÜCHER.example/x", ["bücher.example"]) == "https://xn--bcher-kva.example/x"
    assert check_callback_url("https://bücher.example/x", ["xn--bcher-kva.example"]) == (
        "https://xn--bcher-kva.example/x"
    )


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.com/", "file:///etc/passwd", "javascript:alert(1)", "//hooks.example.com/", "/x"]
)
def test_only_http_and_https_urls_are_called(url: str) -> None:
    assert "http:// or https://" in refusal(url, ["hooks.example.com"])


@pytest.mark.parametrize(
    "url",
    ["https://user:pw@hooks.example.com/", "https://token@hooks.example.com/", "https://hooks.example.com\\@evil.net/"],
)
def test_a_url_with_credentials_is_refused(url: str) -> None:
    assert "user name or password" in refusal(url, ["hooks.example.com", "evil.net"])


def test_malformed_and_overlong_urls_are_refused() -> None:
    allowed = ["hooks.example.com"]
    assert "no host" in refusal("http:///path", allowed)
    assert "port 0" in refusal("https://hooks.example.com:0/", allowed)
    assert "not a valid URL" in refusal("https://hooks.example.com/\x00", allowed)
    assert "2,048 characters" in refusal("https://hooks.example.com/" + "a" * 2048, allowed)


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0x7f.1", "127.1", "0177.0.0.1"])
def test_numbers_in_non_standard_forms_are_refused_even_if_listed(host: str) -> None:
    # Resolvers read all of these as 127.0.0.1.
    assert refusal(f"http://{host}/", [host, "127.0.0.1"])


INTERNAL = [
    "127.0.0.1",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.10",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier NAT
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2002:a9fe:a9fe::",  # 6to4 wrapping of the metadata address
]


def in_url(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize("address", INTERNAL)
def test_an_internal_address_is_refused_unless_listed(dns: FakeDns, address: str) -> None:
    assert "is not listed" in refusal(f"http://{in_url(address)}:8080/", ["hooks.example.com"])
    dns["hooks.example.com"] = ["93.184.216.34", address]  # a listed name whose DNS now points inward
    assert "resolves to an internal address" in refusal("https://hooks.example.com/", ["hooks.example.com"])
    listed = ipaddress.ip_address(address).compressed
    assert check_callback_url(f"http://{in_url(address)}:8080/hook", [address]) == f"http://{in_url(listed)}:8080/hook"
    assert check_callback_url("https://hooks.example.com/", ["hooks.example.com", address])


def test_ipv6_literals_match_with_or_without_brackets(dns: FakeDns) -> None:
    assert check_callback_url("http://[0:0:0:0:0:0:0:1]:8000/x", ["::1"]) == "http://[::1]:8000/x"
    assert check_callback_url("http://[::1]:8000/x", ["[::1]"]) == "http://[::1]:8000/x"
    assert "is not listed" in refusal("http://[::1]:8000/x", ["127.0.0.1"])


def test_localhost_may_be_listed_by_name(dns: FakeDns) -> None:
    dns["localhost"] = ["127.0.0.1", "::1"]
    dns["receiver"] = ["127.0.0.1"]
    assert check_callback_url("http://localhost:9000/hook", ["localhost"]) == "http://localhost:9000/hook"
    assert "internal address" in refusal("http://receiver:9000/hook", ["receiver"])


def test_a_host_that_does_not_resolve_is_refused(dns: FakeDns) -> None:
    assert "does not resolve" in refusal("https://gone.example.com/", ["gone.example.com"])


def test_signature_is_hmac_sha256_of_the_body() -> None:
    # RFC 4231, test case 2.
    assert sign(b"what do ya want for nothing?", "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that answers POSTs with the statuses it is given, in turn."""

    statuses: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/imgclf?token=abc"

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread, Receiver]] = []

    def start(*statuses: int, headers: dict[str, str] | None = None, gated: bool = False) -> Receiver:
        receiver = Receiver(list(statuses), headers or {})
        if not gated:
            receiver.gate.set()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, dict(self.headers), body))
                receiver.gate.wait(10)
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        receiver.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        thread.start()
        servers.append((server, thread, receiver))
        return receiver

    yield start
    for server, thread, receiver in servers:
        receiver.gate.set()
        server.shutdown()
        server.server_close()
        thread.join()


def test_deliver_posts_the_exact_body_signed(start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver()
    assert deliver(receiver.url, BODY, SECRET, ["127.0.0.1"], backoff=FAST)
    [(path, headers, body)] = receiver.received
    assert path == "/hooks/imgclf?token=abc"
    assert body == BODY
    assert headers["Content-Type"] == "application/json"
    assert headers[EVENT_HEADER] == "classification.ended"
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)


def test_deliver_retries_after_a_503_and_a_429(start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver(503, 429, 200)
    assert deliver(receiver.url, BODY, SECRET, ["127.0.0.1"], backoff=FAST)
    assert [body for _, _, body in receiver.received] == [BODY] * 3


def test_deliver_gives_up_after_the_last_try(start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver(*[500] * 10)
    assert not deliver(receiver.url, BODY, SECRET, ["127.0.0.1"], backoff=FAST)
    assert len(receiver.received) == DELIVERY_ATTEMPTS


def test_deliver_does_not_retry_a_client_error(start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver(400)
    assert not deliver(receiver.url, BODY, SECRET, ["127.0.0.1"], backoff=FAST)
    assert len(receiver.received) == 1


def test_deliver_does_not_follow_a_redirect(start_receiver: Callable[..., Receiver]) -> None:
    elsewhere = start_receiver()
    receiver = start_receiver(302, headers={"Location": f"http://localhost:{elsewhere.port}/"})
    assert not deliver(receiver.url, BODY, SECRET, ["127.0.0.1", "localhost"], backoff=FAST)
    assert len(receiver.received) == 1
    assert elsewhere.received == []


def test_deliver_gives_up_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert not deliver(f"http://127.0.0.1:{port}/", BODY, SECRET, ["127.0.0.1"], backoff=FAST)


def test_deliver_checks_the_url_again(start_receiver: Callable[..., Receiver], dns: FakeDns) -> None:
    # Accepted at submit while the name was public; its DNS now points at the service's own machine.
    receiver = start_receiver()
    dns["hooks.example.com"] = ["127.0.0.1"]
    url = f"http://hooks.example.com:{receiver.port}/"
    assert not deliver(url, BODY, SECRET, ["hooks.example.com"], backoff=FAST)
    assert receiver.received == []


def test_sender_delivers_in_the_background(start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver(gated=True)  # a slow receiver: it answers once the gate opens
    sender = WebhookSender(SECRET, ["127.0.0.1"], backoff=FAST)
    started = time.monotonic()
    sender.send(receiver.url, BODY)
    receiver.wait_for(1)
    assert time.monotonic() - started < 1
    receiver.gate.set()
    assert sender.stop(timeout=5)
    assert [body for _, _, body in receiver.received] == [BODY]


def test_sender_drops_what_its_full_queue_cannot_hold(
    start_receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = start_receiver(gated=True)
    sender = WebhookSender(SECRET, ["127.0.0.1"], backoff=FAST, max_queued=1)
    sender.send(receiver.url, b'{"n": 1}')
    receiver.wait_for(1)  # the first is being delivered, so the queue is empty again
    sender.send(receiver.url, b'{"n": 2}')
    with caplog.at_level(logging.WARNING, logger="imgclf.jobs.webhooks"):
        sender.send(receiver.url, b'{"n": 3}')
    assert "webhook dropped" in caplog.text
    receiver.gate.set()
    assert sender.stop(timeout=5)
    assert [body for _, _, body in receiver.received] == [b'{"n": 1}', b'{"n": 2}']
