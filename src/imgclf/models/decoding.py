"""Turning an image file into an RGB picture, with limits, before any model sees it."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from imgclf.errors import ClassificationError


def open_rgb(path: Path, max_pixels: int, draft_size: int | None = None) -> Image.Image:
    """Decode `path` into an RGB image: EXIF rotation applied, transparency laid on white.

    With `draft_size`, a JPEG is decoded directly at a reduced scale (1/2, 1/4 or 1/8) that keeps
    both sides at least `draft_size` pixels: the model resizes it to about that anyway, and
    decoding a 12-megapixel photo at 1/8 scale is an order of magnitude faster.
    Raises ClassificationError for files that are not images, are truncated or too large.
    """
    try:
        with Image.open(path) as image:
            pixels = image.width * image.height
            if pixels > max_pixels:
                raise ClassificationError(
                    f"The image is {image.width} x {image.height} pixels; the limit is {max_pixels:,} pixels."
                )
            if draft_size and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            # Pillow warns (and past twice its own limit, raises) on huge images; our limit is
            # already checked above, so its warning is noise here.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
            upright = ImageOps.exif_transpose(image) or image
            return _to_rgb(upright)
    except ClassificationError:
        raise
    except FileNotFoundError as exc:
        raise ClassificationError("The image file is no longer in the catalogue.") from exc
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise ClassificationError(f"The file could not be decoded as an image: {exc}") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
