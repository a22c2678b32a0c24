"""Reading a v1 request's fields from a JSON body or a form (multipart or urlencoded), the same
way for every route that takes both: a JSON body is validated by its pydantic model, a form's
text fields are read by name, at most one file part."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from imgclf.errors import InvalidRequest, MalformedRequest, RequestTooLarge, UnsupportedMediaType
from imgclf.web.state import AppState


async def read_fields(
    request: Request,
    state: AppState,
    body: type[BaseModel],
    names: tuple[str, ...],
    lists: tuple[str, ...] = (),
    how: str = "",
) -> tuple[dict[str, Any], FormData | None]:
    """The request's fields (the caller closes the form). `names`: the form's fields, of which
    `file` is the one file part; `lists`: fields a form may repeat, read as lists; `how`: what to
    send, for the 415 of any other media type."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        raw = await request.body()
        if len(raw) > state.settings.max_form_bytes:
            raise RequestTooLarge(state.settings.max_form_bytes)
        try:
            parsed = body.model_validate_json(raw)
        except ValidationError as exc:
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                raise MalformedRequest("The body is not valid JSON.") from exc
            raise InvalidRequest(
                {".".join(str(part) for part in error["loc"]) or "body": error["msg"] for error in exc.errors()}
            ) from exc
        return parsed.model_dump(), None
    if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=1, max_fields=8 + 16 * len(lists))
        fields: dict[str, Any] = {}
        for name in names:
            values = form.getlist(name)
            if name != "file" and any(isinstance(value, UploadFile) for value in values):
                await form.close()
                raise InvalidRequest({name: f"Send {name} as a text field, not a file."})
            if name in lists:
                fields[name] = [value for value in values if value != ""] or None
            else:
                value = form.get(name)
                fields[name] = value if value != "" else None
        return fields, form
    raise UnsupportedMediaType(how)
