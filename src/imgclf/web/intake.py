"""From a request's fields to an order the queue takes: the one check of a classification
request, shared by the page's form and POST /api/v1/classifications.

A request names a model and either a catalogue photo or an uploaded file (exactly one). An
upload is read whole (the body limit has bounded it already), its type decided from its bytes,
its pixels counted from its header and its picture decoded once, off the event loop, by
`imgclf.images.uploads.inspect_upload`, at most `settings.upload_decodes` at a time (a decoded
picture is up to 160 MB): what is refused here never reaches the queue or the store.
The client's file name is kept as data only (shown back, never a path), cut to 255 characters.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from imgclf.errors import InvalidRequest
from imgclf.images.adjustments import NONE, Adjustments, parse_adjustments
from imgclf.images.uploads import inspect_upload
from imgclf.jobs.queue import CLASSIFY_UPLOAD_TASK
from imgclf.jobs.submit import Order, Upload, catalogue_order
from imgclf.jobs.uploads import UploadedPhoto, as_meta
from imgclf.jobs.webhooks import CallbackRefused, check_callback_url
from imgclf.web.choices import Choices
from imgclf.web.state import AppState

MAX_FILENAME = 255


@dataclass(frozen=True)
class FieldNames:
    """How a surface names its fields in error messages (the form's `model_id`, the API's `model`)."""

    model: str
    image: str
    file: str = "file"
    for_people: bool = False
    """The form speaks to a person picking from a page; the API names the fields a program sends."""
    adjustments: str = "adjustments."
    """Prefix of the adjustments' field names: the API nests them in one object, the form does not."""

    def no_model(self) -> str:
        return "Pick a model." if self.for_people else f"Send {self.model}: a model id."

    def both_images(self) -> str:
        if self.for_people:
            return "Pick a photo from the catalogue or upload one of your own, not both."
        return f"Send either {self.image} (a catalogue image id) or {self.file} (an upload), not both."

    def no_image(self) -> str:
        if self.for_people:
            return "Pick a photo from the catalogue, or upload one of your own."
        return f"Send {self.image} (a catalogue image id) or {self.file} (an image file to upload)."


async def read_order(
    state: AppState,
    choices: Choices,
    names: FieldNames,
    model_id: object,
    image_id: object,
    file: object,
    callback_url: str | None = None,
    adjustments: object = None,
) -> tuple[Order, Upload | None]:
    """The order for these fields, with the upload to keep if one was sent. InvalidRequest per
    field; UnsupportedImage, ImageTooLarge or InvalidImage for an upload that is not a usable image.

    `adjustments`: a mapping of the adjustments' fields, or (a multipart API request) one JSON
    object as text, or None."""
    errors: dict[str, str] = {}
    asked = NONE
    try:
        asked = _adjustments(adjustments, names.adjustments)
    except InvalidRequest as exc:
        errors.update(exc.field_errors)
    model_error = choices.model_problem(model_id)
    if model_error:
        errors[names.model] = model_error.replace("Pick a model.", names.no_model())
    has_image = isinstance(image_id, str) and image_id != ""
    has_file = isinstance(file, UploadFile) and bool(file.filename or file.size)
    if has_image and has_file:
        errors[names.file] = names.both_images()
    elif not has_image and not has_file:
        errors[names.image] = names.no_image()
    elif has_image:
        image_error = choices.image_problem(image_id)
        if image_error:
            errors[names.image] = image_error
    if isinstance(file, str) and file:  # a text field named "file": not an upload
        errors[names.file] = f"Send {names.file} as a file part of a multipart/form-data body."
    if callback_url is not None:
        try:
            # Off the event loop: the check resolves the host, and a slow DNS would stall every request.
            callback_url = await run_in_threadpool(check_callback_url, callback_url, state.settings.webhook_hosts)
        except CallbackRefused as exc:
            errors["callback_url"] = str(exc)
    if errors:
        raise InvalidRequest(errors)
    assert isinstance(model_id, str)
    if has_image:
        assert isinstance(image_id, str)
        order = await _catalogue_order(state, model_id, image_id)
        return replace(order, callback_url=callback_url, adjustments=asked), None
    assert isinstance(file, UploadFile)
    data = await file.read()
    async with state.upload_decodes:
        inspected = await run_in_threadpool(inspect_upload, data, state.settings.max_image_pixels)
    photo = UploadedPhoto(inspected.sha256, inspected.format, inspected.width, inspected.height, _filename(file))
    order = Order(
        model_id, CLASSIFY_UPLOAD_TASK, inspected.sha256, inspected.sha256, as_meta(photo), callback_url, asked
    )
    return order, Upload(photo, data, inspected.display)


async def _catalogue_order(state: AppState, model_id: str, image_id: str) -> Order:
    path = state.catalogue.path(image_id)
    if state.digests.remembers(path):  # the usual case: no file to read, no thread needed
        return catalogue_order(state.digests, model_id, image_id, path)
    return await run_in_threadpool(catalogue_order, state.digests, model_id, image_id, path)


def read_models(choices: Choices, raw: object, field: str) -> list[str]:
    """The models a comparison asks for, in the order sent, each once; all that may be picked when
    none are named. InvalidRequest (naming `field`) for an unknown or unavailable one."""
    if raw is None or raw == []:
        if not choices.models:
            raise InvalidRequest({field: "No model is available on this server (run `imgclf prepare`)."})
        return list(choices.models)
    if not isinstance(raw, list) or not all(isinstance(model_id, str) for model_id in raw):
        raise InvalidRequest({field: "Send a list of model ids."})
    problems = [problem for model_id in raw if (problem := choices.model_problem(model_id))]
    if problems:
        raise InvalidRequest({field: problems[0]})
    return list(dict.fromkeys(raw))


def _adjustments(raw: object, prefix: str) -> Adjustments:
    if raw is None or raw == "":
        return NONE
    if isinstance(raw, str):  # multipart: one field of JSON text
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            raise InvalidRequest({prefix.rstrip("."): 'Send a JSON object, e.g. {"brightness": 1.2, "rotate": 90}.'})
    if not isinstance(raw, Mapping):
        raise InvalidRequest({prefix.rstrip("."): "Send an object of adjustments."})
    return parse_adjustments(raw, prefix)


def _filename(file: UploadFile) -> str | None:
    """The client's name for the file, as data: control characters dropped, at most 255 characters."""
    if not file.filename:
        return None
    name = "".join(char for char in file.filename if unicodedata.category(char)[0] != "C")
    return name[:MAX_FILENAME] or None
