"""Uploads a photo service meets in the wild, good and bad, each built in code (no files checked in),
with what the service answers for it."""

import io
import math
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from imgclf.images.samples import sample_photo
from tests.pictures import write_blank_bilevel_png, write_worst_png

ACCEPTED_TYPES = "JPEG, PNG, WebP, GIF, BMP or TIFF"
"""What a 415 names: the types the service does accept."""


@dataclass(frozen=True)
class Upload:
    name: str
    """A file name a user might send (never what decides the answer)."""
    data: bytes
    status: int
    """What the service answers: 415, 413, 422, or 202 for the ones it accepts."""
    message: str | None
    """A fragment the error message contains (None for accepted ones)."""
    too_big_for_transfer: bool = False
    """Refused by the web layer's body limit before the bytes are inspected at all."""
    format: str | None = None
    """For a valid picture: the type its bytes say ("jpeg", "png", ...)."""
    size: tuple[int, int] | None = None
    """For a valid picture: its full-resolution size, upright."""


def corpus(max_pixels: int = 40_000_000, max_bytes: int = 10 * 1024 * 1024) -> list[Upload]:
    """The corpus, for the service's `max_pixels` and upload body limit `max_bytes`."""
    large = _encoded(sample_photo("astronaut.jpg").resize((2560, 2560)), "JPEG", quality=90)
    upright, rotated = upright_and_rotated()
    bomb_side = max(20_000, math.isqrt(max_pixels) + 1)
    frame_side = min(math.isqrt(max_pixels) + 1, 0xFFFF)
    return [
        Upload("empty.jpg", b"", 415, "empty"),
        Upload("one-byte.png", b"\x89", 415, ACCEPTED_TYPES),
        Upload("text.jpg", b"This is a note, not a picture.\n", 415, ACCEPTED_TYPES),
        Upload(
            "page.html",
            b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n",
            415,
            ACCEPTED_TYPES,
        ),
        Upload("drawing.svg", _SVG, 415, ACCEPTED_TYPES),
        # A PDF that embeds a JPEG: the JPEG inside must not make the file one.
        Upload("document.pdf", _encoded(Image.new("RGB", (200, 100), "white"), "PDF"), 415, ACCEPTED_TYPES),
        # Pillow reads it, but it is not an accepted type.
        Upload("picture.ppm", _encoded(Image.new("RGB", (20, 10), "red"), "PPM"), 415, ACCEPTED_TYPES),
        Upload("truncated.jpg", large[: len(large) * 2 // 3], 422, "truncated or damaged"),
        Upload("truncated.png", _encoded(sample_photo("coffee.jpg"), "PNG")[:-5000], 422, "truncated or damaged"),
        Upload("bomb.png", _bilevel_png(bomb_side), 413, f"the limit is {max_pixels:,} pixels"),
        Upload("outgrown.gif", _gif_frame_outgrowing_screen(frame_side), 413, f"{frame_side} x {frame_side} pixels"),
        # A real GIF whose bytes are also a script: accepted, since only its re-encoded copy is
        # ever shown, so the script never reaches a browser as the file it came in.
        Upload("polyglot.gif", _gif_script_polyglot(), 202, None, format="gif", size=(_POLYGLOT_WIDTH, 16)),
        Upload("large.jpg", large, 202, None, format="jpeg", size=(2560, 2560)),
        Upload("rgba16.png", _rgba16_png(), 202, None, format="png", size=(300, 200)),
        Upload(
            "cmyk.jpg",
            _encoded(sample_photo("coffee.jpg").convert("CMYK"), "JPEG"),
            202,
            None,
            format="jpeg",
            size=(600, 400),
        ),
        Upload("animated.gif", _animated_gif(), 202, None, format="gif", size=(120, 80)),
        Upload("upright.jpg", upright, 202, None, format="jpeg", size=(451, 300)),
        Upload("rotated.jpg", rotated, 202, None, format="jpeg", size=(451, 300)),
        Upload("phone.jpg", _with_metadata(), 202, None, format="jpeg", size=(600, 400)),
        # Named as a PNG, but the bytes are WebP: the bytes decide.
        Upload(
            "screenshot.png", _encoded(sample_photo("chelsea.jpg"), "WEBP"), 202, None, format="webp", size=(451, 300)
        ),
        Upload(
            "too-big.png",
            _noise_png_over(max_bytes),
            413,
            "larger than this route accepts",
            too_big_for_transfer=True,
            format="png",
            size=(_noise_side(max_bytes),) * 2,
        ),
    ]


def upright_and_rotated() -> tuple[bytes, bytes]:
    """The same photo as two JPEGs: stored upright, and stored sideways with an EXIF orientation
    (6: turn a quarter clockwise) that makes viewers, and the service, show it upright."""
    photo = sample_photo("chelsea.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = photo.transpose(Image.Transpose.ROTATE_90)  # a quarter anticlockwise, undone by 6
    return _encoded(photo, "JPEG", quality=95), _encoded(sideways, "JPEG", quality=95, exif=exif)


GPS_PLACE = "Greenwich"
"""Written into phone.jpg's metadata (EXIF GPS area, comment, XMP): none of it may reach the copy."""

_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<rect width="100" height="100" fill="red"/><script>alert(document.cookie)</script></svg>\n'
)

_POLYGLOT_WIDTH = int.from_bytes(b"/*", "little")
"""10799: a GIF this wide starts "GIF89a/*", a script that opens a comment after a name."""


def _encoded(image: Image.Image, format: str, **options: object) -> bytes:
    encoded = io.BytesIO()
    image.save(encoded, format=format, **options)
    return encoded.getvalue()


def _gif_script_polyglot() -> bytes:
    """A GIF that is also the script `GIF89a = 1; alert("polyglot");`."""
    stripes = np.where(np.arange(_POLYGLOT_WIDTH) % 200 < 100, 40, 220).astype(np.uint8)
    # A comment makes Pillow write GIF89a rather than GIF87a.
    gif = _encoded(Image.fromarray(np.tile(stripes, (16, 1))), "GIF", comment=b"x")
    assert gif.startswith(b"GIF89a/*") and b"*/" not in gif
    # Readers stop at the GIF trailer; the script closes its comment after it.
    return gif + b'*/=1;alert("polyglot");\n'


def _gif_frame_outgrowing_screen(side: int) -> bytes:
    """A GIF whose header says 10 x 10 but whose frame is `side` pixels square (no pixel data
    follows: its size alone must refuse it)."""
    screen = struct.pack("<HHBBB", 10, 10, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"  # two colours
    frame = b"," + struct.pack("<HHHHB", 0, 0, side, side, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + frame + b";"


def _animated_gif() -> bytes:
    """Three frames, red first."""
    frames = [Image.new("RGB", (120, 80), colour) for colour in ("red", "lime", "blue")]
    return _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _with_metadata() -> bytes:
    """A phone's photo: GPS position in EXIF, an ICC profile, a comment and XMP."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 28.0, 40.0), 3: "W", 4: (0.0, 0.0, 5.0), 28: GPS_PLACE}
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description City="{GPS_PLACE}"/></x:xmpmeta>'.encode()
    return _encoded(sample_photo("coffee.jpg"), "JPEG", exif=exif, icc_profile=profile, comment=GPS_PLACE, xmp=xmp)


def _rgba16_png() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rgba16.png"
        write_worst_png(path, 300, 200)
        return path.read_bytes()


def _bilevel_png(side: int) -> bytes:
    """A decompression bomb: side x side pixels in a file of tens of KB."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bomb.png"
        write_blank_bilevel_png(path, side, side)
        return path.read_bytes()


def _noise_side(max_bytes: int) -> int:
    return math.isqrt(max_bytes // 3) + 1


def _noise_png_over(max_bytes: int) -> bytes:
    """A valid RGB PNG just over `max_bytes`: noise, stored uncompressed."""
    side = _noise_side(max_bytes)
    noise = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    data = _encoded(Image.fromarray(noise), "PNG", compress_level=0)
    assert len(data) > max_bytes
    return data
