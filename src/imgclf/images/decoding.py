"""Turning an image file into an RGB picture, with limits, before any model sees it.

Memory: the file's picture is decoded once at full size (at most 4 bytes a pixel in every
Pillow mode, so 160 MB at the default 40-megapixel limit); everything after that works on bands
of rows, so with `draft_size` the decode needs about that one picture and little more. Without
it, or for a picture too narrow to reduce, the full-size RGB result is a second one. WebP is the
exception: while it loads, Pillow's WebP decoder also holds two canvases of its own and a copy
of the frame, about four pictures in all.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from imgclf.errors import InvalidImage

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")
"""The decoders Pillow may try: the catalogue's suffixes, so no other one (e.g. EPS, which runs
Ghostscript) ever sees an uploaded file. The JPEG decoder also reads the multi-picture JPEGs
many cameras write, which Pillow names MPO."""

NOT_AN_IMAGE = (
    "The file could not be decoded as an image: it is not a JPEG, PNG, GIF, BMP, TIFF or WebP image the service reads."
)
DAMAGED = "The file could not be decoded as an image: it is truncated or damaged."
"""The service's own words: Pillow's messages name the server's paths and its internals."""

REDUCING_GAP = 2
"""Other formats are reduced only down to this many times `draft_size`: a box-filter reduction
followed by the model's own resize, as Pillow's `resize(reducing_gap=...)` does, is close to
resizing the whole picture once the gap is 2 or more."""

BAND_PIXELS = 1 << 20
"""Pixels converted at a time after the decode: a few MB per step instead of full-size copies."""

WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""Greyscale modes with more than 8 bits a sample, which `to_rgb` scales to 8 bits: Pillow's own
conversion clips them at 255, so a 16-bit PNG or TIFF would turn almost white. "I" (32-bit) is
read on the same 0..65535 scale: Pillow has decoded 16-bit greyscale into it; a rare 32-bit TIFF
is clipped above that."""

WHITE = (255, 255, 255, 255)
"""Transparent pixels are laid on white: how a plain web page, and most viewers, show them."""

ROTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation -> the transpose that shows the picture upright (as ImageOps.exif_transpose)."""

DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, zlib.error)
"""What Pillow's decoders raise on broken data; its messages are not the user's business."""

_pillow_limit = threading.Lock()


def open_rgb(source: Path | bytes, max_pixels: int, draft_size: int | None = None) -> Image.Image:
    """Decode `source` (a file, or an upload's bytes) into an upright RGB image: EXIF rotation
    applied, colours by `to_rgb`.

    With `draft_size` (the model resizes the picture's shorter side to about that anyway) a
    JPEG is decoded directly at 1/2, 1/4 or 1/8 scale, keeping both sides at least `draft_size`
    pixels: an order of magnitude faster for a 12-megapixel photo. Other formats are decoded
    whole and then shrunk by an integer factor that keeps both sides at least REDUCING_GAP x
    `draft_size`, band by band while they are converted; a picture too small for that is left
    as it is.
    Raises InvalidImage, with a message for the user, for files that are not images,
    are truncated or have more than `max_pixels` pixels (checked from the header, before decoding).
    """
    try:
        file: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")
    except FileNotFoundError as exc:
        raise InvalidImage("The image file is no longer in the catalogue.") from exc
    except OSError as exc:
        raise InvalidImage("The image file could not be read on the server.") from exc
    with file:
        image, over_pillows_limit = open_header(file)
        check_size(image.size, max_pixels)
        jpeg = image.format in ("JPEG", "MPO")
        if draft_size and jpeg:
            image.draft("RGB", (draft_size, draft_size))
        try:
            # TIFF checks Pillow's limit again while it decodes.
            with pillow_limit_off() if over_pillows_limit else pillow_warnings_off():
                image.load()
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        except Image.DecompressionBombError as exc:  # a GIF frame larger than the picture's header
            raise InvalidImage(f"The image is larger than the limit of {max_pixels:,} pixels.") from exc
        except DECODE_ERRORS as exc:
            raise InvalidImage(DAMAGED) from exc
        # A JPEG keeps exactly the scale its draft chose: at worst 1/8, already 1/64 of the pixels.
        factor = max(1, min(image.size) // (REDUCING_GAP * draft_size)) if draft_size and not jpeg else 1
        try:
            picture = convert_in_bands(image, factor)
        except ValueError as exc:  # a colour mode Pillow cannot convert
            raise InvalidImage(NOT_AN_IMAGE) from exc
    # The decoded picture is released before the transpose makes its copy of the result.
    del image
    rotation = ROTATIONS.get(orientation)
    return picture.transpose(rotation) if rotation is not None else picture


def open_header(file: IO[bytes]) -> tuple[ImageFile.ImageFile, bool]:
    """Read the header only (its size is checked before any pixel is decoded); True if the
    picture is over Pillow's own limit."""
    try:
        try:
            with pillow_warnings_off():
                return Image.open(file, formats=FORMATS), False
        except Image.DecompressionBombError:
            # Past twice its own limit Pillow refuses inside Image.open, before our check can run:
            # its message would replace ours and its limit would cap a larger
            # IMGCLF_MAX_IMAGE_PIXELS. The header is read again with Pillow's check off, so that
            # only ours applies.
            with pillow_limit_off():
                return Image.open(file, formats=FORMATS), True
    except UnidentifiedImageError as exc:
        raise InvalidImage(NOT_AN_IMAGE) from exc
    except DECODE_ERRORS as exc:
        raise InvalidImage(DAMAGED) from exc


@contextmanager
def pillow_warnings_off() -> Iterator[None]:
    # Pillow warns past its own limit (89 megapixels); ours is checked from the header, so the
    # warning would only be noise in the worker's log.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


@contextmanager
def pillow_limit_off() -> Iterator[None]:
    # Pillow's limit is a module global with no per-call override. Raising it for good would
    # silently change every other Pillow user in the process; re-implementing Image.open's choice
    # of decoder to read the size without the check would drift from Pillow's. So it is lifted
    # only for files Pillow refused, and only while their header is read (and, for the rare one
    # within a raised IMGCLF_MAX_IMAGE_PIXELS, decoded); the lock keeps two of these from
    # restoring each other's value.
    with _pillow_limit:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise InvalidImage(f"The image is {width} x {height} pixels; the limit is {max_pixels:,} pixels.")


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` in RGB, the one conversion: transparency laid on white, 16-bit greyscale scaled to
    8 bits, CMYK and every other mode converted by Pillow (by formula: colour profiles are not read).

    The decoder runs it on bands of rows, `Classifier.preprocess` on pictures handed in whole.
    EXIF orientation is the decoder's part (`open_rgb`): an in-memory picture has no file to read
    it from. An RGB picture with no transparency is returned as it is. Raises ValueError for a
    mode Pillow cannot convert.
    """
    if image.mode in WIDE_GREY:
        image = _grey_to_8_bits(image)
    if image.has_transparency_data:  # an alpha band, an alpha palette, or a transparent colour
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _grey_to_8_bits(image: Image.Image) -> Image.Image:
    """A WIDE_GREY picture as "L", or "LA" when the file names one grey value transparent."""
    samples = np.asarray(image)
    # round(value / 257): 0 -> 0 and 65535 -> 255, the inverse of how 8-bit greys widen to 16 bits.
    scaled = (np.clip(samples, 0, 65535).astype(np.uint32) * 255 + 32767) // 65535
    grey = Image.fromarray(scaled.astype(np.uint8))
    transparent = image.info.get("transparency")
    if not isinstance(transparent, int):
        return grey
    # Pillow's own LA/RGBA conversion of these modes ignores that value; it is a 16-bit sample.
    alpha = Image.fromarray(np.where(samples == transparent, 0, 255).astype(np.uint8))
    return Image.merge("LA", (grey, alpha))


def convert_in_bands(image: Image.Image, factor: int) -> Image.Image:
    """`to_rgb(image)` reduced `factor` times, one band of rows at a time.

    Each band goes through exactly the per-pixel steps the whole image would, and band heights
    are multiples of `factor`, so the result equals converting the whole image and reducing it.
    """
    if factor == 1 and image.mode == "RGB" and not image.has_transparency_data:
        return image  # to_rgb would return it as it is
    width, height = image.size
    rows = max(factor, BAND_PIXELS // width // factor * factor)
    if rows >= height:
        whole = to_rgb(image)
        return whole.reduce(factor) if factor > 1 else whole
    result = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for top in range(0, height, rows):
        band = to_rgb(image.crop((0, top, width, min(top + rows, height))))
        result.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    return result
