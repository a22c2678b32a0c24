"""The photos installed packages ship: an offline catalogue.

scikit-image and matplotlib carry real photos (public domain or free licences) in their wheels, so
a fresh install has a catalogue to classify and workers have photos to check runtimes on, with no
download. `imgclf prepare` and `imgclf serve` write them into the catalogue folder.
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name == "motorcycle":
            return np.asarray(data.stereo_motorcycle()[0])
        return np.asarray(getattr(data, name)())

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(str(path)) as image:
        return np.asarray(image.convert("RGB"))


SAMPLE_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "chelsea.jpg": _skimage("chelsea"),
    "coffee.jpg": _skimage("coffee"),
    "rocket.jpg": _skimage("rocket"),
    "astronaut.jpg": _skimage("astronaut"),
    "camera.jpg": _skimage("camera"),
    "motorcycle.jpg": _skimage("motorcycle"),
    "grace_hopper.jpg": _grace_hopper,
}
"""Photos installed packages ship, by catalogue id: each loads as an RGB (or greyscale) array."""


def sample_photo(image_id: str) -> Image.Image:
    """One of SAMPLE_PHOTOS as a picture, straight from its package (no catalogue needed)."""
    return Image.fromarray(SAMPLE_PHOTOS[image_id]())


def samples_installed() -> bool:
    """True when the packages that carry the photos are installed (`imgclf[export]`): a light
    install (web, worker) serves a catalogue prepared elsewhere."""
    return all(importlib.util.find_spec(package) is not None for package in ("skimage", "matplotlib"))


def install_sample_photos(image_dir: Path) -> list[str]:
    """Write the bundled photos that are missing from the catalogue; return the ids written (none
    when `samples_installed()` is False)."""
    image_dir.mkdir(parents=True, exist_ok=True)
    if not samples_installed():
        return []
    written = []
    for image_id in SAMPLE_PHOTOS:
        target = image_dir / image_id
        if target.exists():
            continue
        encoded = io.BytesIO()
        sample_photo(image_id).save(encoded, format="JPEG", quality=95)
        write_atomically(target, encoded.getvalue())
        written.append(image_id)
    return written


def write_atomically(target: Path, data: bytes) -> None:
    """Write to a hidden temporary file, then rename: the catalogue never lists half a file."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".partial-", delete=False) as file:
        file.write(data)
    Path(file.name).replace(target)
