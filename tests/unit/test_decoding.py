import io
import json
import struct
import subprocess
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from imgclf.errors import ClassificationError
from imgclf.images.decoding import DAMAGED, NOT_AN_IMAGE, open_rgb

LIMIT = 40_000_000
"""IMGCLF_MAX_IMAGE_PIXELS's default."""

WORST_SIDE = 6324
"""6324 x 6324 = 39,992,976 pixels: the largest square the default limit lets through."""


def write_png(
    path: Path, width: int, height: int, bit_depth: int, colour_type: int, row: Callable[[int], bytes]
) -> None:
    """A PNG written row by row, without ever holding the picture: Pillow writes 16-bit channels
    only for greyscale, and would need the whole picture in memory to save it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    compressor = zlib.compressobj(1)
    with path.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header))
        for y in range(height):
            if data := compressor.compress(b"\x00" + row(y)):  # filter type 0: the row as it is
                out.write(chunk(b"IDAT", data))
        out.write(chunk(b"IDAT", compressor.flush()) + chunk(b"IEND", b""))


def write_worst_png(path: Path, width: int = WORST_SIDE, height: int = WORST_SIDE) -> None:
    """16-bit RGBA with partial transparency: 8 bytes a pixel in the file, the most Pillow keeps
    (4 bytes a pixel, RGBA) once decoded, and the compositing on white to do as well."""
    x = np.arange(width)
    rows = []
    for y in range(64):
        pixels = np.empty((width, 4), dtype=">u2")
        pixels[:, 0] = (x % 64) * 1024
        pixels[:, 1] = y * 1024
        pixels[:, 2] = 40_000
        pixels[:, 3] = ((x + y) % 64) * 1024
        rows.append(pixels.tobytes())
    write_png(path, width, height, 16, 6, lambda y: rows[y % 64])


def write_blank_bilevel_png(path: Path, width: int, height: int) -> None:
    """A huge picture in a tiny file: 1 bit a pixel, all black, compresses about 1000 to 1."""
    row = bytes((width + 7) // 8)
    write_png(path, width, height, 1, 0, lambda y: row)


def on_white(image: Image.Image) -> Image.Image:
    """What the service has always made of a picture: upright, transparency laid on white, RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
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


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (60, 20), "red").save(tmp_path / "turned.jpg", exif=exif)
    assert open_rgb(tmp_path / "turned.jpg", max_pixels=10_000).size == (20, 60)


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
        with pytest.raises(ClassificationError) as caught:
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
def test_a_picture_that_needs_no_reduction_decodes_exactly_as_it_always_did(tmp_path: Path, mode: str) -> None:
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
    image = noisy(mode, (3000, 1800))
    image.save(tmp_path / "large.png", **png_options(mode, orientation=6))
    decoded = open_rgb(tmp_path / "large.png", LIMIT, draft_size=300)
    # 1800 // (2 x 300) = 3: both sides stay at least twice 300, the picture is upright.
    assert decoded.mode == "RGB" and decoded.size == (600, 1000)
    with Image.open(tmp_path / "large.png") as whole:
        assert decoded.tobytes() == on_white(whole).reduce(3).tobytes()


WORST_WEBP = """
import sys
import numpy as np
from PIL import Image

side = int(sys.argv[2])
x = np.arange(side)
y = x[:, None]
pixels = np.empty((side, side, 4), np.uint8)
pixels[..., 0], pixels[..., 1], pixels[..., 2], pixels[..., 3] = x % 64 * 4, y % 64 * 4, 160, (x + y) % 64 * 4
Image.fromarray(pixels).save(sys.argv[1], lossless=True, method=0)
"""


@pytest.fixture(scope="module")
def worst_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("worst")
    write_worst_png(folder / "square.png")
    # Too narrow to reduce for a model (399 < 2 x 2 x 256): it stays full size.
    write_worst_png(folder / "panorama.png", 100_250, 399)
    # Written in another process: the picture would otherwise sit in the test process's memory.
    subprocess.run([sys.executable, "-c", WORST_WEBP, str(folder / "square.webp"), str(WORST_SIDE)], check=True)
    return {path.name: path for path in folder.iterdir()}


PEAK_OF_A_DECODE = """
import json, sys
from pathlib import Path
from imgclf.images.decoding import open_rgb

def peak_mib():
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024

before = peak_mib()
image = open_rgb(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) or None)
print(json.dumps({"added_mib": peak_mib() - before, "size": image.size, "mode": image.mode}))
"""

PICTURE_MIB = WORST_SIDE * WORST_SIDE * 4 / 2**20
"""The decoded worst square: 4 bytes a pixel (RGBA), about 153 MiB."""


@pytest.mark.parametrize(
    ("name", "draft_size", "pictures", "size"),
    [
        # As a worker decodes (`draft_size` is the model's resize): reduced 12 times, in bands.
        ("square.png", 256, 1, (527, 527)),
        # As `imgclf classify` decodes: the full-size RGB result is a second picture.
        ("square.png", 0, 2, (WORST_SIDE, WORST_SIDE)),
        ("panorama.png", 256, 2, (100_250, 399)),
        # Pillow's WebP decoder holds two canvases of its own and a copy of the frame while it loads.
        ("square.webp", 256, 4, (527, 527)),
    ],
)
def test_the_worst_allowed_images_decode_within_a_memory_bound(
    worst_images: dict[str, Path], name: str, draft_size: int, pictures: int, size: tuple[int, int]
) -> None:
    # A fresh process, so that its peak memory is this decode's alone. The bound: so many decoded
    # pictures (4 bytes a pixel, about 153 MiB at the default limit) plus 64 MiB. Before the
    # conversions ran in bands, on reduced pictures, the PNGs took 917 MiB and the WebP 1,222.
    result = subprocess.run(
        [sys.executable, "-c", PEAK_OF_A_DECODE, str(worst_images[name]), str(LIMIT), str(draft_size)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    measured = json.loads(result.stdout)
    assert measured["size"] == list(size) and measured["mode"] == "RGB"
    with Image.open(worst_images[name]) as image:
        pixels = image.width * image.height
    assert LIMIT - 100_000 < pixels <= LIMIT
    bound = pictures * pixels * 4 / 2**20 + 64
    print(f"decoding {name} (draft {draft_size}): {measured['added_mib']:.0f} MiB, bound {bound:.0f} MiB")
    assert measured["added_mib"] < bound
