"""The one classification pipeline: decode -> preprocess -> forward -> top-k.

The worker's jobs, `imgclf classify` and the benchmark all run an image through `Pipeline.run`,
so what is measured is what is served. Decoding is `imgclf.images.decoding.open_rgb` (limits,
EXIF orientation, transparency on white), reduced to what the model's own resize needs. A job's
adjustments (`imgclf.images.adjustments`) are applied to the decoded picture, and its histograms
counted from the result, as part of the preprocess phase.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from imgclf.images.adjustments import NONE, Adjustments
from imgclf.images.decoding import open_rgb
from imgclf.images.histogram import histograms
from imgclf.models.classifier import Classifier, Prediction

PHASES = ("decode", "preprocess", "inference")
"""The timed steps of one run, in order (inference includes the top-k)."""


@dataclass(frozen=True)
class Outcome:
    """One image's top k, highest first, and the seconds each phase took."""

    top: list[Prediction]
    seconds: dict[str, float]
    class_indices: tuple[int, ...] = ()
    """The class index of each of `top`, in the same order."""
    histogram: dict[str, list[int]] | None = None
    """The picture's histograms (`imgclf.images.histogram`), when asked for."""


class Pipeline:
    """One model on one runtime, with the decoding limits of the service."""

    def __init__(self, classifier: Classifier, max_pixels: int) -> None:
        self.classifier = classifier
        self.max_pixels = max_pixels

    @property
    def runtime(self) -> str:
        return self.classifier.runtime

    def run(
        self, source: Path | bytes, k: int = 5, adjustments: Adjustments = NONE, histogram: bool = False
    ) -> Outcome:
        """Classify one image file or upload, adjusted first, with its histograms if `histogram`.
        Raises InvalidImage for one that is not a usable image."""
        started = time.perf_counter()
        image = open_rgb(source, self.max_pixels, self.classifier.decode_size)
        decoded = time.perf_counter()
        image = adjustments.apply(image)
        counts = histograms(image) if histogram else None
        batch = self.classifier.preprocess([image])
        preprocessed = time.perf_counter()
        ranked = self.classifier.top_k_indexed(self.classifier.predict(batch), k)[0]
        ended = time.perf_counter()
        return Outcome(
            [(label, percent) for _, label, percent in ranked],
            {"decode": decoded - started, "preprocess": preprocessed - decoded, "inference": ended - preprocessed},
            tuple(index for index, _, _ in ranked),
            counts,
        )
