"""A model's preprocessing in Pillow and numpy: resize the shorter side, centre crop, scale, normalise.

It computes what the models' own torch transforms compute (timm's eval transform for
EfficientNet-Lite, torchvision's `ImageClassification` for the others: both resize a PIL picture
with Pillow, crop, divide by 255 and normalise in float32), without torch, so a worker that runs
exported models never imports it. One step differs on purpose: instead of resizing the whole
picture and cropping the middle, Pillow computes only the crop (`Image.resize(box=...)`, rows
across, then columns down, as for the whole picture), with the same scale and filter centres, so
about 40 % less time. Pillow clamps the filter to the whole picture, not to the box, so the pixels
are those of the full resize, except that a filter centre computed from the box's corner can
round differently: on the sample photos, upright and turned, at most 58 of 150,528 values moved,
by one 8-bit step. `imgclf bench` states the top-5 agreement with the torch transforms on a few
hundred pictures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from imgclf.images.decoding import to_rgb

Interpolation = Literal["bicubic", "bilinear"]

FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
SUPPORT = {"bicubic": 2.0, "bilinear": 1.0}
"""Each filter's reach, in output pixels either side (Pillow's own values)."""


@dataclass(frozen=True)
class Preprocessing:
    """What one model expects: `resize` the shorter side, crop `crop` x `crop`, (x / 255 - mean) / std."""

    resize: int
    crop: int
    interpolation: Interpolation
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image: Image.Image) -> np.ndarray:
        """One picture -> 3 x crop x crop float32. Pictures not in RGB go through `decoding.to_rgb`
        first, as decoded files do (transparency on white)."""
        image = to_rgb(image)
        width, height = image.size
        # torchvision's rule for the resized size: the shorter side becomes `resize`, the longer
        # one is scaled and truncated; then the crop's corner is rounded from the middle.
        if width <= height:
            new_width, new_height = self.resize, int(self.resize * height / width)
        else:
            new_width, new_height = int(self.resize * width / height), self.resize
        top = round((new_height - self.crop) / 2.0)
        left = round((new_width - self.crop) / 2.0)
        cropped = self._resized_crop(image, new_width / width, new_height / height, left, top)
        pixels = np.asarray(cropped, dtype=np.float32) / np.float32(255)
        # The same float32 steps as torchvision's Normalize (subtract, then divide), in that order.
        normalised = (pixels - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(normalised.transpose(2, 0, 1))

    def _resized_crop(self, image: Image.Image, x_scale: float, y_scale: float, left: int, top: int) -> Image.Image:
        """The crop of the picture resized by (`x_scale`, `y_scale`) whose corner is (`left`, `top`),
        computing only the crop: rows across, then columns down, as Pillow resizes a whole picture
        (given a box, Pillow may take the other order, and the rounding between the two passes
        then moves values by up to 6 steps)."""
        width, height = image.size
        x0, x1 = left / x_scale, (left + self.crop) / x_scale
        y0, y1 = top / y_scale, (top + self.crop) / y_scale
        # The source rows the second pass reads: the filter reaches `support` output pixels, that is
        # support / y_scale source rows, either side; one more for rounding.
        reach = SUPPORT[self.interpolation] * max(1.0 / y_scale, 1.0) + 1
        first, last = max(0, math.floor(y0 - reach)), min(height, math.ceil(y1 + reach))
        rows = image.crop((0, first, width, last))
        across = rows.resize((self.crop, last - first), FILTERS[self.interpolation], box=(x0, 0, x1, last - first))
        return across.resize(
            (self.crop, self.crop), FILTERS[self.interpolation], box=(0, y0 - first, self.crop, y1 - first)
        )

    def batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Pictures -> one N x 3 x crop x crop float32 batch."""
        return np.stack([self(image) for image in images])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            resize=int(data["resize"]),
            crop=int(data["crop"]),
            interpolation=data["interpolation"],
            mean=tuple(float(value) for value in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(value) for value in data["std"]),  # type: ignore[arg-type]
        )
