"""What the browser tests share: Debian's Chromium driven by Playwright, pages that fail the test
when a script throws or the browser logs an error, and a web server whose jobs wait (no worker)."""

import shutil
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from redis import Redis

from imgclf.config import Settings
from imgclf.ops.embedded_redis import free_port
from tests.conftest import make_settings, running_web

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

SCREENSHOTS = Path(__file__).parents[2] / ".pytest_cache" / "screens"
"""Where the browser tests leave what they saw, for a person to look at."""

IdleWeb = tuple[str, Settings, Redis]
"""An idle web server's base URL, its settings and a connection to its Redis database."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@contextmanager
def watched_page(browser: Browser, allowed: Collection[str] = (), **context_options: Any) -> Iterator[Page]:
    """A page in a context of its own; the test fails if a script on it throws or the browser logs
    an error (a resource the Content-Security-Policy refused, a failed request), unless `allowed`
    names it ("<url>: <message>", e.g. the 404 of a page that is meant to be missing)."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.append(f"{message.location['url']}: {message.text}") if message.type == "error" else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    assert [problem for problem in problems if problem not in allowed] == []


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with watched_page(browser) as page:
        yield page


CONTROL_NAME = """(control) => control.id
    || (control.name ? control.name + "=" + control.value : control.textContent.trim())"""
"""How a form control is named in a test's lists: its id, else name=value, else its text (a button)."""


def tab_through(page: Page, form: str) -> tuple[list[str], list[str]]:
    """The controls of `form` (a selector) a person can use, in document order; and those the Tab
    key reaches, one press at a time from the first. Focus is left on the last one reached."""
    controls: list[str] = page.locator(form).evaluate(
        f"""(form) => Array.from(form.querySelectorAll("input, select, button, textarea"))
            .filter((control) => !control.disabled && control.getClientRects().length > 0)
            .map({CONTROL_NAME})"""
    )
    page.locator(form).evaluate("(form) => form.querySelector('input, select, button, textarea').focus()")
    reached = [focused(page)]
    for _ in controls[1:]:
        page.keyboard.press("Tab")
        reached.append(focused(page))
    return controls, reached


def focused(page: Page) -> str:
    return str(page.evaluate(f"() => ({CONTROL_NAME})(document.activeElement)"))


@contextmanager
def idle_web_server(fresh_redis_url: Callable[[], str], image_dir: Path, model_dir: Path) -> Iterator[IdleWeb]:
    """An `imgclf web` on a Redis database of its own that no worker reads: jobs wait until a test
    starts a worker or moves them on by hand."""
    settings = make_settings(
        fresh_redis_url(), image_dir, model_dir, port=free_port(), models=["efficientnet_lite0"], result_cache_ttl=0
    )
    connection = Redis.from_url(settings.redis_url or "")
    try:
        with running_web(settings) as url:
            yield url, settings, connection
    finally:
        connection.close()


@pytest.fixture
def idle_web(fresh_redis_url: Callable[[], str], image_dir: Path, model_dir: Path) -> Iterator[IdleWeb]:
    with idle_web_server(fresh_redis_url, image_dir, model_dir) as idle:
        yield idle
