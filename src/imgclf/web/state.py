"""What routes get from the running app, as `Annotated` dependencies named `XDep`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from imgclf.config import Settings
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.digests import FileDigests
from imgclf.web.choices import Choices, current_choices


@dataclass
class AppState:
    """Built once in the app's lifespan."""

    settings: Settings
    redis: Redis
    redis_async: AsyncRedis
    """For long polls: an asyncio client, so a waiting request holds a socket but no thread."""
    catalogue: ImageCatalogue
    digests: FileDigests
    """SHA-256 of catalogue files for the result cache's key, remembered while they do not change."""
    templates: Jinja2Templates
    metrics_registry: CollectorRegistry
    upload_decodes: asyncio.Semaphore
    """Held while an upload is decoded (settings.upload_decodes at once): bounds the memory."""


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a hand-off that cost more
    # than the lookup itself on every request.
    state: AppState = request.app.state.service
    return state


async def get_choices(state: Annotated[AppState, Depends(get_state)]) -> Choices:
    # async, on the event loop: a few stat calls of the local model and photo folders, cheaper
    # than the thread hand-off FastAPI makes for a plain `def` on every form post and page.
    return current_choices(state.settings, state.catalogue)


StateDep = Annotated[AppState, Depends(get_state)]
ChoicesDep = Annotated[Choices, Depends(get_choices)]
