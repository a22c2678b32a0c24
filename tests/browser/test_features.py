"""The pages' features (issue 13) as a person meets them, in headless Chromium: adjust an uploaded
photo and watch the preview change, the result's chart, histograms and downloads, trying again,
comparing models, the recent results; then every page on a phone and a desktop, from the keyboard
alone, without JavaScript, under axe-core, and the screenshots of docs/screenshots."""

import io
import json
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from PIL import Image, PngImagePlugin
from playwright.sync_api import Browser, FilePayload, Locator, Page, StorageState, ViewportSize, expect

from imgclf.ops.processes import spawn, stop, wait_for_workers
from tests.browser.conftest import SCREENSHOTS, IdleWeb, idle_web_server, tab_through, watched_page
from tests.conftest import CATS, fresh_photo, job_id_from_location, submit
from tests.integration.v1_helpers import poll, pretend_running

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}

THREE_MODELS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
THREE_TITLES = ["EfficientNet-Lite0", "EfficientNet-Lite1", "EfficientNet-Lite2"]

DOCS_SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
SHOTS = DOCS_SCREENSHOTS if os.environ.get("IMGCLF_SCREENSHOTS") == "1" else SCREENSHOTS
"""Where test_screenshots leaves its pictures: docs/screenshots for `make screenshots`, else beside the others."""

UPLOAD_NAME = "my cat.png"
RESULT_PAGE = re.compile(r"/results/[0-9a-f-]{36}$")
CHART = ".result ol.chart li"
HISTOGRAM = "figure.histogram svg path"

DONE_NOTE = re.compile(r"^(The model took [\d.,]+ ms|From the cache: the model did not run again for this photo)\.$")
"""What each column of a finished comparison says under its top 5."""

AXE = Axe()


def unique_png(image_dir: Path) -> bytes:
    """chelsea.jpg saved again by Pillow as a PNG with a text chunk of its own: a photo of a cat
    whose bytes the result cache has never seen."""
    out = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", uuid.uuid4().hex)
    with Image.open(image_dir / "chelsea.jpg") as picture:
        picture.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def lightness(canvas: Locator) -> float:
    """The mean of every channel of every pixel the canvas shows, 0 to 255."""
    return float(
        canvas.evaluate(
            """(canvas) => {
                const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let sum = 0;
                for (let i = 0; i < data.length; i += 4) sum += data[i] + data[i + 1] + data[i + 2];
                return sum / (data.length / 4 * 3);
            }"""
        )
    )


def press(page: Page, label: str, key: str, times: int) -> None:
    """Moves the control labelled `label` with the keyboard, as a person without a mouse does."""
    page.get_by_label(label, exact=True).focus()
    for _ in range(times):
        page.keyboard.press(key)


def preview(page: Page) -> Locator:
    return page.get_by_role("img", name=re.compile(r"^Preview of the photo"))


def photo_caption(page: Page) -> Locator:
    return page.locator("#photo figure").first.locator("figcaption")


def classify_a_brightened_upload(page: Page, live_server: str, image_dir: Path) -> str:
    """On the form: upload a photo, brighten it by keyboard and watch the preview lighten, then
    classify it. The job id, once its page says it is done."""
    page.goto(f"{live_server}/classifications")
    page.get_by_label("Or your own photo").set_input_files(
        FilePayload(name=UPLOAD_NAME, mimeType="image/png", buffer=unique_png(image_dir))
    )
    expect(page.locator("#preview-caption")).to_have_text(UPLOAD_NAME)
    canvas = preview(page)
    expect(canvas).to_have_js_property("width", 451)  # the upload drawn, no longer the catalogue's photo
    expect(canvas).to_have_attribute("aria-label", "Preview of the photo")
    before = lightness(canvas)

    press(page, "Brightness", "ArrowRight", 4)
    expect(page.locator("#brightness-value")).to_have_text("1.20")
    expect(canvas).to_have_attribute("aria-label", "Preview of the photo, brightness 1.20")
    assert lightness(canvas) > before * 1.1  # the person sees the photo lighter before sending it

    page.get_by_role("button", name="Classify").click()
    expect(page).to_have_url(RESULT_PAGE)
    expect(page.locator("#status")).to_have_text("Done.", timeout=60_000)
    return job_id_from_location(page.url)


def expect_histograms(page: Page) -> None:
    """Four curves (luminance, red, green, blue), each a point per level 0..255, not all flat."""
    paths = page.locator(HISTOGRAM)
    expect(paths).to_have_count(4)
    expect(page.locator("figure.histogram")).to_be_visible()
    for shape in paths.evaluate_all("(paths) => paths.map((path) => path.getAttribute('d'))"):
        numbers = [float(number) for number in re.findall(r"\d+(?:\.\d+)?", shape)]
        levels = numbers[2:-2] if shape.endswith("Z") else numbers  # an area starts and ends on the baseline
        assert [int(x) for x in levels[0::2]] == list(range(256))
        assert min(levels[1::2]) < 90  # some level is well above the baseline (100)


def expect_chart(page: Page) -> str:
    """Five rows, highest first, the top one named in the page's heading; the top class."""
    bars = page.locator(CHART)
    expect(bars).to_have_count(5)
    percents = [float(text.rstrip(" %")) for text in bars.locator(".percent").all_inner_texts()]
    assert percents == sorted(percents, reverse=True)
    best = bars.first.locator(".label").inner_text()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^{re.escape(best)}, \d+ %$"))
    return best


def saved(page: Page, link: Locator) -> tuple[Path, str, str]:
    """Clicks a download link: the file the browser saved, its name, and the Content-Disposition the link's
    address answers with."""
    with page.expect_download() as started:
        link.click()
    download = started.value
    answer = page.request.get(link.evaluate("(link) => link.href"))
    assert answer.ok
    return download.path(), download.suggested_filename, answer.headers["content-disposition"]


def test_upload_adjust_classify_save_compare_and_find_it_again(
    browser: Browser, live_server: str, image_dir: Path
) -> None:
    with watched_page(browser, viewport=PHONE) as page:
        job_id = classify_a_brightened_upload(page, live_server, image_dir)

        assert expect_chart(page) in CATS
        expect_histograms(page)
        expect(photo_caption(page)).to_contain_text(f"{UPLOAD_NAME} (451 x 300 pixels)")
        expect(photo_caption(page)).to_contain_text("with brightness 1.2")

        resource = page.request.get(f"{live_server}/api/v1/classifications/{job_id}").json()
        path, name, disposition = saved(page, page.get_by_role("link", name="The result as JSON"))
        assert json.loads(path.read_text()) == resource
        assert name.endswith(".json")
        assert disposition == f'attachment; filename="{name}"'
        path, name, disposition = saved(page, page.get_by_role("link", name="The chart as a picture (PNG)"))
        with Image.open(path) as card:
            assert (card.format, card.size) == ("PNG", (1200, 630))
        assert name.endswith(".png")
        assert disposition == f'attachment; filename="{name}"'
        path, name, disposition = saved(page, page.get_by_role("link", name="The photo"))
        with Image.open(path) as photo:
            assert (photo.format, photo.size) == ("JPEG", (451, 300))
        assert name.endswith(".jpg")
        assert disposition == f'attachment; filename="{name}"'

        page.get_by_role("link", name="Compare models on this photo").click()
        expect(page.get_by_label("Image from the catalogue")).to_have_value(f"job:{job_id}")
        expect(page.locator("#brightness-value")).to_have_text("1.20")
        for box in page.locator("input[name=model_id]").all():
            box.set_checked(box.get_attribute("value") in THREE_MODELS)
        page.get_by_role("button", name="Compare").click()
        expect(page).to_have_url(re.compile(r"/comparisons/[0-9a-f-]{36}$"))
        comparison_path = page.url.removeprefix(live_server)
        columns = page.locator("article.column")
        expect(columns.locator("h2")).to_have_text(THREE_TITLES)
        for column in columns.all():
            expect(column.locator("ol.chart li")).to_have_count(5, timeout=60_000)
            expect(column.locator("p.note")).to_have_text(DONE_NOTE)
        expect(page.locator("#status")).to_have_text(re.compile(r"^Done\."))

        page.goto(live_server)
        recent = page.locator("#recent-list a")
        for _ in range(2):  # as it was left, and after a reload
            expect(page.locator("#recent")).to_be_visible()
            expect(recent).to_have_text(
                [f"Comparison of 3 models on {UPLOAD_NAME}", f"EfficientNet-Lite0 on {UPLOAD_NAME}"]
            )
            assert [link.get_attribute("href") for link in recent.all()] == [comparison_path, f"/results/{job_id}"]
            page.reload()
        page.get_by_role("button", name="Forget them").click()
        expect(page.locator("#recent")).to_be_hidden()
        expect(recent).to_have_count(0)
        page.reload()
        expect(page.locator("#recent")).to_be_hidden()


def test_try_again_keeps_the_photo_and_the_adjustments(browser: Browser, live_server: str, image_dir: Path) -> None:
    with watched_page(browser, viewport=PHONE) as page:
        first_id = classify_a_brightened_upload(page, live_server, image_dir)
        page.get_by_role("link", name="Try again with other settings").click()

        photo_choice = page.get_by_label("Image from the catalogue")
        expect(photo_choice).to_have_value(f"job:{first_id}")
        expect(photo_choice.locator("option:checked")).to_have_text(
            f"Your photo from the earlier result: {UPLOAD_NAME}"
        )
        expect(page.locator("#brightness-value")).to_have_text("1.20")
        canvas = preview(page)
        expect(canvas).to_have_attribute("aria-label", "Preview of the photo, brightness 1.20")
        press(page, "Contrast", "ArrowLeft", 4)
        expect(page.locator("#contrast-value")).to_have_text("0.80")
        expect(canvas).to_have_attribute("aria-label", "Preview of the photo, brightness 1.20, contrast 0.80")
        page.get_by_role("button", name="Classify").click()

        expect(page).to_have_url(RESULT_PAGE)
        second_id = job_id_from_location(page.url)
        assert second_id != first_id
        expect(page.locator("#status")).to_have_text("Done.", timeout=60_000)
        expect(photo_caption(page)).to_contain_text("with brightness 1.2, contrast 0.8")
        first, second = (
            page.request.get(f"{live_server}/api/v1/classifications/{job_id}").json()
            for job_id in (first_id, second_id)
        )
        assert second["adjustments"] == {**first["adjustments"], "contrast": 0.8}
        assert first["adjustments"]["brightness"] == 1.2
        assert second["image"] == first["image"]  # the same upload, not sent again by the browser


# --- every page, on a phone and a desktop ---

KINDS = ["home", "classify", "compare", "running", "result", "comparison", "missing"]


@dataclass(frozen=True)
class Site:
    urls: dict[str, str]
    """Each kind of page's address."""
    photo: str
    """The catalogue photo of the result, the comparison and the running job."""


@pytest.fixture(scope="module")
def site(live_server: str, fresh_redis_url: Callable[[], str], image_dir: Path, model_dir: Path) -> Iterator[Site]:
    """A page of each kind: a result with histograms (a photo made lighter), a comparison of three
    models on that photo, and a job held running by a server without worker."""
    # A camera's kind of name: one long word, which a phone's width must wrap; and bytes of its own.
    photo = f"IMG_20260504_{uuid.uuid4().int % 10**6:06d}.jpg"
    (image_dir / photo).write_bytes((image_dir / "chelsea.jpg").read_bytes() + photo.encode())
    adjustments = {"brightness": 1.2}
    with httpx.Client(base_url=live_server) as client:
        posted = client.post(
            "/api/v1/classifications", json={"model": "efficientnet_lite0", "image": photo, "adjustments": adjustments}
        )
        result = poll(client, posted.json()["links"]["self"])
        posted = client.post(
            "/api/v1/comparisons", json={"image": photo, "models": THREE_MODELS, "adjustments": adjustments}
        )
        comparison = poll(client, posted.json()["links"]["self"])
    assert result["status"] == comparison["status"] == "succeeded"
    with idle_web_server(fresh_redis_url, image_dir, model_dir) as (idle_url, _, connection):
        with httpx.Client(base_url=idle_url) as client:
            running = submit(client, "efficientnet_lite0", photo)
        pretend_running(connection, running, attempt=1)
        urls = {
            "home": f"{live_server}/",
            "classify": f"{live_server}/classifications",
            "compare": f"{live_server}/compare",
            "running": f"{idle_url}/results/{running}",
            "result": live_server + result["links"]["page"],
            "comparison": live_server + comparison["links"]["page"],
            "missing": f"{live_server}/results/{uuid.uuid4()}",
        }
        yield Site(urls, photo)


def recent_results(site: Site) -> StorageState:
    """Browser storage in which the result and the comparison were seen at fixed times, so that
    the home page and the forms list them, the same in every run."""
    origin = site.urls["home"].rstrip("/")
    entries = [
        {"url": site.urls[kind].removeprefix(origin), "title": title, "at": at}
        for kind, title, at in (
            ("comparison", f"Comparison of 3 models on {site.photo}", "2026-05-04T09:41:00Z"),
            ("result", f"EfficientNet-Lite0 on {site.photo}", "2026-05-04T09:40:00Z"),
        )
    ]
    return {
        "cookies": [],
        "origins": [{"origin": origin, "localStorage": [{"name": "imgclf.recent", "value": json.dumps(entries)}]}],
    }


READY: dict[str, Callable[[Page], None]] = {
    "home": lambda page: expect(page.locator("#recent-list li")).to_have_count(2),
    "classify": lambda page: expect(preview(page)).to_be_visible(),
    "compare": lambda page: expect(preview(page)).to_be_visible(),
    "running": lambda page: expect(page.locator("#status")).to_have_text("running"),
    "result": lambda page: expect(page.locator(HISTOGRAM)).to_have_count(4),
    "comparison": lambda page: expect(page.locator("article.column ol.chart li")).to_have_count(15),
    "missing": lambda page: expect(page.get_by_role("heading", level=1)).to_have_text("No such result"),
}
"""What shows that each kind of page is complete (the forms: the preview drawn by the script)."""


def settle(page: Page) -> None:
    """Waits for the fonts and every image, then two frames: what a screenshot then shows is done."""
    page.wait_for_function("() => Array.from(document.images).every((image) => image.complete)")
    page.evaluate(
        """() => document.fonts.ready.then(
            () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))))"""
    )


@contextmanager
def opened(browser: Browser, site: Site, kind: str, viewport: ViewportSize) -> Iterator[Page]:
    """Page `kind` in a window of `viewport`'s size, once complete, with the recent results listed."""
    url = site.urls[kind]
    missing = f"{url}: Failed to load resource: the server responded with a status of 404 (Not Found)"
    with watched_page(
        browser,
        allowed=[missing] if kind == "missing" else [],
        viewport=viewport,
        storage_state=recent_results(site),
        locale="en-GB",
        timezone_id="UTC",
    ) as page:
        page.goto(url)
        READY[kind](page)
        settle(page)
        yield page


WIDE = """() => {
    const width = window.innerWidth;
    const wide = [];
    const name = (element) => element.tagName.toLowerCase() + (element.id ? "#" + element.id : "")
        + (element.classList.length ? "." + Array.from(element.classList).join(".") : "");
    const reaches = (box) => box.width > 0 && box.height > 0 && box.right > width + 1;
    for (const element of document.body.querySelectorAll("*")) {
        const box = element.getBoundingClientRect();
        if (!reaches(box) || element.closest(".visually-hidden")) continue;
        wide.push(name(element) + " ends at " + Math.round(box.right));
    }
    // Text can run out of its box (a long word in a heading) while the box itself fits.
    const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    while (texts.nextNode()) {
        const text = texts.currentNode;
        if (!text.textContent.trim() || text.parentElement.closest(".visually-hidden")) continue;
        range.selectNodeContents(text);
        const box = range.getBoundingClientRect();
        if (reaches(box)) wide.push("the text of " + name(text.parentElement) + " ends at " + Math.round(box.right));
    }
    return { width: width, scrollWidth: document.documentElement.scrollWidth, wide: wide };
}"""
"""The window's width, the page's, and every element or text (but the visually hidden) that reaches past the window."""


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("kind", KINDS)
def test_no_page_is_wider_than_the_window(browser: Browser, site: Site, kind: str, viewport: str) -> None:
    with opened(browser, site, kind, VIEWPORTS[viewport]) as page:
        layout = page.evaluate(WIDE)
    assert layout["width"] == VIEWPORTS[viewport]["width"]
    assert layout["wide"] == []
    assert layout["scrollWidth"] <= layout["width"]


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("kind", KINDS)
def test_axe_finds_nothing_serious(browser: Browser, site: Site, kind: str, viewport: str) -> None:
    with opened(browser, site, kind, VIEWPORTS[viewport]) as page:
        violations = AXE.run(page).response["violations"]
    serious = [
        f"{violation['id']} ({violation['impact']}): {violation['help']}; "
        + ", ".join(" ".join(node["target"]) for node in violation["nodes"])
        for violation in violations
        if violation["impact"] in ("serious", "critical")
    ]
    assert serious == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize(
    ("kind", "button", "lands_on"), [("classify", "Classify", "/results/"), ("compare", "Compare", "/comparisons/")]
)
def test_the_forms_work_from_the_keyboard_alone(
    browser: Browser, site: Site, kind: str, button: str, lands_on: str, viewport: str
) -> None:
    with opened(browser, site, kind, VIEWPORTS[viewport]) as page:
        controls, reached = tab_through(page, "form.pick")
        assert {"image_id", "file", "brightness", "sharpness", "rotate", "flip", "reset-adjustments"} <= set(controls)
        assert reached == controls
        assert reached[-1] == button
        page.keyboard.press("Tab")  # and on, out of the form: nothing holds the focus
        assert page.evaluate("() => document.activeElement.closest('form') === null")
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(lands_on))
        expect(page.locator("#status")).to_be_visible()


# --- without JavaScript ---


def test_without_javascript_the_adjustments_post_and_the_page_reloads_until_done(
    browser: Browser, idle_web: IdleWeb, image_dir: Path
) -> None:
    url, settings, connection = idle_web
    photo = fresh_photo(image_dir)
    worker: subprocess.Popen[bytes] | None = None
    with watched_page(browser, java_script_enabled=False, viewport=PHONE) as page:
        try:
            loads: list[str] = []
            page.on("load", lambda loaded: loads.append(loaded.url))
            page.goto(f"{url}/classifications")
            expect(page.get_by_role("button", name="Reset adjustments")).to_be_hidden()  # it needs the script
            page.get_by_label("Image from the catalogue").select_option(photo)
            press(page, "Brightness", "ArrowRight", 2)  # the browser's own range input, no script
            page.get_by_label("Rotate").select_option("90")
            page.get_by_label("Flip left to right").check()
            page.get_by_role("button", name="Classify").click()

            expect(page).to_have_url(RESULT_PAGE)
            expect(page.locator("#status")).to_have_text("1st in line, about 30 s")  # no worker yet
            expect(page.get_by_role("heading", level=1)).to_have_text(f"Classifying {photo}")
            worker = spawn("worker", settings)
            wait_for_workers(connection, 1, [worker])
            expect(page.locator(CHART)).to_have_count(5, timeout=60_000)
            assert loads.count(page.url) >= 2  # the page reloaded itself (<noscript> refresh) until done
            expect(page.locator("#status")).to_have_text("Done.")
            expect_chart(page)
            expect_histograms(page)
            expect(photo_caption(page)).to_contain_text("with brightness 1.1, rotated 90°, flipped")
        finally:
            if worker is not None:
                stop(worker)


# --- screenshots ---


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_screenshots(browser: Browser, site: Site, viewport: str) -> None:
    size = VIEWPORTS[viewport]
    for kind in ("home", "running", "result", "comparison"):
        with opened(browser, site, kind, size) as page:
            png = page.screenshot(animations="disabled", caret="hide")
        path = SHOTS / f"{kind}-{viewport}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(io.BytesIO(png)) as shot:
            assert shot.size == (size["width"], size["height"])
            # 256 colours: a tenth of the bytes, and the pages are mostly flat colour.
            shot.convert("RGB").quantize(256).save(path, optimize=True)
