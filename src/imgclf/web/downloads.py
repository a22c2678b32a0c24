"""What a finished classification offers to save: its resource as JSON, its chart as a PNG card
(`imgclf.web.result_card`), and its photo, each with a file name that says what it is.

File names are built from the photo's name (a catalogue id, or the name the client sent), the
model and the job, reduced to letters, digits, `.`, `_` and `-`: never a path, never a quote
that could end the `Content-Disposition` header's value.
"""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image

from imgclf.errors import InvalidImage, UnknownImage
from imgclf.images.adjustments import from_job
from imgclf.images.decoding import open_rgb
from imgclf.jobs import uploads
from imgclf.models.registry import MODELS
from imgclf.web.result_card import render_card
from imgclf.web.state import AppState

DISPLAY_SIDE = 1024
"""The longest side of a photo shown back with its adjustments (as the uploads' display copies)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def disposition(filename: str, download: bool) -> dict[str, str]:
    """The Content-Disposition header: saved under `filename` (`download`), or shown inline."""
    return {"Content-Disposition": f'{"attachment" if download else "inline"}; filename="{filename}"'}


def file_name(job: dict[str, Any], suffix: str, *, with_model: bool = True) -> str:
    """The file name `<photo>-<model>-<first 8 of the job id><suffix>`, e.g. chelsea-efficientnet_lite0-5f0c1e7a.png."""
    parts = [_stem(job["image"])]
    if with_model:
        parts += [_safe(job.get("model") or "model"), job["id"][:8]]
    return "-".join(parts) + suffix


def photo(state: AppState, job: dict[str, Any]) -> Image.Image | None:
    """The photo the job classified, adjusted as it was, at most DISPLAY_SIDE pixels a side; None
    once an upload is no longer stored or a catalogue photo was removed."""
    image = job["image"]
    if "sha256" in image:
        source: Any = uploads.display_copy(state.redis, image["sha256"])
        if source is None:
            return None
    else:
        try:
            source = state.catalogue.path(str(image.get("id")))
        except UnknownImage:
            return None
    try:
        picture = open_rgb(source, state.settings.max_image_pixels, DISPLAY_SIDE)
    except InvalidImage:  # removed or replaced since it was classified: shown as gone
        return None
    picture.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    return from_job(job.get("adjustments")).apply(picture)


def jpeg(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=88)
    return out.getvalue()


def card(state: AppState, job: dict[str, Any]) -> bytes:
    """The PNG card; ValueError if the job has no result."""
    spec = MODELS.get(job.get("model") or "")
    return render_card(job, spec.title if spec else str(job.get("model")), photo(state, job))


def _stem(image: dict[str, Any]) -> str:
    name = str(image.get("filename") or image.get("id") or "photo")
    return _safe(name.rsplit(".", 1)[0] if "." in name[1:] else name) or "photo"


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._-")[:60]
