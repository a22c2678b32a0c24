"""The one shape of a classification's result, as workers store it and every route reads it.

Stored (RQ's return value and the result cache):
`{"top5": [{"label", "class_index", "probability"}, ...], "histogram": {"red", "green", "blue",
"luminance"}, "timings_ms": {"decode", "preprocess", "inference"}}` with `probability` in 0..1,
highest first, and 256 pixel counts per histogram channel (`imgclf.images.histogram`). The
lesson's route shows it as `[[label, percent], ...]`. Results written before this shape (a list
of `[label, percent]`, or without histograms) are still read.
"""

from __future__ import annotations

from typing import Any

PHASES = ("decode", "preprocess", "inference")


def make_result(
    top: list[tuple[int, str, float]], seconds: dict[str, float] | None, histogram: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    """`top` as (class index, label, percent); `seconds` per phase, or None for a cached answer."""
    result: dict[str, Any] = {
        "top5": [
            {"label": label, "class_index": index, "probability": round(percent / 100, 6)}
            for index, label, percent in top
        ]
    }
    if histogram is not None:
        result["histogram"] = histogram
    if seconds is not None:
        result["timings_ms"] = {phase: round(seconds[phase] * 1000, 3) for phase in PHASES}
    return result


def top5(result: Any) -> list[dict[str, Any]]:
    """The result's top 5 as dicts, whatever shape it was stored in."""
    if isinstance(result, dict):
        return list(result.get("top5") or [])
    if isinstance(result, list):  # the shape before class indices were kept
        return [{"label": label, "class_index": None, "probability": percent / 100} for label, percent in result]
    return []


def histogram(result: Any) -> dict[str, list[int]] | None:
    """The result's histograms, or None for a result stored before they were kept."""
    return result.get("histogram") if isinstance(result, dict) else None


def timings_ms(result: Any) -> dict[str, float]:
    return dict(result.get("timings_ms") or {}) if isinstance(result, dict) else {}


def as_lesson_data(result: Any) -> list[list[Any]] | None:
    """The lesson's `data`: `[[label, percent], ...]`, percent rounded to 4 places."""
    if result is None:
        return None
    return [[entry["label"], round(entry["probability"] * 100, 4)] for entry in top5(result)]
