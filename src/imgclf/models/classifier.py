"""One interface for every model and runtime: preprocess -> predict a batch -> top-k.

Nothing here imports torch: a worker that serves exported models (ONNX Runtime, OpenVINO) never
loads it. Every runtime subclasses `Classifier` and implements `predict` only, so preprocessing
(`preprocessing.Preprocessing`) and labels are the same on every runtime. Files go through
`pipeline.Pipeline`; `classify` is the same steps for pictures already in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from imgclf.models.preprocessing import Preprocessing

Prediction = tuple[str, float]
"""(label, percent): percent is softmax x 100."""

IndexedPrediction = tuple[int, str, float]
"""(class index, label, percent)."""


class Classifier:
    """A model with its own preprocessing and labels; subclasses implement `predict`."""

    runtime = "none"
    """Which inference runtime runs `predict`."""

    def __init__(self, model_id: str, preprocessing: Preprocessing, labels: Sequence[str]) -> None:
        self.model_id = model_id
        self.preprocessing = preprocessing
        self.labels = list(labels)

    @property
    def decode_size(self) -> int:
        """The shorter side the preprocessing resizes to: `Pipeline` decodes files no larger than
        needed for it (`decoding.open_rgb`'s `draft_size`)."""
        return self.preprocessing.resize

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Pictures -> one normalised N x 3 x H x W float32 batch, as this model expects."""
        return self.preprocessing.batch(images)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """A preprocessed batch -> class probabilities, N x 1000 float32."""
        raise NotImplementedError

    def top_k(self, probabilities: np.ndarray, k: int = 5) -> list[list[Prediction]]:
        """Highest `k` classes of each row, highest first, as (label, percent)."""
        return [[(label, percent) for _, label, percent in row] for row in self.top_k_indexed(probabilities, k)]

    def top_k_indexed(self, probabilities: np.ndarray, k: int = 5) -> list[list[IndexedPrediction]]:
        """As `top_k`, each with its class index first (ImageNet repeats some labels, e.g. "crane")."""
        return [
            [(int(index), self.labels[index], round(float(row[index]) * 100, 4)) for index in top_indices(row, k)]
            for row in probabilities
        ]

    def classify(self, images: Sequence[Image.Image], k: int = 5) -> list[list[Prediction]]:
        """Pictures in memory -> the top `k` of each, as (label, percent)."""
        return self.top_k(self.predict(self.preprocess(images)), k)


def top_indices(row: np.ndarray, k: int) -> np.ndarray:
    """The indices of the `k` highest values of `row`, highest first (equal values: lower index first)."""
    candidates = np.argpartition(-row, k - 1)[:k] if k < row.size else np.arange(row.size)
    return candidates[np.lexsort((candidates, -row[candidates]))]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Rows of logits -> rows of probabilities, in float64 then float32 (no overflow, sums to 1)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return (exponentials / exponentials.sum(axis=1, keepdims=True)).astype(np.float32)
