"""Whether a form post comes from another site (cross-site request forgery).

A page on any site can make a visitor's browser post a form here; the browser then says where
the post comes from, in `Sec-Fetch-Site` (every current browser) and in `Origin`. A post is
cross-site when `Sec-Fetch-Site` is anything but `same-origin` or `none` (typed or bookmarked),
or when `Origin` is `null` (sandboxed frames, some redirects) or names another host and port
than the request's Host. A request with neither header is not from a browser that could be
tricked, so it passes: curl and scripts post without them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

SAME_SITE_FETCHES = frozenset({"same-origin", "none"})
"""`Sec-Fetch-Site` values of requests this site's own pages (or the user) made."""

DEFAULT_PORTS = {"http": 80, "https": 443}


def is_cross_site(headers: Headers) -> bool:
    """True if a browser says this request was made by a page of another site."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE_FETCHES:
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    return not _same_host_and_port(origin, headers.get("host", ""))


def _same_host_and_port(origin: str, host: str) -> bool:
    try:
        origin_parts = urlsplit(origin)
        host_parts = urlsplit(f"//{host}")
        default_port = DEFAULT_PORTS.get(origin_parts.scheme)
        if default_port is None or not origin_parts.hostname or not host_parts.hostname:
            return False  # `null`, or not a web origin
        # The Host header leaves out the default port of the scheme the browser used; behind a
        # TLS proxy that scheme is not ours, so the Origin's says which port that is.
        return (origin_parts.hostname, origin_parts.port or default_port) == (
            host_parts.hostname,
            host_parts.port or default_port,
        )
    except ValueError:  # a port that is not a number
        return False
