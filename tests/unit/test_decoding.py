from pathlib import Path

import pytest
from PIL import Image

from imgclf.errors import ClassificationError
from imgclf.models.decoding import open_rgb


def test_grayscale_becomes_rgb(tmp_path: Path) -> None:
    Image.new("L", (40, 30), 128).save(tmp_path / "gray.png")
    image = open_rgb(tmp_path / "gray.png", max_pixels=10_000)
    assert image.mode == "RGB"
    assert image.size == (40, 30)
    assert image.getpixel((0, 0)) == (128, 128, 128)


def test_transparent_pixels_are_laid_on_white(tmp_path: Path) -> None:
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert open_rgb(tmp_path / "clear.png", max_pixels=10_000).getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (60, 20), "red").save(tmp_path / "turned.jpg", exif=exif)
    assert open_rgb(tmp_path / "turned.jpg", max_pixels=10_000).size == (20, 60)


def test_a_file_that_is_not_an_image_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "fake.jpg").write_bytes(b"<html>not an image</html>")
    with pytest.raises(ClassificationError, match="could not be decoded"):
        open_rgb(tmp_path / "fake.jpg", max_pixels=10_000)


def test_a_truncated_jpeg_is_a_clear_error(tmp_path: Path) -> None:
    Image.new("RGB", (200, 200), "blue").save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    with pytest.raises(ClassificationError, match="could not be decoded"):
        open_rgb(tmp_path / "cut.jpg", max_pixels=100_000)


def test_too_many_pixels_are_refused_before_decoding(tmp_path: Path) -> None:
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(ClassificationError, match="300 x 300 pixels; the limit is 10,000"):
        open_rgb(tmp_path / "big.png", max_pixels=10_000)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_that_still_covers_the_model(tmp_path: Path) -> None:
    Image.new("RGB", (2000, 1500), "orange").save(tmp_path / "big.jpg")
    full = open_rgb(tmp_path / "big.jpg", max_pixels=10_000_000)
    reduced = open_rgb(tmp_path / "big.jpg", max_pixels=10_000_000, draft_size=256)
    assert full.size == (2000, 1500)
    assert reduced.size == (500, 375)  # 1/4: 1/8 would make the short side 187 < 256
    assert reduced.mode == "RGB"


def test_draft_leaves_other_formats_alone(tmp_path: Path) -> None:
    Image.new("RGB", (2000, 1500), "orange").save(tmp_path / "big.png")
    assert open_rgb(tmp_path / "big.png", max_pixels=10_000_000, draft_size=256).size == (2000, 1500)
