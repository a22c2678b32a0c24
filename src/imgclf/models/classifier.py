"""One interface for every model and runtime: preprocess -> predict a batch -> top-k.

A faster runtime (ONNX Runtime, OpenVINO) subclasses `Classifier` and overrides `predict` only,
so preprocessing and labels are the same on every runtime. Files go through `pipeline.Pipeline`;
`classify` is the same steps for pictures already in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from imgclf.images.decoding import to_rgb

Prediction = tuple[str, float]
"""(label, percent): percent is softmax x 100."""

IndexedPrediction = tuple[int, str, float]
"""(class index, label, percent)."""


class Classifier:
    """A model with its own preprocessing and labels; subclasses implement `predict`."""

    runtime = "none"
    """Which inference runtime runs `predict`."""

    def __init__(
        self, model_id: str, transform: Callable[[Image.Image], Any], labels: Sequence[str], decode_size: int
    ) -> None:
        self.model_id = model_id
        self.transform = transform
        self.labels = list(labels)
        self.decode_size = decode_size
        """The shorter side the transform first resizes to: `Pipeline` decodes files no larger than
        needed for it (`decoding.open_rgb`'s `draft_size`)."""

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Images -> one normalised N x 3 x H x W batch, as this model expects.

        Pictures that are not RGB go through `decoding.to_rgb`, as decoded files do, so a picture
        handed in directly is seen the same way as the file it came from (transparency on white).
        """
        return torch.stack([self.transform(to_rgb(image)) for image in images])

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """A preprocessed batch -> class probabilities, N x 1000."""
        raise NotImplementedError

    def top_k(self, probabilities: torch.Tensor, k: int = 5) -> list[list[Prediction]]:
        """Highest `k` classes of each row, highest first, as (label, percent)."""
        return [[(label, percent) for _, label, percent in row] for row in self.top_k_indexed(probabilities, k)]

    def top_k_indexed(self, probabilities: torch.Tensor, k: int = 5) -> list[list[IndexedPrediction]]:
        """As `top_k`, each with its class index first (ImageNet repeats some labels, e.g. "crane")."""
        values, indices = probabilities.topk(k, dim=1)
        return [
            [
                (index, self.labels[index], round(float(value) * 100, 4))
                for value, index in zip(row_values.tolist(), row_indices.tolist(), strict=True)
            ]
            for row_values, row_indices in zip(values, indices, strict=True)
        ]

    def classify(self, images: Sequence[Image.Image], k: int = 5) -> list[list[Prediction]]:
        """Pictures in memory -> the top `k` of each, as (label, percent)."""
        return self.top_k(self.predict(self.preprocess(images)), k)


class TorchClassifier(Classifier):
    """Eager PyTorch on the CPU."""

    runtime = "torch"

    def __init__(
        self,
        model_id: str,
        model: torch.nn.Module,
        transform: Callable[[Image.Image], Any],
        labels: Sequence[str],
        decode_size: int,
    ) -> None:
        super().__init__(model_id, transform, labels, decode_size)
        self.model = model.eval()

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(batch).softmax(dim=1)
