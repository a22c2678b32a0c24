"""An uploaded file's bytes, inspected at the edge: what it is (from its bytes only, never its name
or Content-Type), how big, and a re-encoded copy safe to show back to the person who sent it.

Memory: the picture is decoded once (a JPEG directly at reduced scale), then converted band by band
into a copy already shrunk to under twice DISPLAY_MAX_SIDE a side (about 12 MB at most), so the
decoded picture plus that small copy is all an upload costs (WebP's decoder holds more while it
loads: see decoding.py).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageFile

from imgclf.errors import ImageTooLarge, InvalidImage, UnsupportedImage
from imgclf.images import decoding

UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""The accepted types, as Pillow names what it identifies from the bytes (MPO counts as JPEG)."""

DISPLAY_MAX_SIDE = 1024
"""Largest side, in pixels, of the re-encoded copy shown back to the user."""

DISPLAY_QUALITY = 85
"""JPEG quality of that copy: a photo on a page, not an archive."""

SIDEWAYS = (5, 6, 7, 8)
"""EXIF orientations stored a quarter turn from upright: the picture's width is the file's height."""

EMPTY = "The uploaded file is empty."
UNSUPPORTED = "The file is not an image the service accepts: upload a JPEG, PNG, WebP, GIF, BMP or TIFF image."


@dataclass(frozen=True)
class InspectedUpload:
    """What an accepted upload is, and the copy of it the service shows."""

    sha256: str
    """Hex digest of the original bytes."""
    format: str
    """"jpeg", "png", "webp", "gif", "bmp" or "tiff"."""
    width: int
    """Full-resolution size, upright (after EXIF orientation)."""
    height: int
    display: bytes
    """A JPEG of the upright RGB picture, at most DISPLAY_MAX_SIDE a side, with no metadata."""


def inspect_upload(data: bytes, max_pixels: int) -> InspectedUpload:
    """Identify, bound and fully decode `data`; re-encode it for display.

    Raises UnsupportedImage (415) for bytes that are not an accepted image type, ImageTooLarge (413)
    for more than `max_pixels` pixels (read from the header, before decoding), and InvalidImage (422)
    for an accepted type that is truncated or damaged.
    """
    if not data:
        raise UnsupportedImage(EMPTY)
    image, over_pillows_limit = _open_bounded(data, max_pixels)
    kind = "JPEG" if image.format == "MPO" else image.format
    if kind not in UPLOAD_FORMATS:
        raise UnsupportedImage(UNSUPPORTED)
    width, height = image.size  # the header's: a JPEG's draft below decodes it smaller
    if kind == "JPEG":
        # libjpeg scales while it decodes, yet still reads every byte: truncation is still caught.
        image.draft("RGB", (DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE))
    try:
        # TIFF checks Pillow's limit again while it decodes.
        with decoding.pillow_limit_off() if over_pillows_limit else decoding.pillow_warnings_off():
            image.load()  # the whole file, so that a truncated one fails here
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Image.DecompressionBombError as exc:  # a GIF frame larger than the picture's header
        raise ImageTooLarge(f"The image is larger than the limit of {max_pixels:,} pixels.") from exc
    except decoding.DECODE_ERRORS as exc:
        raise InvalidImage(decoding.DAMAGED) from exc
    if orientation in SIDEWAYS:
        width, height = height, width
    picture = _reduced_rgb(image)
    del image  # the full-size decode, released before the small copies are made
    display = _display_jpeg(picture, orientation)
    return InspectedUpload(
        sha256=hashlib.sha256(data).hexdigest(),
        format=kind.lower(),
        width=width,
        height=height,
        display=display,
    )


def _open_bounded(data: bytes, max_pixels: int) -> tuple[ImageFile.ImageFile, bool]:
    """`decoding.open_header`, with an upload's statuses: bytes no accepted decoder identifies are
    415, not the catalogue's 422; too many pixels is 413."""
    try:
        image, over_pillows_limit = decoding.open_header(io.BytesIO(data))
    except InvalidImage as exc:
        if exc.message == decoding.NOT_AN_IMAGE:
            raise UnsupportedImage(UNSUPPORTED) from exc
        raise
    try:
        decoding.check_size(image.size, max_pixels)
    except InvalidImage as exc:
        raise ImageTooLarge(exc.message) from exc
    return image, over_pillows_limit


def _reduced_rgb(image: Image.Image) -> Image.Image:
    """The decoded `image` in RGB, reduced by a whole factor to no less than DISPLAY_MAX_SIDE a side."""
    # Reduced while converted, so the full-size RGB copy is never made; the thumbnail's filter
    # then works from under twice the final size.
    try:
        return decoding.convert_in_bands(image, max(1, max(image.size) // DISPLAY_MAX_SIDE))
    except ValueError as exc:  # a colour mode Pillow cannot convert
        raise InvalidImage(decoding.NOT_AN_IMAGE) from exc


def _display_jpeg(picture: Image.Image, orientation: int) -> bytes:
    """`picture` upright, fitted to DISPLAY_MAX_SIDE, as a JPEG with no metadata."""
    picture.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE))
    rotation = decoding.ROTATIONS.get(orientation)
    if rotation is not None:
        picture = picture.transpose(rotation)
    # Pillow's copies carry the upload's info along, and its JPEG writer takes the comment (which
    # may name a person or a place) from there; EXIF, GPS and ICC are written only if passed in.
    picture.info = {}
    encoded = io.BytesIO()
    picture.save(encoded, format="JPEG", quality=DISPLAY_QUALITY)
    return encoded.getvalue()
