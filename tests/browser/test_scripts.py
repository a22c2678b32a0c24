"""The form's adjustment preview (adjust.js) and the list of recent results (recent.js), in headless
Chromium on pages of the tests' own, served from 127.0.0.1 with the pages' Content-Security-Policy."""

import base64
import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from playwright.sync_api import Browser, Page, expect

from imgclf.images.adjustments import FACTORS, Adjustments, parse_adjustments
from imgclf.web.middleware.security_headers import PAGE_CSP
from tests.browser.conftest import watched_page

STATIC = Path(__file__).parents[2] / "src" / "imgclf" / "web" / "pages" / "static"

pytestmark = pytest.mark.browser

ADJUST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Adjust</title><link rel="icon" href="data:,"></head>
<body>
<figure class="preview">
  <img id="preview" alt="The selected image" hidden>
  <canvas id="adjusted-preview" role="img" aria-label="Preview of the photo" hidden></canvas>
</figure>
<fieldset>
  <legend>Adjustments</legend>
  {ranges}
  <label for="rotate">Rotate</label>
  <select id="rotate" name="rotate">
    <option value="0">0</option><option value="90">90</option>
    <option value="180">180</option><option value="270">270</option>
  </select>
  <label><input type="checkbox" id="flip" name="flip"> Mirror</label>
  <button type="button" id="reset-adjustments">Reset</button>
</fieldset>
<script src="/adjust.js"></script>
</body></html>
"""
RANGE = """<label for="{name}">{name}</label>
  <input type="range" id="{name}" name="{name}" min="0" max="2" step="0.05" value="1">
  <output id="{name}-value" for="{name}">1.00</output>"""

RECENT_SECTION = """<section id="recent" hidden>
  <h2>Recent results</h2>
  <ol id="recent-list"></ol>
  <button type="button" id="forget-recent">Forget them</button>
</section>"""


def recent_page(body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Recent</title><link rel="icon" href="data:,"></head>
<body>{body}<script src="/recent.js"></script></body></html>
"""


RESULTS = 25
EVIL_URLS = [
    "javascript:alert(1)",
    "//evil.example/x",
    "/\\evil.example/x",
    "/\t/evil.example/x",
    "https://evil.example/x",
    " /result-2.html",
    "result-2.html",
    "data:text/html,<p>x</p>",
]


class Site(NamedTuple):
    url: str
    """The tests' pages, on http://127.0.0.1."""
    other_origin: str
    """The same server as http://localhost: another origin, whose pictures taint a canvas."""


TEST_CSP = PAGE_CSP.replace("img-src 'self'", "img-src 'self' http://localhost:*")
"""The pages' policy, and pictures from the other origin (to taint a canvas with)."""


class PageHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", TEST_CSP)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def photo(width: int = 120, height: int = 80) -> Image.Image:
    """Gradients, a checkerboard's hard edges, a solid block and noise: every step changes it."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [x * 255 // (width - 1), y * 255 // (height - 1), ((x // 10 + y // 10) % 2) * 200 + 20], axis=-1
    ).astype(np.uint8)
    pixels[height // 4 : height // 2, width // 2 : width * 5 // 6] = (250, 30, 60)
    noise = np.random.default_rng(13).integers(0, 256, (height // 3, width // 3, 3), dtype=np.uint8)
    pixels[height // 2 : height // 2 + noise.shape[0], width // 12 : width // 12 + noise.shape[1]] = noise
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("site")
    for script in ("adjust.js", "recent.js"):
        shutil.copy(STATIC / script, folder / script)
    adjust_page = ADJUST_PAGE.format(ranges="\n  ".join(RANGE.format(name=name) for name in FACTORS))
    (folder / "adjust.html").write_text(adjust_page)
    (folder / "bare.html").write_text(adjust_page.replace('id="adjusted-preview"', 'id="elsewhere"'))
    photo().save(folder / "photo.png")
    photo(1000, 600).save(folder / "large.png")
    (folder / "broken.png").write_bytes(b"not a picture")
    for number in range(RESULTS):
        (folder / f"result-{number}.html").write_text(
            recent_page(f'<p data-recent-url="/result-{number}.html" data-recent-title="Result {number}">Done.</p>')
        )
    (folder / "evil.html").write_text(
        recent_page('<p data-recent-url="//evil.example/x" data-recent-title="Evil">Done.</p>' + RECENT_SECTION)
    )
    (folder / "recent.html").write_text(recent_page(RECENT_SECTION))

    handler = functools.partial(PageHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield Site(f"http://127.0.0.1:{port}", f"http://localhost:{port}")
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def preview(browser: Browser, site: Site) -> Iterator[Page]:
    """One form with the photo open, for the comparisons (each sets every control itself)."""
    with watched_page(browser) as page:
        open_preview(page, site)
        yield page


# --- adjust.js ---


def show_picture(page: Page, src: str | None) -> None:
    """What form.js does when a photo is picked (a src) or none is (no src)."""
    page.locator("#preview").evaluate(
        "(img, src) => { img.hidden = !src; if (src) img.src = src; else img.removeAttribute('src'); }", src
    )


def settle(page: Page) -> None:
    """Waits until the script's frame has drawn what the controls say."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def open_preview(page: Page, site: Site, picture: str = "photo.png") -> None:
    page.goto(f"{site.url}/adjust.html")
    show_picture(page, picture)
    expect(page.locator("#adjusted-preview")).to_be_visible()
    expect(page.locator("#preview")).to_be_hidden()


def set_controls(page: Page, adjustments: Adjustments) -> None:
    for name in FACTORS:
        page.locator(f"#{name}").fill(f"{getattr(adjustments, name):g}")
    page.select_option("#rotate", str(adjustments.rotate))
    page.locator("#flip").set_checked(adjustments.flip)
    settle(page)


def canvas_pixels(page: Page) -> np.ndarray:
    # As base64: Playwright hands a long array of numbers over one by one, in seconds.
    drawn: dict[str, Any] = page.locator("#adjusted-preview").evaluate(
        """(canvas) => {
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let binary = "";
            for (let start = 0; start < data.length; start += 0x8000) {
                binary += String.fromCharCode.apply(null, data.subarray(start, start + 0x8000));
            }
            return { width: canvas.width, height: canvas.height, data: btoa(binary) };
        }"""
    )
    rgba = np.frombuffer(base64.b64decode(drawn["data"]), dtype=np.uint8).reshape(drawn["height"], drawn["width"], 4)
    assert (rgba[..., 3] == 255).all()
    return rgba[..., :3]


def differences(drawn: np.ndarray, expected: Image.Image) -> tuple[float, int]:
    """Mean (of the worse channel) and largest absolute difference, per channel value."""
    reference = np.asarray(expected)
    assert drawn.shape == reference.shape
    difference = np.abs(drawn.astype(int) - reference.astype(int))
    return float(difference.mean(axis=(0, 1)).max()), int(difference.max())


PARITY = [
    *(parse_adjustments({name: factor}) for name in FACTORS for factor in (0.0, 0.5, 1.5, 2.0)),
    *(Adjustments(rotate=degrees) for degrees in (90, 180, 270)),
    Adjustments(flip=True),
    Adjustments(brightness=1.3, contrast=0.6, color=1.7, sharpness=2.0, rotate=90, flip=True),
    Adjustments(brightness=0.85, contrast=1.45, color=0.35, sharpness=0.15, rotate=270),
]
COMBINED = PARITY[-2]


@pytest.mark.parametrize("adjustments", PARITY, ids=lambda adjustments: adjustments.key())
def test_the_preview_is_what_the_worker_makes(preview: Page, adjustments: Adjustments) -> None:
    set_controls(preview, adjustments)
    mean, largest = differences(canvas_pixels(preview), adjustments.apply(photo()))
    # The script repeats Pillow's arithmetic (single-precision blends, fixed-point luma), so the
    # pixels are the same, not merely close.
    assert (mean, largest) == (0.0, 0)


def in_another_order(picture: Image.Image, adjustments: Adjustments, order: list[str]) -> Image.Image:
    """The worker's steps, in `order`."""
    clockwise = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
    enhancers = {
        "brightness": ImageEnhance.Brightness,
        "contrast": ImageEnhance.Contrast,
        "color": ImageEnhance.Color,
        "sharpness": ImageEnhance.Sharpness,
    }
    for step in order:
        if step == "flip":
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if adjustments.flip else picture
        elif step == "rotate":
            picture = picture.transpose(clockwise[adjustments.rotate]) if adjustments.rotate else picture
        else:
            picture = enhancers[step](picture).enhance(getattr(adjustments, step))
    return picture


@pytest.mark.parametrize(
    "order",
    [
        ["flip", "rotate", "brightness", "contrast", "color", "sharpness"],
        ["rotate", "flip", "contrast", "brightness", "color", "sharpness"],
        ["rotate", "flip", "brightness", "contrast", "sharpness", "color"],
        ["rotate", "flip", "sharpness", "brightness", "contrast", "color"],
    ],
    ids="-".join,
)
def test_the_comparison_notices_steps_in_another_order(preview: Page, order: list[str]) -> None:
    set_controls(preview, COMBINED)
    _, largest = differences(canvas_pixels(preview), in_another_order(photo(), COMBINED, order))
    assert largest > 3  # beyond the brief's tolerance, not only the exact match the comparison asks for


def test_the_outputs_say_the_values_and_reset_restores_them(page: Page, site: Site) -> None:
    open_preview(page, site)
    unadjusted = canvas_pixels(page)
    canvas = page.locator("#adjusted-preview")
    set_controls(page, Adjustments(brightness=1.2, contrast=0.45, rotate=90, flip=True))
    expect(page.locator("#brightness-value")).to_have_text("1.20")
    expect(page.locator("#contrast-value")).to_have_text("0.45")
    expect(page.locator("#color-value")).to_have_text("1.00")
    expect(canvas).to_have_attribute(
        "aria-label", "Preview of the photo, brightness 1.20, contrast 0.45, rotated 90 degrees clockwise, mirrored"
    )
    assert canvas_pixels(page).shape == (120, 80, 3)

    page.get_by_role("button", name="Reset").click()
    settle(page)
    for name in FACTORS:
        expect(page.locator(f"#{name}")).to_have_value("1")
        expect(page.locator(f"#{name}-value")).to_have_text("1.00")
    expect(page.locator("#rotate")).to_have_value("0")
    expect(page.locator("#flip")).not_to_be_checked()
    expect(canvas).to_have_attribute("aria-label", "Preview of the photo")
    assert np.array_equal(canvas_pixels(page), unadjusted)
    assert np.array_equal(unadjusted, np.asarray(photo()))


def test_the_canvas_is_hidden_without_a_picture(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/adjust.html")
    canvas = page.locator("#adjusted-preview")
    page.locator("#sharpness").fill("1.5")
    expect(page.locator("#sharpness-value")).to_have_text("1.50")
    settle(page)
    expect(canvas).to_be_hidden()

    show_picture(page, "photo.png")
    expect(canvas).to_be_visible()
    show_picture(page, None)
    expect(canvas).to_be_hidden()
    expect(page.locator("#preview")).to_be_hidden()

    show_picture(page, "photo.png")
    expect(canvas).to_be_visible()
    show_picture(page, "broken.png")
    expect(canvas).to_be_hidden()


def test_a_large_photo_is_drawn_480_pixels_at_most(page: Page, site: Site) -> None:
    open_preview(page, site, "large.png")
    assert canvas_pixels(page).shape == (288, 480, 3)
    set_controls(page, Adjustments(rotate=270))
    assert canvas_pixels(page).shape == (480, 288, 3)


def test_a_picture_the_canvas_may_not_read_stays_a_photo(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/adjust.html")
    show_picture(page, f"{site.other_origin}/photo.png")
    page.wait_for_function("() => document.getElementById('preview').naturalWidth === 120")
    settle(page)
    expect(page.locator("#adjusted-preview")).to_be_hidden()
    page.locator("#brightness").fill("0.5")
    settle(page)
    expect(page.locator("#adjusted-preview")).to_be_hidden()
    expect(page.locator("#preview")).to_be_visible()


def test_without_its_markup_the_script_does_nothing(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/bare.html")
    show_picture(page, "photo.png")
    page.locator("#brightness").fill("0.5")
    settle(page)
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#brightness-value")).to_have_text("1.00")


# --- recent.js ---


def stored(page: Page) -> Any:
    raw = page.evaluate("() => localStorage.getItem('imgclf.recent')")
    return None if raw is None else json.loads(raw)


def store(page: Page, value: str) -> None:
    page.evaluate("(value) => localStorage.setItem('imgclf.recent', value)", value)


def listed(page: Page) -> list[tuple[str, str | None]]:
    links = page.locator("#recent-list a")
    return [(link.inner_text(), link.get_attribute("href")) for link in links.all()]


def test_the_last_20_results_are_listed_newest_first(page: Page, site: Site) -> None:
    for number in [*range(RESULTS), 10]:
        page.goto(f"{site.url}/result-{number}.html")
    page.goto(f"{site.url}/recent.html")

    # 0 to 24, then 10 again: 10 first, then 24 down to 5 (the 20 newest), 10 once.
    newest_first = [10, *(number for number in range(RESULTS - 1, RESULTS - 21, -1) if number != 10)]
    expected = [(f"Result {number}", f"/result-{number}.html") for number in newest_first]
    expect(page.locator("#recent")).to_be_visible()
    assert listed(page) == expected
    entries = stored(page)
    assert [entry["url"] for entry in entries] == [url for _, url in expected]
    times = [datetime.fromisoformat(entry["at"]) for entry in entries]
    assert times == sorted(times, reverse=True)
    first_time = page.locator("#recent-list li").first.locator("time")
    assert datetime.fromisoformat(first_time.get_attribute("datetime") or "") == times[0]
    expect(first_time).not_to_be_empty()

    page.reload()
    assert listed(page) == expected


def test_forget_clears_the_list(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/result-1.html")
    page.goto(f"{site.url}/recent.html")
    expect(page.locator("#recent")).to_be_visible()
    page.get_by_role("button", name="Forget them").click()
    expect(page.locator("#recent")).to_be_hidden()
    assert stored(page) is None
    page.reload()
    expect(page.locator("#recent")).to_be_hidden()


def test_only_links_to_this_site_are_listed(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/recent.html")
    entries = [
        {"url": url, "title": f"Evil {number}", "at": "2024-05-01T10:00:00Z"} for number, url in enumerate(EVIL_URLS)
    ]
    title = '<img src="/nothing.png"> Result 2'  # text, never markup
    entries.insert(3, {"url": "/result-2.html", "title": title, "at": "2024-05-01T10:00:00Z"})
    store(page, json.dumps(entries))
    page.reload()
    assert listed(page) == [(title, "/result-2.html")]
    expect(page.locator("#recent")).not_to_contain_text("Evil")

    page.goto(f"{site.url}/evil.html")  # a page naming another site as its own is not remembered
    assert listed(page) == [(title, "/result-2.html")]


@pytest.mark.parametrize(
    "garbage",
    ["{", "null", "42", '"/result-1.html"', '{"url": "/result-1.html", "title": "x"}', '[1, null, "a", {"url": 5}]'],
)
def test_garbage_in_storage_is_ignored(page: Page, site: Site, garbage: str) -> None:
    page.goto(f"{site.url}/recent.html")
    store(page, garbage)
    page.reload()
    expect(page.locator("#recent")).to_be_hidden()
    page.goto(f"{site.url}/result-1.html")
    assert [entry["url"] for entry in stored(page)] == ["/result-1.html"]


@pytest.mark.parametrize(
    "broken",
    [
        "Object.defineProperty(window, 'localStorage', { get() { throw new DOMException('No', 'SecurityError'); } });",
        "Storage.prototype.setItem = () => { throw new DOMException('Full', 'QuotaExceededError'); };",
    ],
    ids=["no-storage", "full-storage"],
)
def test_storage_that_throws_leaves_the_pages_as_they_are(page: Page, site: Site, broken: str) -> None:
    page.context.add_init_script(broken)
    page.goto(f"{site.url}/result-1.html")
    page.goto(f"{site.url}/recent.html")
    expect(page.locator("#recent")).to_be_hidden()
