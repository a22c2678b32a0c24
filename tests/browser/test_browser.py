"""A person's path through the pages, in headless Chromium (Debian's package, driven by Playwright)."""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import CATS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parents[2] / ".pytest_cache" / "screens"
"""Where the browser test leaves what it saw, for a person to look at."""

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def test_pick_a_model_and_a_photo_and_see_the_chart(page: Page, live_server: str) -> None:
    page.goto(live_server)
    page.get_by_role("link", name="Start a classification").click()
    page.select_option("#model_id", "efficientnet_lite0")
    page.select_option("#image_id", "chelsea.jpg")
    expect(page.locator("#preview")).to_be_visible()
    page.get_by_role("button", name="Classify").click()

    expect(page.locator("#job-id")).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
    bars = page.locator("#chart li")
    expect(bars).to_have_count(5, timeout=60_000)
    expect(page.locator("#status")).to_have_text("Done.")
    assert bars.first.locator(".label").inner_text() in CATS
    first_width = bars.first.locator(".bar").evaluate("el => el.getBoundingClientRect().width")
    last_width = bars.last.locator(".bar").evaluate("el => el.getBoundingClientRect().width")
    assert first_width > last_width  # bars are drawn to scale, highest first
    assert page.locator(".result img").evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(SCREENSHOTS / "result.png"), full_page=True)


def test_a_failed_job_shows_its_message_instead_of_spinning(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/classifications")
    page.select_option("#model_id", "efficientnet_lite0")
    page.select_option("#image_id", "broken.jpg")
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("#error")).to_contain_text("could not be decoded", timeout=60_000)
    expect(page.locator("#status")).to_have_text("Failed.")


def test_api_docs_render_offline(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Image classification service")
