"""The registry's weights file names against torchvision's own (the registry itself never imports torch)."""

import pytest
import torchvision

from imgclf.models.registry import MODELS


@pytest.mark.parametrize("model_id", [m for m, spec in MODELS.items() if spec.torchvision_weights])
def test_weights_file_names_match_torchvision(model_id: str) -> None:
    spec = MODELS[model_id]
    assert spec.torchvision_weights is not None
    weights = torchvision.models.get_weight(spec.torchvision_weights)
    assert weights.url.rsplit("/", 1)[1] == spec.weights_file
    # the lesson's `weights="DEFAULT"` is the same file
    assert weights == torchvision.models.get_model_weights(model_id).DEFAULT
