import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageColor, ImageDraw

from imgclf.web import result_card
from imgclf.web.result_card import (
    BARS_TOP,
    CARD_SIZE,
    COLUMN,
    GAP,
    LABEL_WIDTH,
    LEFT,
    MARGIN,
    PHOTO_SIZE,
    RIGHT,
    ROW_HEIGHT,
    TOP,
    render_card,
)

ACCENT = ImageColor.getrgb(result_card.ACCENT)
BACKGROUND = (0xF6, 0xF7, 0xF9)
WHITE = (255, 255, 255)
PHOTO_RED = (200, 30, 40)

TOP5 = [
    {"label": "tabby", "class_index": 281, "probability": 0.48},
    {"label": "tiger cat", "class_index": 282, "probability": 0.31},
    {"label": "Egyptian cat", "class_index": 285, "probability": 0.12},
    {"label": "lynx", "class_index": 287, "probability": 0.05},
    {"label": "Persian cat", "class_index": 283, "probability": 0.004},
]
HISTOGRAM = {
    "red": [0] * 100 + [50] * 100 + [0] * 56,
    "green": [10] * 256,
    "blue": [0] * 30 + [80] * 30 + [0] * 196,
    "luminance": list(range(256)),
}


def a_job(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": "5f0c1e7a-9a53-4a4e-9d3b-8c0f7b1f2a61",
        "status": "succeeded",
        "model": "efficientnet_lite0",
        "image": {"id": "chelsea.jpg"},
        "created_at": "2026-11-27T12:00:00.000Z",
        "finished_at": "2026-11-27T12:00:00.031Z",
        "cached": False,
        "adjustments": None,
        "result": {"top5": TOP5, "histogram": HISTOGRAM},
        "timings_ms": {"queued": 4.1, "decode": 6.2, "preprocess": 3.3, "inference": 12.8, "total": 31.0},
        "error": None,
    }
    return job | changes


def a_photo(size: tuple[int, int] = (640, 480), mode: str = "RGB") -> Image.Image:
    return Image.new("RGB", size, PHOTO_RED).convert(mode)


def render(
    job: dict[str, Any], photo: Image.Image | None = None, model_title: str = "EfficientNet-Lite0"
) -> Image.Image:
    card = Image.open(io.BytesIO(render_card(job, model_title, photo)))
    assert card.format == "PNG"
    return card.convert("RGB")


@pytest.fixture
def drawn_text(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every string the card draws, in order."""
    drawn: list[str] = []
    original = ImageDraw.ImageDraw.text

    def record(self: ImageDraw.ImageDraw, xy: Any, text: Any, *args: Any, **kwargs: Any) -> None:
        drawn.append(text)
        original(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", record)
    yield drawn


def pixels(card: Image.Image) -> np.ndarray:
    return np.asarray(card.convert("RGB"))


def bar_widths(card: Image.Image) -> list[int]:
    """The length in pixels of each accent-coloured bar, top to bottom."""
    accent_per_row = (pixels(card) == ACCENT).all(axis=2).sum(axis=1)
    widths: list[int] = []
    previous = 0
    for count in accent_per_row:
        if count and not previous:
            widths.append(0)
        if count:
            widths[-1] = max(widths[-1], int(count))
        previous = count
    return widths


def test_the_card_is_a_png_of_the_card_size() -> None:
    card = Image.open(io.BytesIO(render_card(a_job(), "EfficientNet-Lite0", a_photo())))
    assert card.format == "PNG"
    assert card.size == CARD_SIZE == (1200, 630)
    assert card.mode in ("RGB", "RGBA")
    card.verify()


def test_a_likelier_class_has_a_proportionally_longer_bar() -> None:
    probabilities = [1.0, 0.5, 0.25, 0.1, 0.05]
    top5 = [{"label": f"class {n}", "class_index": n, "probability": p} for n, p in enumerate(probabilities)]
    widths = bar_widths(render(a_job(result={"top5": top5})))
    assert len(widths) == 5
    assert widths == sorted(widths, reverse=True)
    assert 9 < widths[0] / widths[3] < 11  # 100 % against 10 %


def test_the_card_says_what_was_found_by_whom_when_and_how_fast(drawn_text: list[str]) -> None:
    render(a_job(), a_photo())
    assert drawn_text[:2] == ["chelsea.jpg", ""]  # the caption, then its size in pixels (unknown here)
    assert drawn_text[2] == "tabby"  # the title: the likeliest class
    assert [text for text in drawn_text if text.endswith(" %")] == ["48.0 %", "31.0 %", "12.0 %", "5.0 %", "0.4 %"]
    assert "EfficientNet-Lite0" in drawn_text
    assert "27 Nov 2026 12:00 UTC" in drawn_text
    # The page's rule: one decimal under 10 ms, whole milliseconds from 10 ms.
    timings = " · ".join(text for text in drawn_text if text.endswith(" ms"))
    assert timings == "Model 13 ms · Preparing 3.3 ms · Decoding 6.2 ms · Waiting 4.1 ms · Total 31 ms"
    assert "Image classifier · job 5f0c1e7a" in drawn_text
    assert not any("cache" in text for text in drawn_text)


def test_adjustments_and_a_cached_result_are_mentioned(drawn_text: list[str]) -> None:
    adjustments = {"brightness": 1.2, "contrast": 1.0, "color": 1.0, "sharpness": 1.0, "rotate": 90, "flip": False}
    render(a_job(adjustments=adjustments, cached=True))
    assert "Brightness 1.2 · Rotated 90°" in drawn_text
    assert any(text.startswith("From the cache") for text in drawn_text)


def test_the_photo_is_shown_in_the_top_left_corner() -> None:
    card = pixels(render(a_job(), a_photo((640, 480))))
    assert tuple(card[TOP + 100, LEFT + 100]) == PHOTO_RED
    assert tuple(card[TOP + 100, LEFT + PHOTO_SIZE[0] - 10]) == PHOTO_RED  # fitted to the box's width
    assert tuple(card[TOP + PHOTO_SIZE[1] - 10, LEFT + 100]) != PHOTO_RED  # so it is less tall: aspect kept


def test_without_the_photo_a_placeholder_says_so(drawn_text: list[str]) -> None:
    card = pixels(render(a_job(), photo=None))
    assert "Photo no longer available" in drawn_text
    assert not (card == PHOTO_RED).all(axis=2).any()
    beside_the_words = card[TOP + 20 : TOP + PHOTO_SIZE[1] - 20, LEFT + 10 : LEFT + 40]
    assert (beside_the_words == (0xE6, 0xE9, 0xEF)).all()  # the bars' track colour


@pytest.mark.parametrize(
    ("size", "mode"),
    [
        ((4000, 10), "RGB"),
        ((10, 4000), "RGB"),
        ((1, 1), "RGB"),
        ((300, 300), "RGBA"),
        ((300, 200), "L"),
        ((50, 50), "P"),
    ],
)
def test_photos_of_any_shape_and_mode_are_drawn(size: tuple[int, int], mode: str) -> None:
    card = pixels(render(a_job(), a_photo(size, mode)))
    photo_box = card[TOP : TOP + PHOTO_SIZE[1], LEFT : LEFT + PHOTO_SIZE[0]]
    assert (photo_box != WHITE).any(axis=2).sum() >= min(size) * PHOTO_SIZE[0] // max(size)


def inside_lines_are_blank(card: np.ndarray) -> None:
    """Nothing spills: the gutter between the columns, the card's right padding, the gap between each
    bar's label and its track, and the background around the card hold no ink."""
    top, bottom = MARGIN + 16, CARD_SIZE[1] - MARGIN - 16  # below and above the card's round corners
    assert (card[top:bottom, LEFT + PHOTO_SIZE[0] + 1 : COLUMN - 1] == WHITE).all(), "gutter"
    assert (card[top:bottom, RIGHT + 1 : CARD_SIZE[0] - MARGIN - 2] == WHITE).all(), "right padding"
    bars = slice(BARS_TOP - 4, BARS_TOP + 5 * ROW_HEIGHT)
    assert (card[bars, COLUMN + LABEL_WIDTH + 1 : COLUMN + LABEL_WIDTH + GAP - 1] == WHITE).all(), "label gap"
    assert (card[:, CARD_SIZE[0] - MARGIN + 1 :] == BACKGROUND).all(), "right margin"
    assert (card[CARD_SIZE[1] - MARGIN + 1 :, :] == BACKGROUND).all(), "bottom margin"


def test_long_names_are_shortened_with_an_ellipsis_inside_their_columns(drawn_text: list[str]) -> None:
    filename = ("très_long_名前_файл_😀" * 20)[:251] + ".png"
    assert len(filename) == 255
    long_label = "American Staffordshire terrier, Staffordshire terrier, American pit bull terrier, pit bull"
    top5 = [{"label": long_label, "class_index": 180, "probability": 1.0}, *TOP5[1:]]
    job = a_job(
        image={"sha256": "0" * 64, "format": "png", "width": 640, "height": 480, "filename": filename},
        result={"top5": top5, "histogram": HISTOGRAM},
        adjustments={"brightness": 0.35, "contrast": 1.75, "color": 0.0, "sharpness": 2.0, "rotate": 270, "flip": True},
        timings_ms={"queued": 12345.6, "decode": 1234.5, "preprocess": 987.6, "inference": 99999.9, "total": 123456.0},
        cached=True,
    )
    card = pixels(render(job, a_photo((300, 900)), model_title="W" * 200))
    inside_lines_are_blank(card)
    caption = drawn_text[0]
    assert caption.startswith("tres_long_") and "…" in caption and caption.endswith(".png")
    assert sum(text.startswith("American Staffordshire") and text.endswith("…") for text in drawn_text) == 2


def test_characters_the_font_lacks_do_not_stop_the_card(drawn_text: list[str]) -> None:
    strange = "zero\u200bwidth\nnew line\udcff lone surrogate \u202eright-to-left 漢字 😀 \x00"
    top5 = [{"label": strange, "class_index": 1, "probability": 0.9}, *TOP5[1:]]
    job = a_job(image={"sha256": "0" * 64, "filename": strange}, result={"top5": top5}, id=strange)
    inside_lines_are_blank(pixels(render(job, model_title=strange)))
    assert not any("\n" in text or "\udcff" in text for text in drawn_text)


def test_an_older_result_without_histograms_or_timings_still_draws(drawn_text: list[str]) -> None:
    with_histogram = pixels(render(a_job(), a_photo((640, 480))))
    timings = dict.fromkeys(("queued", "decode", "preprocess", "inference"), None) | {"total": 31.0}
    without = pixels(render(a_job(result={"top5": TOP5}, timings_ms=timings, finished_at=None), a_photo((640, 480))))
    below_caption = (slice(TOP + 270 + 44, CARD_SIZE[1] - MARGIN - 2), slice(LEFT, COLUMN))
    assert not (with_histogram[below_caption] == WHITE).all()
    assert (without[below_caption] == WHITE).all()
    assert [text for text in drawn_text if text.endswith(" ms")][-1] == "Total 31 ms"
    assert "27 Nov 2026 12:00 UTC" in drawn_text  # created_at, when finished_at is missing


@pytest.mark.parametrize("status", ["queued", "running", "failed", "canceled"])
def test_a_job_without_a_result_is_refused(status: str) -> None:
    with pytest.raises(ValueError, match="no result"):
        render_card(a_job(status=status, result=None), "EfficientNet-Lite0", None)
