import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from imgclf.errors import InvalidImage
from imgclf.images.decoding import DAMAGED, NOT_AN_IMAGE, open_rgb, to_rgb
from tests.pictures import LIMIT, write_blank_bilevel_png


def on_white(image: Image.Image) -> Image.Image:
    """What the service makes of a picture: upright, 16-bit greys scaled to 8 bits, transparency
    laid on white, RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "I;16":
        image = Image.fromarray(np.round(np.asarray(image) / 257).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")


def noisy(mode: str, size: tuple[int, int]) -> Image.Image:
    """Random pixels (with random transparency where the mode has it)."""
    width, height = size
    rgba = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 4), dtype=np.uint8))
    if mode == "P":
        return rgba.convert("RGB").convert("P")
    if mode == "I;16":
        return Image.fromarray(np.random.default_rng(0).integers(0, 65536, (height, width), dtype=np.uint16))
    return rgba.convert(mode)


def png_options(mode: str, orientation: int) -> dict[str, Any]:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return {"exif": exif, "transparency": 3} if mode == "P" else {"exif": exif}


def test_grayscale_becomes_rgb(tmp_path: Path) -> None:
    Image.new("L", (40, 30), 128).save(tmp_path / "gray.png")
    image = open_rgb(tmp_path / "gray.png", max_pixels=10_000)
    assert image.mode == "RGB"
    assert image.size == (40, 30)
    assert image.getpixel((0, 0)) == (128, 128, 128)


def test_transparent_pixels_are_laid_on_white(tmp_path: Path) -> None:
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert open_rgb(tmp_path / "clear.png", max_pixels=10_000).getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_colour_the_file_names_transparent_is_laid_on_white(tmp_path: Path, mode: str) -> None:
    image = Image.new(mode, (2, 1), "black")
    image.putpixel((1, 0), (200, 100, 50) if mode == "RGB" else 90)
    image.save(tmp_path / "keyed.png", transparency=(0, 0, 0) if mode == "RGB" else 0)
    decoded = open_rgb(tmp_path / "keyed.png", max_pixels=10_000)
    assert decoded.getpixel((0, 0)) == (255, 255, 255)
    assert decoded.getpixel((1, 0)) == ((200, 100, 50) if mode == "RGB" else (90, 90, 90))


def sixteen_bit_grey(mode: str, samples: np.ndarray) -> Image.Image:
    if mode == "I;16B":
        return Image.frombytes(mode, samples.shape[::-1], samples.astype(">u2").tobytes())
    return Image.fromarray(samples.astype(np.int32 if mode == "I" else np.uint16))


@pytest.mark.parametrize(("suffix", "mode"), [(".png", "I;16"), (".tif", "I;16"), (".tif", "I;16B"), (".tif", "I")])
def test_sixteen_bit_greys_are_scaled_to_eight_bits_not_clipped(tmp_path: Path, suffix: str, mode: str) -> None:
    # Every sample is over 255, where Pillow's own conversion clips: the picture would be white.
    sixteen_bit_grey(mode, np.array([[300, 32896, 65535]])).save(tmp_path / f"grey{suffix}")
    with Image.open(tmp_path / f"grey{suffix}") as image:
        assert image.mode == mode
    decoded = open_rgb(tmp_path / f"grey{suffix}", max_pixels=10_000)
    assert [decoded.getpixel((x, 0)) for x in range(3)] == [(1, 1, 1), (128, 128, 128), (255, 255, 255)]


def test_the_transparent_grey_of_a_sixteen_bit_png_is_laid_on_white(tmp_path: Path) -> None:
    Image.fromarray(np.array([[1000, 32896]], dtype=np.uint16)).save(tmp_path / "keyed.png", transparency=1000)
    decoded = open_rgb(tmp_path / "keyed.png", max_pixels=10_000)
    assert [decoded.getpixel((x, 0)) for x in range(2)] == [(255, 255, 255), (128, 128, 128)]


@pytest.mark.parametrize(("draft_size", "size"), [(None, (1000, 800)), (100, (125, 100))])
def test_a_cmyk_jpeg_decodes_to_its_colours(tmp_path: Path, draft_size: int | None, size: tuple[int, int]) -> None:
    # Print work writes CMYK JPEGs: full magenta and yellow, no cyan or black, is red.
    Image.new("CMYK", (1000, 800), (0, 255, 255, 0)).save(tmp_path / "red.jpg")
    with Image.open(tmp_path / "red.jpg") as image:
        assert image.mode == "CMYK"
    decoded = open_rgb(tmp_path / "red.jpg", LIMIT, draft_size)
    assert decoded.mode == "RGB" and decoded.size == size
    assert np.abs(np.asarray(decoded, dtype=int) - (255, 0, 0)).max() <= 2  # JPEG's rounding


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "P", "I;16", "CMYK", "L", "1", "RGB"])
def test_a_picture_in_memory_is_converted_as_a_decoded_file_is(mode: str) -> None:
    # `Classifier.preprocess` runs `to_rgb` on pictures handed in whole, the decoder on its bands.
    picture = noisy(mode, (64, 48))
    if mode == "P":
        picture.info["transparency"] = 3
    converted = to_rgb(picture)
    assert converted.mode == "RGB" and converted.tobytes() == on_white(picture).tobytes()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (60, 20), "red").save(tmp_path / "turned.jpg", exif=exif)
    assert open_rgb(tmp_path / "turned.jpg", max_pixels=10_000).size == (20, 60)


def test_too_many_pixels_are_refused_before_decoding(tmp_path: Path) -> None:
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(InvalidImage, match="300 x 300 pixels; the limit is 10,000"):
        open_rgb(tmp_path / "big.png", max_pixels=10_000)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_that_still_covers_the_model(tmp_path: Path) -> None:
    Image.new("RGB", (2000, 1500), "orange").save(tmp_path / "big.jpg")
    full = open_rgb(tmp_path / "big.jpg", max_pixels=10_000_000)
    reduced = open_rgb(tmp_path / "big.jpg", max_pixels=10_000_000, draft_size=256)
    assert full.size == (2000, 1500)
    assert reduced.size == (500, 375)  # 1/4: 1/8 would make the short side 187 < 256
    assert reduced.mode == "RGB"


def _text_file(path: Path) -> None:
    path.write_text("Quarterly report\nThis is text, whatever the name says.\n")


def _truncated_jpeg(path: Path) -> None:
    photo = io.BytesIO()
    Image.effect_noise((400, 300), 40).convert("RGB").save(photo, "JPEG")
    path.write_bytes(photo.getvalue()[: len(photo.getvalue()) // 2])


PILLOW_TEXTS = (
    "cannot identify",
    "image file is truncated",
    "bytes not processed",
    "Truncated File Read",
    "decompression bomb",
    "Image size (",
    "exceeds limit",
    "broken data stream",
    "BufferedReader",
)
"""What Pillow's own messages say (seen in the job errors before the service wrote its own)."""


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("notes.jpg", _text_file, NOT_AN_IMAGE),
        ("cut.jpg", _truncated_jpeg, DAMAGED),
        # Just over the service's limit.
        ("large.png", lambda path: write_blank_bilevel_png(path, 6325, 6325),
         "The image is 6325 x 6325 pixels; the limit is 40,000,000 pixels."),
        # Over twice Pillow's own limit (89 megapixels), where Pillow refuses in Image.open.
        ("bomb.png", lambda path: write_blank_bilevel_png(path, 20_000, 20_000),
         "The image is 20000 x 20000 pixels; the limit is 40,000,000 pixels."),
    ],
)  # fmt: skip
def test_errors_are_the_services_own_words_without_server_paths(
    tmp_path: Path, name: str, make: Callable[[Path], None], message: str
) -> None:
    make(tmp_path / name)
    assert (tmp_path / name).stat().st_size < 1_000_000
    for draft_size in (None, 256):
        with pytest.raises(InvalidImage) as caught:
            open_rgb(tmp_path / name, LIMIT, draft_size)
        assert caught.value.message == str(caught.value) == message
        assert "/" not in message and name not in message
        assert not [text for text in PILLOW_TEXTS if text.lower() in message.lower()]


@pytest.mark.parametrize("side", [40, 100])
@pytest.mark.parametrize("suffix", [".png", ".tif"])  # TIFF checks Pillow's limit again as it decodes
def test_pillows_own_limit_never_decides(
    tmp_path: Path, side: int, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a service whose IMGCLF_MAX_IMAGE_PIXELS is above Pillow's limit: 40 x 40 is over
    # Pillow's warning threshold, 100 x 100 over twice it, where Pillow refuses.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    Image.new("RGB", (side, side), "red").save(tmp_path / f"red{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        image = open_rgb(tmp_path / f"red{suffix}", max_pixels=LIMIT)
    assert image.size == (side, side) and image.getpixel((0, 0)) == (255, 0, 0)
    assert Image.MAX_IMAGE_PIXELS == 1_000  # only lifted while the header was read


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "1", "I;16"])
def test_a_picture_that_needs_no_reduction_decodes_exactly_as_one_whole_conversion(tmp_path: Path, mode: str) -> None:
    # 1500 x 1100 is converted in two bands; 1100 // (2 x 300) = 1: too small to reduce.
    image = noisy(mode, (1500, 1100))
    image.save(tmp_path / "picture.png", **png_options(mode, orientation=8))
    with Image.open(tmp_path / "picture.png") as whole:
        expected = on_white(whole)
    for draft_size in (None, 300):
        decoded = open_rgb(tmp_path / "picture.png", LIMIT, draft_size)
        assert decoded.mode == "RGB" and decoded.size == (1100, 1500)
        assert decoded.tobytes() == expected.tobytes()


@pytest.mark.parametrize("mode", ["RGBA", "P", "I;16"])
def test_a_large_picture_is_reduced_before_it_is_converted(tmp_path: Path, mode: str) -> None:
    # 2.6 megapixels: converted in three bands.
    image = noisy(mode, (2000, 1300))
    image.save(tmp_path / "large.png", **png_options(mode, orientation=6))
    decoded = open_rgb(tmp_path / "large.png", LIMIT, draft_size=300)
    # 1300 // (2 x 300) = 2: both sides stay at least twice 300, the picture is upright.
    assert decoded.mode == "RGB" and decoded.size == (650, 1000)
    with Image.open(tmp_path / "large.png") as whole:
        assert decoded.tobytes() == on_white(whole).reduce(2).tobytes()
