import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from imgclf.errors import InvalidImage, ServiceError
from imgclf.images.decoding import DAMAGED
from imgclf.images.samples import sample_photo
from imgclf.images.uploads import DISPLAY_MAX_SIDE, UPLOAD_FORMATS, inspect_upload
from tests.pictures import LIMIT
from tests.upload_corpus import GPS_PLACE, Upload, corpus

UPLOADS = {upload.name: upload for upload in corpus()}
INSPECTED = [upload for upload in UPLOADS.values() if not upload.too_big_for_transfer]


def shown(data: bytes) -> Image.Image:
    """The display copy, as a browser would decode it."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


@pytest.mark.parametrize("upload", [u for u in INSPECTED if u.status != 202], ids=lambda u: u.name)
def test_a_refused_upload_gets_its_status_and_a_message_for_the_user(upload: Upload) -> None:
    with pytest.raises(ServiceError) as caught:
        inspect_upload(upload.data, max_pixels=LIMIT)
    assert caught.value.status_code == upload.status
    assert upload.message is not None and upload.message in caught.value.message
    # Pillow's own words name server paths and its internals.
    assert "/" not in caught.value.message and "PIL" not in caught.value.message


@pytest.mark.parametrize("upload", [u for u in INSPECTED if u.status == 202], ids=lambda u: u.name)
def test_an_accepted_upload_is_shown_only_as_a_small_jpeg_without_metadata(upload: Upload) -> None:
    inspected = inspect_upload(upload.data, max_pixels=LIMIT)
    assert (inspected.format, (inspected.width, inspected.height)) == (upload.format, upload.size)
    assert inspected.sha256 == hashlib.sha256(upload.data).hexdigest()
    display = shown(inspected.display)
    assert (display.format, display.mode) == ("JPEG", "RGB")
    assert max(display.size) == min(DISPLAY_MAX_SIDE, max(inspected.width, inspected.height))  # fitted, no smaller
    # Upright, like the size reported.
    assert (display.width >= display.height) == (inspected.width >= inspected.height)
    assert not display.getexif()
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(display.info)


def test_the_same_bytes_give_the_same_digest_and_the_same_copy() -> None:
    for name in ("large.jpg", "animated.gif", "rgba16.png", "screenshot.png"):
        first = inspect_upload(UPLOADS[name].data, max_pixels=LIMIT)
        assert inspect_upload(bytes(UPLOADS[name].data), max_pixels=LIMIT) == first


def test_a_truncated_jpeg_is_caught_even_when_decoded_at_reduced_scale() -> None:
    data = UPLOADS["truncated.jpg"].data
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE))
        assert image.size == (1280, 1280)  # the draft applies to this file: half scale
    with pytest.raises(InvalidImage, match=DAMAGED):
        inspect_upload(data, max_pixels=LIMIT)


def test_the_pixel_limit_is_read_from_the_header() -> None:
    bomb = UPLOADS["bomb.png"].data
    assert len(bomb) < 1_000_000
    with pytest.raises(ServiceError, match="20000 x 20000 pixels; the limit is 40,000,000 pixels"):
        inspect_upload(bomb, max_pixels=LIMIT)
    inspected = inspect_upload(UPLOADS["upright.jpg"].data, max_pixels=451 * 300)
    with pytest.raises(ServiceError, match="451 x 300 pixels; the limit is 135,299 pixels") as caught:
        inspect_upload(UPLOADS["upright.jpg"].data, max_pixels=451 * 300 - 1)
    assert (inspected.width, caught.value.status_code) == (451, 413)


def test_a_rotated_photo_is_shown_upright_like_the_same_photo_stored_upright() -> None:
    upright = shown(inspect_upload(UPLOADS["upright.jpg"].data, max_pixels=LIMIT).display)
    rotated = shown(inspect_upload(UPLOADS["rotated.jpg"].data, max_pixels=LIMIT).display)
    assert rotated.size == upright.size == (451, 300)
    assert difference(rotated, upright) < 3  # JPEG noise only
    assert difference(rotated, upright.transpose(Image.Transpose.ROTATE_180)) > 20


def test_no_metadata_of_the_upload_reaches_its_copy() -> None:
    data = UPLOADS["phone.jpg"].data
    with Image.open(io.BytesIO(data)) as original:  # there is something to lose
        assert original.getexif().get_ifd(0x8825) and {"icc_profile", "comment", "xmp"} <= set(original.info)
    display = inspect_upload(data, max_pixels=LIMIT).display
    for trace in (GPS_PLACE.encode(), b"PhoneMaker", b"Exif", b"ICC_PROFILE", b"adobe"):
        assert trace in data and trace not in display


def test_a_gif_that_is_also_a_script_is_shown_only_re_encoded() -> None:
    data = UPLOADS["polyglot.gif"].data
    assert data.startswith(b"GIF89a/*") and b"alert(" in data
    display = inspect_upload(data, max_pixels=LIMIT).display
    assert display.startswith(b"\xff\xd8") and b"alert" not in display and b"GIF" not in display
    grey = np.asarray(shown(display).convert("L"), dtype=np.int16)
    assert grey.max() - grey.min() > 100  # its stripes were decoded, not a blank canvas


def test_an_animated_gif_is_shown_by_its_first_frame() -> None:
    display = shown(inspect_upload(UPLOADS["animated.gif"].data, max_pixels=LIMIT).display)
    assert difference(display, Image.new("RGB", display.size, "red")) < 10


def test_cmyk_is_shown_in_the_colours_it_was_saved_in() -> None:
    display = shown(inspect_upload(UPLOADS["cmyk.jpg"].data, max_pixels=LIMIT).display)
    assert difference(display, sample_photo("coffee.jpg")) < 4  # not inverted, not washed out


def test_sixteen_bit_transparency_is_laid_on_white() -> None:
    display = shown(inspect_upload(UPLOADS["rgba16.png"].data, max_pixels=LIMIT).display)
    # tests.pictures.write_worst_png's samples, composited by hand on white and on black.
    y, x = np.mgrid[0:200, 0:300]
    colour = np.stack([(x % 64) * 1024, (y % 64) * 1024, np.full_like(x, 40_000)], axis=-1) / 65535
    alpha = (((x + y) % 64) * 1024 / 65535)[..., None]
    on_white = Image.fromarray(np.round((colour * alpha + 1 - alpha) * 255).astype(np.uint8))
    on_black = Image.fromarray(np.round(colour * alpha * 255).astype(np.uint8))
    assert difference(display, on_white) < 3
    assert difference(display, on_black) > 50


@pytest.mark.parametrize("pillow_format", [*UPLOAD_FORMATS, "MPO"])
def test_every_accepted_type_is_read_from_its_bytes(pillow_format: str) -> None:
    encoded = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(encoded, format=pillow_format)
    inspected = inspect_upload(encoded.getvalue(), max_pixels=LIMIT)
    assert (inspected.format, inspected.width, inspected.height) == (
        "jpeg" if pillow_format == "MPO" else pillow_format.lower(),
        40,
        30,
    )


def test_the_upload_over_the_body_limit_is_otherwise_a_picture() -> None:
    # Its 413 is the web layer's (the body limit), before inspect_upload sees it.
    upload = UPLOADS["too-big.png"]
    assert len(upload.data) > 10 * 1024 * 1024 and upload.status == 413
    inspected = inspect_upload(upload.data, max_pixels=LIMIT)
    assert (inspected.format, (inspected.width, inspected.height)) == (upload.format, upload.size)
