import pytest
from starlette.datastructures import Headers

from imgclf.web.origin import is_cross_site


@pytest.mark.parametrize(
    "headers",
    [
        {"host": "example.com", "sec-fetch-site": "cross-site"},
        {"host": "example.com", "sec-fetch-site": "same-site"},
        {"host": "example.com", "origin": "null"},
        {"host": "example.com", "origin": "https://evil.example"},
        {"host": "example.com:8080", "origin": "http://example.com"},
        {"host": "example.com", "origin": "http://example.com:8080"},
        {"host": "example.com", "origin": "http://example.com:not-a-port"},
        {"host": "example.com", "origin": "ftp://example.com"},
        {"origin": "http://example.com"},
        {"host": "example.com", "origin": "http://example.com", "sec-fetch-site": "cross-site"},
    ],
)
def test_posts_from_another_site_are_cross_site(headers: dict[str, str]) -> None:
    assert is_cross_site(Headers(headers))


@pytest.mark.parametrize(
    "headers",
    [
        {"host": "example.com"},
        {"host": "example.com", "sec-fetch-site": "same-origin"},
        {"host": "example.com", "sec-fetch-site": "none"},
        {"host": "example.com", "origin": "http://example.com"},
        {"host": "example.com", "origin": "https://example.com"},
        {"host": "Example.COM:443", "origin": "https://example.com"},
        {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"},
        {"host": "[::1]:8000", "origin": "http://[::1]:8000"},
    ],
)
def test_posts_from_this_site_or_without_browser_headers_are_not(headers: dict[str, str]) -> None:
    assert not is_cross_site(Headers(headers))
