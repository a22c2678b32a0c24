"""Preprocessing and predictions of the real models on real photos."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgclf.images.samples import sample_photo as photo
from imgclf.models.loading import TorchClassifier, load_classifier
from imgclf.models.pipeline import Pipeline
from imgclf.models.registry import MODELS
from tests.conftest import CATS


@pytest.fixture(scope="module", params=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def lite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TorchClassifier:
    return load_classifier(MODELS[request.param], tmp_path_factory.mktemp("models"))


EXPECTED_INPUT = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def test_lite_preprocessing_matches_the_training_recipe(lite: TorchClassifier) -> None:
    batch = lite.preprocess([photo("chelsea.jpg"), photo("coffee.jpg")])
    size = EXPECTED_INPUT[lite.model_id]
    assert batch.shape == (2, 3, size, size)
    # mean = std = 0.5 maps pixel values 0..255 onto -1..1
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    assert batch.min() < -0.9 and batch.max() > 0.9


def test_lite_models_recognise_real_photos(lite: TorchClassifier) -> None:
    cat, coffee, camera = lite.classify([photo("chelsea.jpg"), photo("coffee.jpg"), photo("camera.jpg")])
    assert cat[0][0] in CATS
    assert {label for label, _ in cat[:3]} <= CATS | {"lynx"}
    assert coffee[0][0] == "espresso"
    assert camera[0][0] in {"tripod", "reflex camera"}


def test_top_five_is_sorted_and_in_percent(lite: TorchClassifier) -> None:
    (top,) = lite.classify([photo("coffee.jpg")])
    percents = [percent for _, percent in top]
    assert len(top) == 5
    assert percents == sorted(percents, reverse=True)
    assert 50 < percents[0] <= 100
    assert sum(percents) <= 100.01


def test_torchvision_models_use_their_own_preprocessing(tmp_path: Path) -> None:
    from imgclf.models.registry import torch_hub_checkpoints

    checkpoints = torch_hub_checkpoints(tmp_path)
    checkpoints.mkdir(parents=True)
    import torchvision

    # A weights file written here (random values): the path under test is the loading, not accuracy.
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    torch.save(model.state_dict(), checkpoints / MODELS["inception_v3"].weights_file)
    classifier = load_classifier(MODELS["inception_v3"], tmp_path)
    assert classifier.preprocess([photo("rocket.jpg")]).shape == (1, 3, 299, 299)
    (top,) = classifier.classify([photo("rocket.jpg")])
    assert len(top) == 5 and all(label in classifier.labels for label, _ in top)
    assert len(classifier.labels) == 1000


def test_reduced_scale_decoding_keeps_the_prediction(lite: TorchClassifier, tmp_path: Path) -> None:
    big = photo("chelsea.jpg").resize((3608, 2400), Image.Resampling.BICUBIC)  # 8x, about 8.7 megapixels
    big.save(tmp_path / "big.jpg", quality=92)
    with Image.open(tmp_path / "big.jpg") as full:
        from_full = lite.classify([full.convert("RGB")])[0]
    from_draft = Pipeline(lite, 50_000_000).run(tmp_path / "big.jpg").top
    full_scores, draft_scores = dict(from_full), dict(from_draft)
    # chelsea's tiger cat and Egyptian cat are nearly tied, so the order of those two may swap
    assert from_draft[0][0] in CATS and from_full[0][0] in CATS
    shared = full_scores.keys() & draft_scores.keys()
    assert max(abs(full_scores[label] - draft_scores[label]) for label in shared) < 5  # percent points


def test_a_transparent_picture_handed_in_is_seen_on_white(lite: TorchClassifier) -> None:
    # The decoder's own conversion (`decoding.to_rgb`): a plain convert("RGB") would make it black.
    clear = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    white = Image.new("RGB", (300, 300), "white")
    assert np.array_equal(lite.preprocess([clear]), lite.preprocess([white]))


def test_the_preprocessing_computes_what_the_models_own_torch_transform_does(lite: TorchClassifier) -> None:
    # Pillow + numpy (no torch) against timm's transform, on photos of several shapes: only a filter
    # centre rounded differently may move a value, by one 8-bit step (2/255 on a -1..1 scale).
    pictures = [photo(name) for name in ("chelsea.jpg", "coffee.jpg", "camera.jpg", "motorcycle.jpg")]
    pictures.append(photo("rocket.jpg").rotate(90, expand=True))
    ours, reference = lite.preprocess(pictures), lite.reference_preprocess(pictures)
    assert ours.shape == reference.shape and ours.dtype == np.float32
    difference = np.abs(ours - reference)
    assert difference.max() <= 2 / 255 + 1e-6
    assert (difference > 0).mean() < 1e-3
