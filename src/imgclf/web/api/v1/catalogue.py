"""/api/v1/models and /api/v1/images: what may be picked, for programs and for the page."""

from __future__ import annotations

import io
import math
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from imgclf.errors import UnknownImage
from imgclf.images.decoding import open_rgb
from imgclf.jobs.liveness import model_runtimes
from imgclf.jobs.queue import queue_errors
from imgclf.models.registry import MODELS
from imgclf.web.api.v1.docs import NO_SUCH_IMAGE, PAGE_INVALID, UNREADABLE_IMAGE, problem_responses
from imgclf.web.api.v1.schemas import CatalogueEntry, ImagePage, ModelInfo, ModelList
from imgclf.web.state import ChoicesDep, StateDep

router = APIRouter(prefix="/api/v1", tags=["v1: what may be picked"])

THUMBNAIL_SIDE = 256
THUMBNAILS_KEPT = 512
"""Thumbnails remembered per web process (about 10 KB each)."""


@router.get("/models", response_model=ModelList, responses=problem_responses(503))
async def list_models(state: StateDep, choices: ChoicesDep) -> ModelList:
    """Every configured model: whether it may be picked (or why not) and the runtime the workers use."""
    with queue_errors():
        runtimes = await run_in_threadpool(model_runtimes, state.redis)
    models = [
        ModelInfo(
            id=model_id,
            name=MODELS[model_id].title,
            input_size=MODELS[model_id].input_size,
            runtime=runtimes.get(model_id),
            available=model_id in choices.models,
            reason=choices.unavailable_models.get(model_id),
        )
        for model_id in state.settings.models
    ]
    return ModelList(models=models)


@router.get("/images", response_model=ImagePage, responses=problem_responses(PAGE_INVALID))
def list_images(
    request: Request,
    choices: ChoicesDep,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.", examples=[1])] = 1,
    per_page: Annotated[int, Query(ge=1, le=100, description="Images per page, at most 100.", examples=[20])] = 20,
) -> ImagePage:
    """The image catalogue, a page at a time, with a thumbnail URL for each photo."""
    ids = choices.images
    start = (page - 1) * per_page
    entries = [
        CatalogueEntry(
            id=image_id,
            url=f"/images/{quote(image_id)}",
            thumbnail_url=f"/api/v1/images/{quote(image_id)}/thumbnail",
        )
        for image_id in ids[start : start + per_page]
    ]
    last_page = max(1, math.ceil(len(ids) / per_page))
    following = f"/api/v1/images?page={page + 1}&per_page={per_page}" if page < last_page else None
    return ImagePage(images=entries, page=page, per_page=per_page, total=len(ids), next=following)


@router.get(
    "/images/{image_id}/thumbnail",
    response_class=Response,
    responses={
        200: {
            "description": f"A JPEG of the photo, at most {THUMBNAIL_SIDE} pixels a side.",
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problem_responses(NO_SUCH_IMAGE, UNREADABLE_IMAGE),
    },
)
async def thumbnail(
    image_id: Annotated[str, Path(description="An image id from GET /api/v1/images.", examples=["chelsea.jpg"])],
    state: StateDep,
) -> Response:
    """A small JPEG of one catalogue photo (404 for anything not in the catalogue)."""
    path = state.catalogue.path(image_id)  # the catalogue's listing, never a path join
    try:
        stat = path.stat()
    except FileNotFoundError as exc:  # removed since the catalogue listed it
        raise UnknownImage(image_id) from exc
    data = await run_in_threadpool(_thumbnail, path, stat.st_size, stat.st_mtime_ns, state.settings.max_image_pixels)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=3600"})


@lru_cache(maxsize=THUMBNAILS_KEPT)
def _thumbnail(path: FilePath, size: int, mtime_ns: int, max_pixels: int) -> bytes:
    # size and mtime are part of the key: a photo replaced in the catalogue gets a new thumbnail.
    picture = open_rgb(path, max_pixels, THUMBNAIL_SIDE)
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=80)
    return out.getvalue()
