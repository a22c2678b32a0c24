"""What a user may pick (models with weights present, catalogue images), and why a model or
image id may not be picked (`imgclf.web.intake` turns that into the request's field errors)."""

from __future__ import annotations

from dataclasses import dataclass

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.models.registry import MODELS, model_availability

MAX_ID_LENGTH = 255
"""Longer ids are refused before any look-up (no catalogue file or model id is that long)."""


@dataclass(frozen=True)
class Choices:
    models: list[str]
    unavailable_models: dict[str, str]
    images: list[str]

    def model_titles(self) -> dict[str, str]:
        return {model_id: MODELS[model_id].title for model_id in MODELS}

    def model_problem(self, model_id: object) -> str | None:
        """Why `model_id` may not be picked, or None if it may."""
        if not isinstance(model_id, str) or not model_id.strip():
            return "Pick a model."
        if model_id in self.unavailable_models:
            return f"Model {model_id} is not available on this server: {self.unavailable_models[model_id]}."
        if len(model_id) > MAX_ID_LENGTH or model_id not in self.models:
            return f"Unknown model {_shown(model_id)}; pick one of: {', '.join(self.models)}."
        return None

    def image_problem(self, image_id: object) -> str | None:
        """Why `image_id` is not a catalogue image that may be picked, or None if it is."""
        if not isinstance(image_id, str) or not image_id.strip():
            return "Pick an image."
        if len(image_id) > MAX_ID_LENGTH or image_id not in self.images:
            return f"Unknown image {_shown(image_id)}; pick one of the catalogue's (GET /api/v1/images or /info)."
        return None


def current_choices(settings: Settings, catalogue: ImageCatalogue) -> Choices:
    """Read the choices afresh: weights prepared or photos added show up without a restart."""
    availability = model_availability(settings.models, settings.model_dir)
    return Choices(availability.available, availability.unavailable, catalogue.ids())


def _shown(value: str) -> str:
    """A user's id, quoted and cut short, for an error message."""
    return repr(value if len(value) <= 60 else value[:57] + "...")
