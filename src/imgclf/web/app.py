"""The web process: `create_app(settings)` builds the FastAPI app. It never imports torch."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_fastapi_instrumentator import Instrumentator
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from imgclf import __version__
from imgclf.config import Settings
from imgclf.errors import InvalidRequest, ServiceError
from imgclf.images.catalogue import ImageCatalogue
from imgclf.images.digests import FileDigests
from imgclf.jobs.metrics import ServiceCollector
from imgclf.jobs.status import API_MAX_WAIT_SECONDS, MAX_LONG_POLLS, MAX_WAIT_SECONDS
from imgclf.web.api.lesson import router as api_router
from imgclf.web.api.operations import router as operations_router
from imgclf.web.api.v1.catalogue import router as v1_catalogue
from imgclf.web.api.v1.classifications import router as v1_classifications
from imgclf.web.api.v1.comparisons import router as v1_comparisons
from imgclf.web.api.v1.docs import complete_openapi
from imgclf.web.error_response import error_response, is_api_v1, plain_error
from imgclf.web.middleware.body_limits import BodyLimitMiddleware
from imgclf.web.middleware.head import HeadMiddleware
from imgclf.web.middleware.security_headers import SecurityHeadersMiddleware
from imgclf.web.middleware.unhandled import UnhandledErrorMiddleware
from imgclf.web.pages.comparison_pages import router as comparison_pages
from imgclf.web.pages.routes import router as web_router
from imgclf.web.state import AppState

PAGES_DIR = Path(__file__).parent / "pages"
SWAGGER_DIR = "/static/vendor/swagger-ui"

log = logging.getLogger(__name__)


def page_templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=PAGES_DIR / "templates")
    templates.env.globals["api_docs_public"] = settings.api_docs_public  # the pages' header link
    return templates


def create_app(settings: Settings) -> FastAPI:
    """The web app for one settings object; Redis is connected in the lifespan."""
    redis_url = settings.required_redis_url()

    # One registry per app (not prometheus_client's global one), so that several apps, as in
    # the tests, do not register the same metrics twice.
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    app = FastAPI(
        title="Image classification service",
        version=__version__,
        description=(
            "Pick a pretrained ImageNet model and an image, get a job id at once, poll it for the top-5 classes."
        ),
        lifespan=functools.partial(_lifespan, settings, redis_url, registry),
        docs_url=None,
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=PAGES_DIR / "static"), name="static")
    app.include_router(web_router)
    app.include_router(comparison_pages)
    app.include_router(api_router)
    app.include_router(v1_classifications)
    app.include_router(v1_comparisons)
    app.include_router(v1_catalogue)
    app.include_router(operations_router)
    Instrumentator(
        registry=registry,
        excluded_handlers=["/metrics", "/healthz", "/readyz", "/static/.*"],
    ).instrument(app)
    _add_docs(app)
    _complete_openapi(app)
    _add_error_handler(app, settings)
    _add_edge_middleware(app, settings)
    return app


@asynccontextmanager
async def _lifespan(
    settings: Settings, redis_url: str, registry: CollectorRegistry, app: FastAPI
) -> AsyncIterator[None]:
    """Connect Redis and build the app's state at start; close both at the end."""
    redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    redis_async = AsyncRedis.from_url(
        redis_url,
        socket_connect_timeout=2,
        socket_timeout=max(MAX_WAIT_SECONDS, API_MAX_WAIT_SECONDS) + 5,
        max_connections=MAX_LONG_POLLS,
    )
    collector = ServiceCollector(redis)
    registry.register(collector)
    app.state.service = AppState(
        settings=settings,
        redis=redis,
        redis_async=redis_async,
        catalogue=ImageCatalogue(settings.image_dir),
        digests=FileDigests(),
        templates=page_templates(settings),
        metrics_registry=registry,
        upload_decodes=asyncio.Semaphore(settings.upload_decodes),
    )
    try:
        yield
    finally:
        registry.unregister(collector)
        redis.close()
        await redis_async.aclose()


def _add_docs(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        # The Swagger UI files are vendored under static/, so /docs works with no internet.
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{SWAGGER_DIR}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_DIR}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_DIR}/favicon-32x32.png",
        )


def _complete_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")
"""The methods a 405's Allow header may name (HEAD follows GET; see HeadMiddleware)."""


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route answers on this request's path, sorted, HEAD wherever GET is.

    Starlette's 405 names only the methods of the first route whose path matched (measured:
    `DELETE /classifications` said `Allow: GET`, though the form posts there too). Each method is
    tried against the whole router, as a request with that method would be.
    """
    # Matched from the app's root: inside a mount (the static files) the scope's root_path is the mount's.
    scope = {**scope, "root_path": scope.get("app_root_path", scope.get("root_path", ""))}
    methods = {method for method in METHODS if any(_answers(route, scope, method) for route in app.router.routes)}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _answers(route: BaseRoute, scope: Scope, method: str) -> bool:
    if isinstance(route, Mount):  # the static files, which answer GET (and HEAD) only
        return method == "GET" and route.matches(scope)[0] == Match.FULL
    return route.matches({**scope, "method": method})[0] == Match.FULL


def _add_error_handler(app: FastAPI, settings: Settings) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        if exc.status_code >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc, path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"Nothing at {path}; the pages start at /"
            detail += " and the API is described at /docs." if settings.api_docs_public else "."
            return plain_error(404, detail, path=path, slug="no-such-route")
        if exc.status_code == 405:
            allowed = ", ".join(allowed_methods(app, request.scope))
            detail = f"{request.method} is not allowed on {path}; it answers {allowed}."
            return plain_error(405, detail, path=path, Allow=allowed)
        if is_api_v1(path):
            return plain_error(exc.status_code, str(exc.detail), path=path)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own answer echoes the input, which for an upload part is its file name, its
        # headers and the parser's internals: keep where and what, drop what was sent.
        errors = [
            {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
            for error in exc.errors()
        ]
        if is_api_v1(request.url.path):
            return error_response(InvalidRequest(_field_errors(errors)), path=request.url.path)
        return JSONResponse({"detail": errors}, status_code=422)


def _field_errors(errors: list[dict[str, Any]]) -> dict[str, str]:
    # ("query", "wait") -> "wait"; ("body", "model") -> "model": the name a client sent.
    fields: dict[str, str] = {}
    for error in errors:
        location = [str(part) for part in error["loc"][1:]] or [str(part) for part in error["loc"]]
        fields.setdefault(".".join(location) or "request", error["msg"])
    return fields


def _add_edge_middleware(app: FastAPI, settings: Settings) -> None:
    """Pure ASGI layers around the routes; the last added is the outermost.

    Outermost to innermost: security headers (on every answer below), the JSON 500 for any
    unhandled exception, the Host check (only when `allowed_hosts` is not `*`), HEAD as GET,
    and the body limits, which answer 413/408 before a route reads a body it would refuse.
    """
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(HeadMiddleware)
    if "*" not in settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
