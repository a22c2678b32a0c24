"""A finished classification as a PNG card (1200 x 630, the size link previews expect), drawn with
the result page's look: the photo and its histograms on the left; on the right the top 5 as bars,
then the model, the date, the timings and the adjustments.

Only Pillow draws it, with its built-in FreeType font (Aileron), so the card looks the same on
every server: no system fonts, no network. That font covers ASCII and a few signs (· … °), so an
accented letter is drawn without its accent and a character it lacks shows as a box.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from imgclf.images.histogram import display_peak
from imgclf.web.wording import adjustment_words, milliseconds

CARD_SIZE = (1200, 630)
"""Width and height of every card, in pixels."""

BACKGROUND = "#f6f7f9"
CARD = "#ffffff"
LINE = "#d9dde5"
INK = "#1d2330"
MUTED = "#5b6475"
ACCENT = "#2b67d1"
TRACK = "#e6e9ef"
HISTOGRAM_COLOURS = {"luminance": "#b8bfcc", "red": "#d64545", "green": "#2f9e5a", "blue": "#3f63c9"}
"""Luminance is drawn as a grey area behind the three channels' lines."""

MARGIN = 24
"""Background around the white card."""
PADDING = 36
"""White space inside the card, around its content."""
LEFT = MARGIN + PADDING
TOP = MARGIN + PADDING
RIGHT = CARD_SIZE[0] - MARGIN - PADDING
BOTTOM = CARD_SIZE[1] - MARGIN - PADDING

PHOTO_SIZE = (360, 360)
"""The photo is fitted into this box (aspect kept) at the top left; its caption and histograms follow."""
HISTOGRAM_HEIGHT = 96
COLUMN = LEFT + PHOTO_SIZE[0] + 48
"""Left edge of the right-hand column (title, bars, details)."""

LABEL_WIDTH = 230
PERCENT_WIDTH = 84
GAP = 14
ROW_HEIGHT = 44
BARS_TOP = TOP + 62
TRACK_HEIGHT = 20
TRACK_RADIUS = 5

SCALE = 2
"""Shapes are drawn this many times larger, then reduced, so their curves are smooth; text is
drawn at the final size, where FreeType already smooths it."""

ELLIPSIS = "…"
SEPARATOR = " · "
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

TIMING_WORDS = {
    "inference": "Model",
    "preprocess": "Preparing",
    "decode": "Decoding",
    "queued": "Waiting",
    "total": "Total",
}
"""The timings the card shows, in its order."""


def render_card(job: Mapping[str, Any], model_title: str, photo: Image.Image | None) -> bytes:
    """The PNG card of a succeeded job (ValueError if it has no result); `photo` None draws a placeholder."""
    result = job.get("result")
    if job.get("status") != "succeeded" or not isinstance(result, Mapping):
        raise ValueError(f"job {job.get('id')} has no result to draw (status {job.get('status')})")
    top5 = list(result.get("top5") or [])

    photo_size = _fitted(photo.size) if photo is not None else PHOTO_SIZE
    caption_top = TOP + photo_size[1] + 12
    histogram_box = (LEFT, caption_top + 36, LEFT + PHOTO_SIZE[0], caption_top + 36 + HISTOGRAM_HEIGHT)

    shapes = Image.new("RGB", (CARD_SIZE[0] * SCALE, CARD_SIZE[1] * SCALE), BACKGROUND)
    pen = ImageDraw.Draw(shapes)
    card_box = (MARGIN, MARGIN, CARD_SIZE[0] - MARGIN - 1, CARD_SIZE[1] - MARGIN - 1)
    pen.rounded_rectangle(_scaled(card_box), 12 * SCALE, CARD, LINE, SCALE)
    histogram = result.get("histogram")
    if isinstance(histogram, Mapping):
        _draw_histogram(pen, histogram, histogram_box)
    if photo is None:
        pen.rounded_rectangle(_scaled((LEFT, TOP, LEFT + PHOTO_SIZE[0], TOP + PHOTO_SIZE[1])), 8 * SCALE, TRACK)
    for row, entry in enumerate(top5[:5]):
        _draw_bar(shapes, BARS_TOP + row * ROW_HEIGHT, _percent(entry))

    card = shapes.reduce(SCALE)
    if photo is not None:
        _paste_photo(card, photo, photo_size)
    text = ImageDraw.Draw(card)
    _draw_left_text(text, job, photo is None, caption_top)
    _draw_right_text(text, job, model_title, top5)

    buffer = io.BytesIO()
    card.save(buffer, "PNG")
    return buffer.getvalue()


def _draw_left_text(text: ImageDraw.ImageDraw, job: Mapping[str, Any], placeholder: bool, caption_top: int) -> None:
    if placeholder:
        centre = (LEFT + PHOTO_SIZE[0] // 2, TOP + PHOTO_SIZE[1] // 2)
        text.text((centre[0], centre[1] - 14), "Photo no longer available", MUTED, _font(20), "mm")
        text.text((centre[0], centre[1] + 14), "(photos are kept for a limited time)", MUTED, _font(16), "mm")
    name, size = _image_words(job.get("image"))
    small = _font(17)
    shown = _fit(name, small, PHOTO_SIZE[0] - small.getlength(size), keep_end=_extension_length(name))
    text.text((LEFT, caption_top), shown, INK, small)
    text.text((LEFT + small.getlength(shown), caption_top), size, MUTED, small)


def _draw_right_text(text: ImageDraw.ImageDraw, job: Mapping[str, Any], model_title: str, top5: list[Any]) -> None:
    width = RIGHT - COLUMN
    title = _font(38)
    heading = _printable(str(top5[0].get("label", ""))) if top5 and isinstance(top5[0], Mapping) else ""
    text.text((COLUMN, TOP - 6), _fit(heading or "Top 5 classes", title, width), INK, title, stroke_width=0.4)

    row_font = _font(20)
    for row, entry in enumerate(top5[:5]):
        middle = BARS_TOP + row * ROW_HEIGHT + TRACK_HEIGHT // 2
        label = _printable(str(entry.get("label", ""))) if isinstance(entry, Mapping) else ""
        text.text((COLUMN, middle), _fit(label, row_font, LABEL_WIDTH), INK, row_font, "lm")
        text.text((RIGHT, middle), f"{_percent(entry):.1f} %", INK, row_font, "rm")

    y = BARS_TOP + 5 * ROW_HEIGHT + 10
    model_font, detail = _font(22), _font(18)
    text.text((COLUMN, y), "Classified by ", MUTED, model_font)
    indent = model_font.getlength("Classified by ")
    text.text((COLUMN + indent, y), _fit(_printable(model_title), model_font, width - indent), INK, model_font)
    y += 32
    lines = [[when] if (when := _when(job.get("finished_at") or job.get("created_at"))) else []]
    lines += [_timing_words(job.get("timings_ms")), adjustment_words(job.get("adjustments"))]
    if job.get("cached"):
        lines.append(["From the cache (classified earlier)"])
    for parts in lines:
        for line in _wrap(parts, detail, width, max_lines=2):
            text.text((COLUMN, y), line, MUTED, detail)
            y += 26

    footer = _font(15)
    words = f"Image classifier{SEPARATOR}job {_printable(str(job.get('id') or ''))[:8]}"
    text.text((RIGHT, BOTTOM), words, MUTED, footer, "rd")


def _draw_bar(shapes: Image.Image, top: int, percent: float) -> None:
    """A track with the bar inside it, clipped to the track's rounded ends, like the page's SVG."""
    left, right = COLUMN + LABEL_WIDTH + GAP, RIGHT - PERCENT_WIDTH - GAP
    box = _scaled((left, top, right, top + TRACK_HEIGHT))
    mask = Image.new("L", (box[2] - box[0], box[3] - box[1]), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, mask.width - 1, mask.height - 1), TRACK_RADIUS * SCALE, 255)
    shapes.paste(TRACK, box, mask)
    filled = round(mask.width * percent / 100)
    if filled:
        shapes.paste(ACCENT, (box[0], box[1], box[0] + filled, box[3]), mask.crop((0, 0, filled, mask.height)))


def _draw_histogram(pen: ImageDraw.ImageDraw, histogram: Mapping[str, Any], box: tuple[int, int, int, int]) -> None:
    """The four histograms on one plot, scaled together so the channels compare."""
    curves = {name: counts for name in HISTOGRAM_COLOURS if (counts := _counts(histogram.get(name)))}
    peak = display_peak(curves)
    if not peak:
        return
    pen.rounded_rectangle(_scaled(box), 8 * SCALE, BACKGROUND)
    left, top, right, bottom = _scaled((box[0] + 10, box[1] + 10, box[2] - 10, box[3] - 8))
    for name, counts in curves.items():
        step = (right - left) / (len(counts) - 1)
        points = [(left + i * step, bottom - min(count / peak, 1) * (bottom - top)) for i, count in enumerate(counts)]
        if name == "luminance":
            pen.polygon([(left, bottom), *points, (right, bottom)], HISTOGRAM_COLOURS[name])
        else:
            pen.line(points, HISTOGRAM_COLOURS[name], width=2 * SCALE, joint="curve")


def _counts(value: object) -> list[float]:
    """A histogram's counts, or [] if it is not a list of them."""
    if not isinstance(value, Sequence) or len(value) < 3:
        return []
    if not all(isinstance(count, int | float) and math.isfinite(count) and count >= 0 for count in value):
        return []
    return list(value)


def _fitted(size: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled to fit PHOTO_SIZE, aspect kept."""
    ratio = min(PHOTO_SIZE[0] / max(size[0], 1), PHOTO_SIZE[1] / max(size[1], 1))
    return max(1, round(size[0] * ratio)), max(1, round(size[1] * ratio))


def _paste_photo(card: Image.Image, photo: Image.Image, size: tuple[int, int]) -> None:
    """The photo at `size` in the top left corner, with the page's rounded corners."""
    # Resized first: converting a large photo would copy every pixel (and P or 1 would resize badly).
    source = photo if photo.mode in ("RGB", "RGBA", "L") else photo.convert("RGB")
    thumbnail = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0).convert("RGB")
    mask = Image.new("L", (size[0] * SCALE, size[1] * SCALE), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, mask.width - 1, mask.height - 1), 8 * SCALE, 255)
    card.paste(thumbnail, (LEFT, TOP), mask.reduce(SCALE))


def _percent(entry: object) -> float:
    probability = entry.get("probability") if isinstance(entry, Mapping) else None
    if not isinstance(probability, int | float) or not math.isfinite(probability):
        return 0.0
    return max(0.0, min(100.0, probability * 100))


def _image_words(image: object) -> tuple[str, str]:
    """The photo's name as the result page gives it, and its size in pixels (" · 640 x 480") if known."""
    if not isinstance(image, Mapping):
        return "your photo", ""
    name = str(image.get("filename" if "sha256" in image else "id") or "your photo")
    width, height = image.get("width"), image.get("height")
    size = f"{SEPARATOR}{width} x {height}" if isinstance(width, int) and isinstance(height, int) else ""
    return _printable(name), size


def _when(moment: object) -> str | None:
    """An RFC 3339 time as "27 Nov 2026 12:00 UTC"; None if it is missing or unreadable."""
    try:
        parsed = datetime.fromisoformat(str(moment)) if moment else None
    except ValueError:
        return None
    if parsed is None:
        return None
    utc = parsed.astimezone(UTC) if parsed.tzinfo else parsed
    return f"{utc.day} {MONTHS[utc.month - 1]} {utc.year} {utc:%H:%M} UTC"


def _timing_words(timings: object) -> list[str]:
    if not isinstance(timings, Mapping):
        return []
    shown = [(words, timings.get(key)) for key, words in TIMING_WORDS.items()]
    return [f"{words} {milliseconds(ms)}" for words, ms in shown if isinstance(ms, int | float) and math.isfinite(ms)]


def _wrap(parts: Iterable[str], font: ImageFont.FreeTypeFont, width: float, max_lines: int) -> list[str]:
    """The parts joined by " · " into lines that fit; what does not fit in max_lines ends in "…"."""
    lines: list[str] = []
    for part in parts:
        joined = f"{lines[-1]}{SEPARATOR}{part}" if lines else part
        if lines and font.getlength(joined) <= width:
            lines[-1] = joined
        elif len(lines) < max_lines:
            lines.append(part)
        else:
            lines[-1] = joined  # _fit cuts it
            break
    return [_fit(line, font, width) for line in lines]


def _fit(text: str, font: ImageFont.FreeTypeFont, width: float, keep_end: int = 0) -> str:
    """`text`, or as much of it as fits in `width` pixels with "…" where it was cut (before its
    last `keep_end` characters, so a file name keeps its extension)."""
    if font.getlength(text) <= width:
        return text
    head, tail = (text[:-keep_end], text[-keep_end:]) if 0 < keep_end < len(text) else (text, "")
    low, high = 0, len(head)
    while low < high:  # the longest head that fits, found by halving
        middle = (low + high + 1) // 2
        if font.getlength(head[:middle].rstrip() + ELLIPSIS + tail) <= width:
            low = middle
        else:
            high = middle - 1
    shortened = head[:low].rstrip() + ELLIPSIS + tail
    if font.getlength(shortened) <= width:
        return shortened
    return _fit(text, font, width) if tail else ""


def _extension_length(name: str) -> int:
    dot = name.rfind(".")
    return len(name) - dot if dot > 0 and len(name) - dot <= 8 else 0


def _printable(text: str) -> str:
    """`text` with what the font cannot draw made drawable: an accented letter loses its accent,
    a control character becomes a space (a newline would start a second line), an invisible
    format character goes; other characters the font lacks stay, drawn as a box."""
    return "".join(_drawable(character) for character in text)


@lru_cache(maxsize=4096)  # bounded: file names may bring any of Unicode's characters
def _drawable(character: str) -> str:
    category = unicodedata.category(character)
    if category == "Cf":
        return ""
    if category.startswith("C"):
        return " " if character.isspace() else "\ufffd"
    if _has_glyph(character):
        return character
    plain = "".join(c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c))
    return plain if plain and all(_has_glyph(c) for c in plain) else character


@lru_cache(maxsize=4096)
def _has_glyph(character: str) -> bool:
    probe = _font(20)
    return bytes(probe.getmask(character)) != bytes(probe.getmask("\ue000"))  # private use: never in the font


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("drawing result cards needs Pillow with FreeType support")
    return font


def _scaled(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return left * SCALE, top * SCALE, right * SCALE, bottom * SCALE
