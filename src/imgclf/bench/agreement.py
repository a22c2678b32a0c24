"""Top-5 agreement of the service's preprocessing (Pillow + numpy, `models.preprocessing`) with the
model's own torch transform, the preprocessing it replaced.

Both feed the same torch model, so only the preprocessing differs. The pictures are the
catalogue photos and, made from each, crops, scales, rotations and flips (31 a photo; 217 from
the seven sample photos), as the pictures people upload differ in size, shape and orientation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgclf.images.decoding import open_rgb
from imgclf.models.classifier import top_indices

BATCH = 30
"""Pictures per forward pass."""


def variants(photo: Image.Image) -> Iterator[Image.Image]:
    """31 pictures made from one photo: itself, turned, flipped, rescaled and cropped."""
    width, height = photo.size
    yield photo
    for transpose in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270):
        yield photo.transpose(transpose)
    yield photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for angle in (7, -12):
        yield photo.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    for scale in (0.3, 0.5, 0.7, 1.3, 2.0):
        yield photo.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BICUBIC)
    crops = [
        (0, 0, 0.7, 0.7), (0.3, 0, 1, 0.7), (0, 0.3, 0.7, 1), (0.3, 0.3, 1, 1), (0.2, 0.2, 0.8, 0.8),
        (0, 0, 0.5, 1), (0, 0, 1, 0.5), (0, 0.35, 1, 0.65), (0.35, 0, 0.65, 1),
    ]  # fmt: skip
    for left, top, right, bottom in crops:
        box = (round(left * width), round(top * height), round(right * width), round(bottom * height))
        cropped = photo.crop(box)
        yield cropped
        yield cropped.transpose(Image.Transpose.ROTATE_90)
    yield photo.resize((max(1, width // 2), max(1, height // 2))).transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def measure(model_dir: Path, model_id: str, photos: list[Path], max_pixels: int) -> dict[str, Any]:
    """Compare the two preprocessings on every variant of `photos`, with `model_id` in torch."""
    from imgclf.models.loading import TorchClassifier
    from imgclf.models.registry import MODELS
    from imgclf.models.serving import load_torch

    model = load_torch(MODELS[model_id], model_dir, os.cpu_count() or 1)
    assert isinstance(model, TorchClassifier)
    pictures = [variant for path in photos for variant in variants(open_rgb(path, max_pixels))]
    top1 = top5_ordered = top5_classes = 0
    largest = 0.0
    for start in range(0, len(pictures), BATCH):
        batch = pictures[start : start + BATCH]
        ours = model.predict(model.preprocess(batch))
        theirs = model.predict(model.reference_preprocess(batch))
        for mine, reference in zip(ours, theirs, strict=True):
            mine_top, reference_top = top_indices(mine, 5), top_indices(reference, 5)
            top1 += int(mine_top[0] == reference_top[0])
            top5_ordered += int((mine_top == reference_top).all())
            top5_classes += int(set(mine_top) == set(reference_top))
            largest = max(largest, float(np.abs(mine - reference).max()))
    count = len(pictures)
    return {
        "model": model_id,
        "images": count,
        "top1_same": top1 / count,
        "top5_same_order": top5_ordered / count,
        "top5_same_classes": top5_classes / count,
        "max_probability_difference": largest,
    }
