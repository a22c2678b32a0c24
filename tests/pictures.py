"""Pictures the tests write: PNGs built row by row, never held whole, up to the largest the
service's default limit lets through."""

import struct
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

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


PICTURE_MIB = WORST_SIDE * WORST_SIDE * 4 / 2**20
"""The decoded worst square: 4 bytes a pixel (RGBA), about 153 MiB."""


def unique_jpeg(image_dir: Path) -> bytes:
    """chelsea.jpg with trailing bytes of its own: a photo the cache has never seen."""
    return (image_dir / "chelsea.jpg").read_bytes() + uuid.uuid4().hex.encode()


def write_gradient_png(path: Path, side: int) -> None:
    """An RGB picture of `side` x `side` in a few MB: colour gradients, slow to decode and adjust."""
    across = (np.arange(side) * 255 // side).astype(np.uint8)

    def row(y: int) -> bytes:
        return np.stack([across, np.full(side, y * 255 // side, np.uint8), across[::-1]], axis=-1).tobytes()

    write_png(path, side, side, 8, 2, row)
