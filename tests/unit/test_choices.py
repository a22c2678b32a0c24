import pytest

from imgclf.web.choices import Choices

CHOICES = Choices(
    models=["efficientnet_lite0", "efficientnet_lite1"],
    unavailable_models={"vgg16": "its weights are not downloaded yet (run: imgclf prepare --download)"},
    images=["chelsea.jpg", "coffee.jpg"],
)


def field_errors(model_id: object, image_id: object) -> dict[str, str]:
    problems = {"model_id": CHOICES.model_problem(model_id), "image_id": CHOICES.image_problem(image_id)}
    return {field: problem for field, problem in problems.items() if problem is not None}


def test_a_valid_pair_passes() -> None:
    assert field_errors("efficientnet_lite1", "coffee.jpg") == {}


def test_an_empty_form_asks_for_both_fields() -> None:
    assert field_errors(None, "") == {"model_id": "Pick a model.", "image_id": "Pick an image."}


def test_an_unknown_model_names_the_choices() -> None:
    errors = field_errors("resnet9000", "chelsea.jpg")
    assert list(errors) == ["model_id"]
    assert "'resnet9000'" in errors["model_id"]
    assert "efficientnet_lite0, efficientnet_lite1" in errors["model_id"]


def test_an_unavailable_model_says_why() -> None:
    errors = field_errors("vgg16", "chelsea.jpg")
    assert "not available on this server" in errors["model_id"]
    assert "imgclf prepare --download" in errors["model_id"]


@pytest.mark.parametrize("image_id", ["../etc/passwd", "/etc/passwd", "chelsea.jpg/..", "x" * 10_000])
def test_an_image_outside_the_catalogue_is_refused(image_id: str) -> None:
    errors = field_errors("efficientnet_lite0", image_id)
    assert list(errors) == ["image_id"]
    assert "Unknown image" in errors["image_id"]
    assert len(errors["image_id"]) < 200  # a huge id is cut short in the message


def test_non_string_values_are_refused() -> None:
    assert set(field_errors(["efficientnet_lite0"], 3)) == {"model_id", "image_id"}
