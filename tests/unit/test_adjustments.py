"""Adjustments: parsed from request fields with a message per wrong field, named stably for the
cache, applied in one order; and the histograms counted from the adjusted picture."""

import pytest
from PIL import Image, ImageEnhance

from imgclf.errors import InvalidRequest
from imgclf.images.adjustments import NONE, Adjustments, from_job, parse_adjustments
from imgclf.images.histogram import display_peak, histograms


def test_form_strings_and_json_values_give_the_same_adjustments() -> None:
    from_form = parse_adjustments({"brightness": "1.20", "contrast": "1", "rotate": "90", "flip": "true"})
    from_json = parse_adjustments({"brightness": 1.2, "rotate": 90, "flip": True})
    assert from_form == from_json == Adjustments(brightness=1.2, rotate=90, flip=True)
    assert parse_adjustments({"brightness": "1.004"}) == NONE  # kept to two decimals
    assert parse_adjustments({"flip": "false", "sharpness": ""}) == NONE


def test_each_wrong_field_gets_its_own_message() -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_adjustments(
            {"brightness": "2.01", "color": "nan", "rotate": "45", "flip": "maybe", "gamma": 1}, "adjustments."
        )
    assert set(refused.value.field_errors) == {
        "adjustments.brightness",
        "adjustments.color",
        "adjustments.rotate",
        "adjustments.flip",
        "adjustments.gamma",
    }
    with pytest.raises(InvalidRequest):
        parse_adjustments({"contrast": True})  # a boolean is not a factor


def test_the_cache_name_is_empty_for_none_and_differs_for_any_change() -> None:
    assert NONE.key() == "" and NONE.is_identity
    changes = [
        Adjustments(brightness=0.5),
        Adjustments(contrast=0.5),
        Adjustments(color=0.5),
        Adjustments(sharpness=0.5),
        Adjustments(rotate=90),
        Adjustments(rotate=270),
        Adjustments(flip=True),
    ]
    assert len({change.key() for change in changes}) == len(changes)
    assert from_job({"brightness": 0.5}) == changes[0] and from_job(None) == NONE


def test_turns_are_clockwise_then_the_flip_then_the_factors_in_order() -> None:
    picture = Image.new("RGB", (2, 1))
    picture.putpixel((0, 0), (255, 0, 0))  # red on the left
    turned = Adjustments(rotate=90).apply(picture)
    assert turned.size == (1, 2) and turned.getpixel((0, 0)) == (255, 0, 0)  # clockwise: left goes up
    flipped = Adjustments(flip=True).apply(picture)
    assert flipped.getpixel((1, 0)) == (255, 0, 0)
    photo = Image.radial_gradient("L").convert("RGB").resize((64, 64))
    expected = ImageEnhance.Contrast(ImageEnhance.Brightness(photo).enhance(1.5)).enhance(0.5)
    assert Adjustments(brightness=1.5, contrast=0.5).apply(photo).tobytes() == expected.tobytes()
    other_order = ImageEnhance.Brightness(ImageEnhance.Contrast(photo).enhance(0.5)).enhance(1.5)
    assert other_order.tobytes() != expected.tobytes()


def test_histograms_count_every_pixel_per_channel() -> None:
    picture = Image.new("RGB", (10, 10), (255, 0, 0))
    counts = histograms(picture)
    assert counts["red"][255] == counts["green"][0] == counts["blue"][0] == 100
    assert counts["luminance"][76] == 100  # L of pure red
    assert display_peak(counts) == 100  # luminance 76 is between the clipped ends
    assert display_peak({"red": counts["red"]}) == 0  # every pixel clipped: nothing between to scale to
    assert display_peak({"red": [5, 1, 2, 9]}) == 2
