"""A photo's red, green, blue and luminance histograms, from the pixels the model saw.

Counted on the decoded picture after its adjustments, just before the model's preprocessing,
so they describe what was classified. That picture is decoded no larger than the model needs
(`decoding.open_rgb`'s draft size), so the counts add up to its pixels, not the original file's:
the shape is what matters, and 256 bins of a few hundred thousand pixels show it faithfully.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PIL import Image

CHANNELS = ("red", "green", "blue", "luminance")
BINS = 256


def histograms(picture: Image.Image) -> dict[str, list[int]]:
    """256 pixel counts per channel of an RGB picture; luminance is Pillow's L (ITU-R 601-2)."""
    counts = picture.histogram()  # R, G and B bins, one after another
    return {
        "red": counts[0:BINS],
        "green": counts[BINS : 2 * BINS],
        "blue": counts[2 * BINS : 3 * BINS],
        "luminance": picture.convert("L").histogram(),
    }


def display_peak(histogram: Mapping[str, Sequence[float]]) -> float:
    """The count a drawing of these histograms scales to (the top of the plot): the highest bin
    of any channel, leaving out the first and last bins, which hold every clipped pixel and
    whose spikes would flatten the rest. 0 for empty histograms."""
    return max((max(counts[1:-1] or counts) for counts in histogram.values() if counts), default=0)
