"""Adjustments a person may ask for before a photo is classified: brightness, contrast, colour
(saturation) and sharpness as Pillow's `ImageEnhance` factors, a rotation by quarter turns and a
horizontal flip.

Applied by the worker to the decoded picture, before the model's preprocessing, in one fixed
order: rotate (clockwise), flip (of the rotated picture, as seen), then brightness, contrast,
colour, sharpness. The page's live preview (static/adjust.js) repeats the same steps on a canvas.

A factor is 0 to 2 (1 leaves the picture as it is), kept to two decimals, so that a request and
the result cache agree on what "the same adjustments" means; `key` names them in cache keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from PIL import Image, ImageEnhance

from imgclf.errors import InvalidRequest

FACTORS = ("brightness", "contrast", "color", "sharpness")
"""The `ImageEnhance` factors, in the order they are applied."""

ROTATIONS = (0, 90, 180, 270)
"""Degrees clockwise."""

MIN_FACTOR, MAX_FACTOR = 0.0, 2.0

_ENHANCERS = {
    "brightness": ImageEnhance.Brightness,
    "contrast": ImageEnhance.Contrast,
    "color": ImageEnhance.Color,
    "sharpness": ImageEnhance.Sharpness,
}

_CLOCKWISE = {
    90: Image.Transpose.ROTATE_270,  # Pillow's ROTATE_n turn counter-clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Adjustments:
    brightness: float = 1.0
    contrast: float = 1.0
    color: float = 1.0
    sharpness: float = 1.0
    rotate: int = 0
    """Degrees clockwise: 0, 90, 180 or 270."""
    flip: bool = False
    """Mirror left-right (after the rotation)."""

    @property
    def is_identity(self) -> bool:
        return self == NONE

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """A stable name for these adjustments, for cache keys ("" for none)."""
        if self.is_identity:
            return ""
        factors = ",".join(f"{getattr(self, name):.2f}" for name in FACTORS)
        return f"adj:{factors},{self.rotate},{int(self.flip)}"

    def apply(self, picture: Image.Image) -> Image.Image:
        """The picture (RGB) with these adjustments, in the order of the module's docstring."""
        if self.rotate:
            picture = picture.transpose(_CLOCKWISE[self.rotate])
        if self.flip:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for name in FACTORS:
            factor = getattr(self, name)
            if factor != 1.0:
                picture = _ENHANCERS[name](picture).enhance(factor)
        return picture


NONE = Adjustments()


def parse_adjustments(values: Mapping[str, Any], prefix: str = "") -> Adjustments:
    """Adjustments from request fields (numbers or the strings a form sends); missing ones are the
    defaults. InvalidRequest, one message per wrong field (named `prefix` + field), else."""
    errors: dict[str, str] = {}
    known = {field.name for field in fields(Adjustments)}
    for name in values:
        if name not in known:
            errors[f"{prefix}{name}"] = f"Unknown adjustment; send only: {', '.join(sorted(known))}."
    parsed: dict[str, Any] = {}
    for name in FACTORS:
        raw = values.get(name)
        if raw is None or raw == "":
            continue
        factor = _number(raw)
        if factor is None or not MIN_FACTOR <= factor <= MAX_FACTOR:
            errors[f"{prefix}{name}"] = f"Send a number from {MIN_FACTOR:g} to {MAX_FACTOR:g} (1 leaves it as it is)."
        else:
            parsed[name] = round(factor, 2)
    rotate = values.get("rotate")
    if rotate is not None and rotate != "":
        degrees = _number(rotate)
        if degrees is None or degrees not in ROTATIONS:
            errors[f"{prefix}rotate"] = "Send 0, 90, 180 or 270 (degrees clockwise)."
        else:
            parsed["rotate"] = int(degrees)
    flip = values.get("flip")
    if flip is not None and flip != "":
        if flip in (True, False):
            parsed["flip"] = bool(flip)
        elif isinstance(flip, str) and flip.lower() in ("true", "on", "1", "false", "off", "0"):
            parsed["flip"] = flip.lower() in ("true", "on", "1")
        else:
            errors[f"{prefix}flip"] = "Send true or false."
    if errors:
        raise InvalidRequest(errors)
    return Adjustments(**parsed)


def from_job(raw: object) -> Adjustments:
    """The adjustments a job carries (its third argument; absent for jobs without any)."""
    return parse_adjustments(raw) if isinstance(raw, Mapping) else NONE


def _number(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        number = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
