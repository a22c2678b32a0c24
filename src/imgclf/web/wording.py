"""How a result's numbers and settings are said to people: the same words on the result page, the
comparison page and the PNG card (static/result.js says milliseconds the same way, live)."""

from __future__ import annotations

import math
from collections.abc import Mapping

ADJUSTMENT_WORDS = {"brightness": "Brightness", "contrast": "Contrast", "color": "Colour", "sharpness": "Sharpness"}


def milliseconds(ms: float) -> str:
    """12.8 -> "13 ms", 7.14 -> "7.1 ms": a decimal only where it matters."""
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def adjustment_words(adjustments: object) -> list[str]:
    """What a job changed before classifying, one phrase each ("Brightness 1.2", "Rotated 90°",
    "Flipped"); [] for nothing."""
    if not isinstance(adjustments, Mapping):
        return []
    words = []
    for key, name in ADJUSTMENT_WORDS.items():
        factor = adjustments.get(key)
        if isinstance(factor, int | float) and math.isfinite(factor) and factor != 1:
            words.append(f"{name} {factor:g}")
    rotate = adjustments.get("rotate")
    if isinstance(rotate, int | float) and math.isfinite(rotate) and rotate % 360:
        words.append(f"Rotated {rotate:g}°")
    if adjustments.get("flip"):
        words.append("Flipped")
    return words
