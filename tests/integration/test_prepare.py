"""`imgclf prepare`'s model side (torch): weights downloaded against files served here, ONNX exports."""

from pathlib import Path

import pytest

from imgclf.config import Settings
from imgclf.models.manifest import is_exported, onnx_path
from imgclf.models.registry import MODELS, model_availability
from imgclf.ops.prepare import download_weights, export_models


def test_downloaded_weights_with_a_wrong_checksum_are_not_kept(tmp_path: Path, served: tuple[Path, str]) -> None:
    folder, base = served
    (folder / MODELS["resnet18"].weights_file).write_bytes(b"not the real resnet18 weights")
    settings = Settings(data_dir=tmp_path, models=["resnet18"], weights_mirror=base)

    with pytest.raises(RuntimeError, match="invalid hash value"):
        download_weights(settings)

    assert model_availability(["resnet18"], settings.model_dir).available == []
    checkpoints = settings.model_dir / "hub" / "checkpoints"
    assert not any(checkpoints.iterdir())


def test_models_already_present_are_not_downloaded(tmp_path: Path) -> None:
    # efficientnet weights ship in packages and resnet18's file is present: nothing to fetch,
    # so no network access is attempted (the mirror below does not exist).
    settings = Settings(
        data_dir=tmp_path, models=["efficientnet_lite0", "resnet18"], weights_mirror="http://127.0.0.1:9"
    )
    checkpoints = settings.model_dir / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / MODELS["resnet18"].weights_file).write_bytes(b"present")
    assert download_weights(settings) == []


def test_prepare_exports_the_available_models_for_workers_without_torch(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models=["efficientnet_lite0", "resnet18"])
    lite0 = MODELS["efficientnet_lite0"]
    assert export_models(settings) == ["efficientnet_lite0"]  # resnet18 has no weights here: nothing to export
    assert onnx_path(settings.model_dir, lite0.id, lite0.weights_file).stat().st_size > 1_000_000
    assert is_exported(settings.model_dir, lite0.id, lite0.weights_file)
    assert export_models(settings) == []  # done once
