from pathlib import Path

from imgclf.models.registry import MODELS, model_availability, torch_hub_checkpoints


def test_offline_models_are_available_out_of_the_box(tmp_path: Path) -> None:
    availability = model_availability(list(MODELS), tmp_path)
    assert availability.available == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert set(availability.unavailable) == {"resnet18", "alexnet", "vgg16", "inception_v3"}
    assert "imgclf prepare --download" in availability.unavailable["vgg16"]


def test_a_model_becomes_available_once_its_weights_are_in_the_cache(tmp_path: Path) -> None:
    checkpoints = torch_hub_checkpoints(tmp_path)
    checkpoints.mkdir(parents=True)
    (checkpoints / MODELS["alexnet"].weights_file).write_bytes(b"weights")
    assert "alexnet" in model_availability(["alexnet", "vgg16"], tmp_path).available
