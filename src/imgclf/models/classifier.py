"""One interface for every model and runtime: preprocess -> predict a batch -> top-k.

A faster runtime (ONNX Runtime, OpenVINO) subclasses `Classifier` and overrides `predict`;
the queue and web code only ever call `classify`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from imgclf.images.decoding import open_rgb

Prediction = tuple[str, float]
"""(label, percent): percent is softmax x 100."""


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
        """The shorter side the transform first resizes to: `prepare_file` decodes no larger than
        needed for it (`decoding.open_rgb`'s `draft_size`)."""

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Images -> one normalised N x 3 x H x W batch, as this model expects."""
        return torch.stack([self.transform(_rgb(image)) for image in images])

    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """A preprocessed batch -> class probabilities, N x 1000."""
        raise NotImplementedError

    def top_k(self, probabilities: torch.Tensor, k: int = 5) -> list[list[Prediction]]:
        """Highest `k` classes of each row, highest first, as (label, percent)."""
        values, indices = probabilities.topk(k, dim=1)
        return [
            [
                (self.labels[index], round(float(value) * 100, 4))
                for value, index in zip(row_values.tolist(), row_indices.tolist(), strict=True)
            ]
            for row_values, row_indices in zip(values, indices, strict=True)
        ]

    def classify(self, images: Sequence[Image.Image], k: int = 5) -> list[list[Prediction]]:
        return self.top_k(self.predict(self.preprocess(images)), k)

    def prepare_file(self, path: Path, max_pixels: int) -> torch.Tensor:
        """Decode an image file (reduced where it is much larger than `decode_size`) and preprocess
        it: a batch of one."""
        return self.preprocess([open_rgb(path, max_pixels, self.decode_size)])


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


def _rgb(image: Image.Image) -> Image.Image:
    # Files are decoded by `decoding.open_rgb`; this covers callers handing in other modes.
    return image if image.mode == "RGB" else image.convert("RGB")
