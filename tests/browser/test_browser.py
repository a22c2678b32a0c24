"""A person's path through the pages, in headless Chromium (Debian's package, driven by Playwright)."""

import base64
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect
from redis import Redis

from imgclf.config import Settings
from imgclf.jobs.queue import make_queue
from imgclf.ops.processes import spawn, stop, wait_for_workers
from tests.browser.conftest import SCREENSHOTS, IdleWeb, tab_through
from tests.conftest import CATS, fresh_photo, submit
from tests.integration.v1_helpers import pretend_running
from tests.pictures import unique_jpeg

pytestmark = pytest.mark.browser

CHART = ".result ol.chart li"
"""The rows of a result page's top 5."""

PHOTO = "#photo figure img"
"""The photo on a result page (its histograms are a figure beside it)."""


def test_pick_a_model_and_a_photo_and_see_the_chart(page: Page, live_server: str) -> None:
    page.goto(live_server)
    page.get_by_role("link", name="Start a classification").click()
    page.select_option("#model_id", "efficientnet_lite0")
    page.select_option("#image_id", "chelsea.jpg")
    expect(page.get_by_role("img", name="Preview of the photo")).to_be_visible()
    page.get_by_role("button", name="Classify").click()

    expect(page.locator("#job-id")).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
    bars = page.locator(CHART)
    expect(bars).to_have_count(5, timeout=60_000)
    expect(page.locator("#status")).to_have_text(re.compile(r"^Done"))  # chelsea may come from the cache
    best = bars.first.locator(".label").inner_text()
    assert best in CATS
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^{re.escape(best)}, \d+ %$"))  # the answer
    first_width = bars.first.locator(".bar").evaluate("el => el.getBoundingClientRect().width")
    last_width = bars.last.locator(".bar").evaluate("el => el.getBoundingClientRect().width")
    assert first_width > last_width  # bars are drawn to scale, highest first
    assert page.locator(PHOTO).evaluate("img => img.naturalWidth") > 0
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


DROP = """(zone, [data, name]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
    for (const type of ["dragenter", "dragover", "drop"]) {
        zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }
}"""
"""Drops a file made of the test's bytes on the drop zone, as a person dragging it from their files."""


def drop(page: Page, data: bytes, name: str) -> None:
    page.locator("#dropzone").evaluate(DROP, [base64.b64encode(data).decode(), name])


@pytest.fixture
def count_jobs(worker_settings: Settings) -> Iterator[Callable[[], int]]:
    """How many jobs the live server's Redis holds, in any state."""
    connection = Redis.from_url(worker_settings.redis_url or "")
    yield lambda: sum(1 for _ in connection.scan_iter("rq:job:*"))
    connection.close()


def test_drop_a_photo_classify_reload_and_share_the_page(
    page: Page, browser: Browser, live_server: str, image_dir: Path, count_jobs: Callable[[], int]
) -> None:
    page.goto(f"{live_server}/classifications")
    page.select_option("#model_id", "efficientnet_lite0")
    drop(page, unique_jpeg(image_dir), "my cat.jpg")
    preview = page.locator("#preview")  # the photo, drawn on the canvas with the adjustments
    expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    expect(page.locator("#adjusted-preview")).to_be_visible()
    assert preview.evaluate("img => img.naturalWidth") == 451
    expect(page.locator("#preview-caption")).to_have_text("my cat.jpg")
    expect(page.locator("#image_id")).to_have_value("")  # one photo: the catalogue's choice is now None
    jobs_before = count_jobs()
    page.get_by_role("button", name="Classify").click()

    expect(page).to_have_url(re.compile(r"/results/[0-9a-f-]{36}$"))
    job_id = page.locator("#job-id").inner_text()
    assert page.url == f"{live_server}/results/{job_id}"
    bars = page.locator(CHART)
    expect(bars).to_have_count(5, timeout=60_000)
    expect(page.locator("#status")).to_have_text("Done.")  # new bytes: not from the cache
    assert bars.first.locator(".label").inner_text() in CATS
    expect(page.locator("#timings")).to_contain_text("The model")
    photo = page.locator(PHOTO)
    assert photo.get_attribute("src") == f"/api/v1/classifications/{job_id}/image"  # the re-encoded copy
    assert photo.evaluate("img => img.naturalWidth") == 451
    expect(page.locator("#photo figure figcaption").first).to_contain_text("my cat.jpg")
    labels = bars.locator(".label").all_inner_texts()
    assert count_jobs() == jobs_before + 1

    page.reload()
    expect(page.locator("#job-id")).to_have_text(job_id)
    expect(bars).to_have_count(5)
    assert count_jobs() == jobs_before + 1  # a reload reads the page again; nothing is posted

    someone_else = browser.new_context()
    try:
        shared = someone_else.new_page()
        shared.goto(page.locator("#permalink").evaluate("link => link.href"))
        expect(shared.locator("#job-id")).to_have_text(job_id)
        expect(shared.locator(f"{CHART} .label")).to_have_text(labels)
        assert shared.locator(PHOTO).evaluate("img => img.naturalWidth") == 451
        shared.screenshot(path=str(SCREENSHOTS / "shared-result.png"), full_page=True)
    finally:
        someone_else.close()
    assert count_jobs() == jobs_before + 1


def test_a_photo_can_be_picked_or_pasted_and_the_catalogue_picked_again(
    page: Page, live_server: str, image_dir: Path
) -> None:
    page.goto(f"{live_server}/classifications")
    page.set_input_files("#file", FilePayload(name="picked.jpg", mimeType="image/jpeg", buffer=unique_jpeg(image_dir)))
    expect(page.locator("#preview-caption")).to_have_text("picked.jpg")
    expect(page.locator("#image_id")).to_have_value("")

    page.select_option("#image_id", "coffee.jpg")  # back to the catalogue: the file is dropped
    assert page.locator("#file").evaluate("input => input.files.length") == 0
    expect(page.locator("#preview")).to_have_attribute("src", "/images/coffee.jpg")

    page.evaluate(
        """(data) => {
            const transfer = new DataTransfer();
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], "pasted.jpg", { type: "image/jpeg" }));
            document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true }));
        }""",
        base64.b64encode(unique_jpeg(image_dir)).decode(),
    )
    expect(page.locator("#preview-caption")).to_have_text("pasted.jpg")
    assert page.locator("#file").evaluate("input => input.files[0].name") == "pasted.jpg"  # the form posts it


def test_a_file_over_the_limit_is_refused_in_the_browser(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/classifications")
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.locator("#dropzone").evaluate(
        """(zone) => {
            const limit = Number(zone.closest("form").dataset.maxFileBytes);
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(limit + 1)], "huge.jpg", { type: "image/jpeg" }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }"""
    )
    error = page.locator("#file-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("huge.jpg")
    expect(error).to_contain_text("over the limit of 10 MB")
    expect(page.locator("#file")).to_have_attribute("aria-invalid", "true")
    assert page.locator("#file").evaluate("input => input.files.length") == 0
    expect(page.locator("#preview")).to_have_attribute("src", re.compile(r"^/images/"))  # the catalogue's photo

    page.get_by_role("button", name="Classify").click()  # the form still works, with the catalogue photo
    expect(page).to_have_url(re.compile(r"/results/"))
    assert posts == [f"{live_server}/classifications"]


def test_the_page_follows_a_job_live(page: Page, idle_web: IdleWeb, image_dir: Path) -> None:
    url, _, connection = idle_web
    with httpx.Client(base_url=url) as client:
        jobs = [submit(client, "efficientnet_lite0", fresh_photo(image_dir)) for _ in range(3)]
    page.goto(f"{url}/results/{jobs[2]}")
    status = page.locator("#status")
    expect(status).to_have_text("3rd in line, about 30 s")  # no worker yet: the service's guess

    make_queue(connection).remove(jobs[0])  # the first in line leaves: this one moves up
    expect(status).to_have_text("2nd in line, about 30 s")
    pretend_running(connection, jobs[2], attempt=2)  # a worker died on it once; now another runs it
    expect(status).to_have_text("running (attempt 2 of 3)")
    httpx.delete(f"{url}/api/v1/classifications/{jobs[2]}").raise_for_status()
    expect(status).to_have_text("Canceled.")
    expect(page.locator("#error")).to_contain_text("The job was canceled")
    expect(page.get_by_role("heading", level=1)).to_have_text("Classification canceled")
    expect(page.locator(CHART)).to_have_count(0)


def test_without_event_source_the_page_long_polls(browser: Browser, idle_web: IdleWeb, image_dir: Path) -> None:
    url, settings, connection = idle_web
    context = browser.new_context()
    context.add_init_script("delete window.EventSource;")
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    worker: subprocess.Popen[bytes] | None = None
    try:
        with httpx.Client(base_url=url) as client:
            job_id = submit(client, "efficientnet_lite0", fresh_photo(image_dir))
        page.goto(f"{url}/results/{job_id}")
        expect(page.locator("#status")).to_have_text("1st in line, about 30 s")
        worker = spawn("worker", settings)
        wait_for_workers(connection, 1, [worker])
        expect(page.locator(CHART)).to_have_count(5, timeout=60_000)
        expect(page.locator("#status")).to_have_text("Done.")
        assert f"{url}/api/v1/classifications/{job_id}?wait=20" in requests
        assert not [request for request in requests if request.endswith("/events")]
    finally:
        if worker is not None:
            stop(worker)
        context.close()


def test_without_javascript_the_form_posts_and_the_page_reloads_until_done(
    browser: Browser, live_server: str, image_dir: Path
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        photo = fresh_photo(image_dir)
        page = context.new_page()
        page.goto(f"{live_server}/classifications")
        page.select_option("#model_id", "efficientnet_lite1")
        page.select_option("#image_id", photo)
        page.get_by_role("button", name="Classify").click()
        expect(page).to_have_url(re.compile(r"/results/[0-9a-f-]{36}$"))
        bars = page.locator(CHART)
        expect(bars).to_have_count(5, timeout=60_000)  # drawn by the server
        assert bars.first.locator(".label").inner_text() in CATS
        expect(page.locator("#status")).to_have_text("Done.")
    finally:
        context.close()


def test_the_pages_fit_a_small_phone_and_work_from_the_keyboard(browser: Browser, live_server: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        page.goto(f"{live_server}/classifications")
        for label in ("Model", "Image from the catalogue", "Or your own photo", "Brightness", "Rotate", "Flip"):
            expect(page.get_by_label(label)).to_be_visible()  # every control has a label
        expect(page.get_by_role("img", name="Preview of the photo")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360

        controls, reached = tab_through(page, "form.pick")
        assert reached == controls
        assert reached[-1] == "Classify"
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/results/"))
        expect(page.locator(CHART)).to_have_count(5, timeout=60_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(SCREENSHOTS / "result-360px.png"), full_page=True)
    finally:
        context.close()
