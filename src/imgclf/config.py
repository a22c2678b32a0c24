"""The service's settings: one class, read from `IMGCLF_*` environment variables.

Every process (web, worker, `serve`) builds one `Settings` at start-up and passes it on;
nothing reads the environment at import time, so tests build `Settings(...)` directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from imgclf.models.registry import MODEL_IDS

IMAGENET_SAMPLES_URL = "https://github.com/EliSchwartz/imagenet-sample-images/archive/master.zip"
"""The ImageNet sample-image set the lesson downloads: one photo per class, about 1000 JPEGs."""


class MissingRedisUrl(ValueError):
    """A process that needs Redis has no URL for it: IMGCLF_REDIS_URL unset, or its password file
    unreadable."""


def read_secret(path: Path) -> str:
    """The first line of a secret file, without its line end."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MissingRedisUrl(f"cannot read the Redis password file {path}: {exc.strerror}") from None
    if not lines or not lines[0]:
        raise MissingRedisUrl(f"the Redis password file {path} is empty")
    return lines[0]


def with_password(url: str, password: str) -> str:
    """`url` with `password` in it, unless the URL has one of its own."""
    parts = urlsplit(url)
    if parts.password is not None or parts.scheme not in {"redis", "rediss"}:
        return url
    user = quote(parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"))


class Settings(BaseSettings):
    """Configuration of every part of the service; see the README's table of variables."""

    model_config = SettingsConfigDict(env_prefix="IMGCLF_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("IMGCLF_REDIS_URL", "REDIS_URL", "redis_url"),
    )
    """Redis to use. Unset: `imgclf serve` starts an embedded Redis in `data_dir/redis`."""

    redis_password_file: Path | None = None
    """A file whose first line is Redis's password, used with `redis_url` (a password written in
    the URL itself wins). For deployments that keep secrets in files (the compose stack's
    generated secret, a Kubernetes Secret volume): then the password is in no environment and on
    no command line, where `ps` and `docker inspect` would show it."""

    worker_ready_file: Path | None = None
    """A file a worker touches after each heartbeat (every 2 s) once its models are loaded. A
    container's health check compares its age with `stat`, so no Python starts for each check."""

    data_dir: Path = Path("data")
    """Root of the service's own files: Redis data, image catalogue, model cache."""

    image_dir: Path = Path()
    """The image catalogue folder (default `data_dir/images`). Only files listed here are served.
    Absolute once the settings are built."""

    model_dir: Path = Path()
    """Model weights cache (default `data_dir/models`); torchvision weights go to `hub/checkpoints`.
    Absolute once the settings are built."""

    models: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(MODEL_IDS))
    """Model ids to offer, comma-separated. Those whose weights are absent show as unavailable."""

    host: str = "127.0.0.1"
    """Address the web server binds to (`0.0.0.0` inside a container)."""

    port: int = Field(default=8000, ge=1, le=65535)
    """Port of the web server."""

    workers: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 4), ge=1, le=64)
    """How many worker processes `imgclf serve` starts. Default: one per CPU, at most 4 (each holds
    every model in memory). Measured on 2 cores (docs/benchmarks.md): 2 workers x 1 thread run
    1.3-1.6 x the jobs of 1 worker x 2 threads through the queue, and 3 or 4 workers no more than
    2 within the spread of a repeat, at more CPU per classification."""

    runtime: Literal["auto", "torch", "onnxruntime", "openvino"] = "auto"
    """Inference runtime of the workers; `auto` takes the fastest that matches torch's output."""

    torch_threads: int | None = Field(default=None, ge=1)
    """Inference threads per worker (torch, ONNX Runtime or OpenVINO). Unset: the CPU count divided
    by `workers` (at least 1)."""

    job_timeout: int = Field(default=120, ge=1)
    """Seconds a worker may spend on one job before RQ fails it."""

    result_ttl: int = Field(default=86_400, ge=1)
    """Seconds a finished or failed job and its result stay readable."""

    result_cache_ttl: int = Field(default=86_400, ge=0)
    """Seconds a result stays in the cache for repeated requests (same model, same image bytes);
    0 turns the cache off, and with it the answering of a request with the job already queued or
    running for the same catalogue photo and model."""

    max_image_pixels: int = Field(default=40_000_000, ge=1)
    """Images with more pixels than this are refused instead of decoded (decompression bombs)."""

    job_retries: int = Field(default=2, ge=0, le=10)
    """Times a job whose worker died while running it is put back on the queue; after the last try
    it fails with a message instead of killing workers forever."""

    max_queued_jobs: int = Field(default=1_000, ge=1)
    """Jobs allowed to wait in the queue; past it, submissions get 503 + Retry-After. Measured on
    2 cores the service drains 40-70 jobs/s, so the default is 15-25 s of work: a job accepted at
    the bound still ends well inside `job_timeout`, and 1,000 jobs keep about 7 MB in Redis."""

    rate_limit_per_minute: int = Field(default=0, ge=0)
    """Classifications one client address may submit per minute (429 + Retry-After past it);
    0 turns the limit off. The address is the peer's, or X-Forwarded-For's from a proxy listed in
    `forwarded_allow_ips` only."""

    max_form_bytes: int = Field(default=8_192, ge=256)
    """Largest request body of the HTML form and of every JSON route (413 past it)."""

    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Largest request body of an image upload route (413 past it, before it is read whole)."""

    api_docs_public: bool = True
    """Whether the pages link to the API docs (/docs) and a 404 points there. The compose stack's
    balancer keeps /docs and /openapi.json inside the network, and sets this false, so its
    pages link to nothing a visitor cannot open."""

    upload_decodes: int = Field(default=2, ge=1, le=64)
    """Uploads one web process decodes at once; more wait their turn. A decoded picture takes up
    to 4 bytes a pixel (160 MB at the default pixel limit), so this bounds the web's memory.
    Measured in the compose stack: four 40-megapixel uploads at once got a replica with 256 MB
    killed when nothing bounded them; with 2, eight at once peaked at 443 MB (its limit: 768 MB)."""

    upload_store_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    """Bytes of uploaded photos kept in Redis at once (originals and their re-encoded copies) for
    the workers to read; past it, uploads get 503 + Retry-After until older ones expire or are
    deleted. Keep it well under `redis_maxmemory`: jobs and results need room too."""

    webhook_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names (or addresses) a job's `callback_url` may name, comma-separated; empty (the
    default) turns webhooks off. Loopback and private addresses are refused unless listed here
    exactly (no server-side request forgery)."""

    webhook_secret: SecretStr | None = None
    """Key of the HMAC-SHA256 signature sent with every webhook (`X-Imgclf-Signature:
    sha256=<hex>` over the body); required when `webhook_hosts` is set."""

    max_header_bytes: int = Field(default=16_384, ge=1024)
    """Largest request line plus headers, in bytes (431 past it)."""

    max_header_count: int = Field(default=100, ge=10)
    """Most header fields one request may carry (431 past it)."""

    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a client has to send its request line and headers once connected (slow clients are
    disconnected)."""

    body_timeout: float = Field(default=30.0, gt=0)
    """Seconds a client may take to send its whole request body (408 past it)."""

    keep_alive_timeout: float = Field(default=5.0, gt=0)
    """Seconds an idle keep-alive connection stays open."""

    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    """Host header values the web server answers, comma-separated (`*`: any). Links never come
    from the Host header either way: the pages use relative URLs."""

    redis_appendfsync: Literal["no", "everysec", "always"] = "no"
    """`appendfsync` of the embedded Redis. With `no` (and `always`) Redis writes every command to its
    append-only file before it answers, so a killed redis-server loses no acknowledged job; the
    kernel puts the file on disk within about 30 s, so a power cut can lose those seconds, which
    `always` prevents at about 1 ms more per Redis write (measured). `everysec` can lose acknowledged
    writes even to a killed process: while its background fsync is slow (a busy disk) Redis holds
    writes back for up to 2 s but still answers (one chaos-test run with it lost a job)."""

    redis_maxmemory: str = "512mb"
    """`maxmemory` of the embedded Redis (with `noeviction`: a full Redis refuses new jobs with
    503 instead of dropping old ones). Set the same on an external Redis."""

    imagenet_samples_url: str = IMAGENET_SAMPLES_URL
    """Where `imgclf prepare --download` fetches the ImageNet sample images (a zip)."""

    weights_mirror: str | None = None
    """Base URL to fetch torchvision weights from instead of PyTorch's own server."""

    log_level: str = "INFO"
    """Logging level of every process."""

    log_format: Literal["text", "json"] = "text"
    """Log lines as text for people or as JSON for a log pipeline; both carry the job id."""

    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies whose X-Forwarded-* headers the web server trusts (`*` behind the compose balancer)."""

    @field_validator("models", "allowed_hosts", "webhook_hosts", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        unknown = [model_id for model_id in value if model_id not in MODEL_IDS]
        if unknown:
            raise ValueError(f"unknown model ids {unknown}; known: {', '.join(MODEL_IDS)}")
        return value

    @model_validator(mode="after")
    def _absolute_folders(self) -> Settings:
        # Folders not set default to data_dir's; every folder is made absolute once, here, so that
        # child processes and the catalogue see the same paths whatever their working directory.
        if "image_dir" not in self.model_fields_set:
            self.image_dir = self.data_dir / "images"
        if "model_dir" not in self.model_fields_set:
            self.model_dir = self.data_dir / "models"
        self.image_dir = self.image_dir.resolve()
        self.model_dir = self.model_dir.resolve()
        return self

    @model_validator(mode="after")
    def _webhooks_signed(self) -> Settings:
        if self.webhook_hosts and not (self.webhook_secret and self.webhook_secret.get_secret_value()):
            raise ValueError("IMGCLF_WEBHOOK_HOSTS is set but IMGCLF_WEBHOOK_SECRET is not: webhooks are always signed")
        return self

    def required_redis_url(self) -> str:
        """`redis_url`, for the processes that cannot start without one (`web`, `worker`)."""
        if not self.redis_url:
            raise MissingRedisUrl("set IMGCLF_REDIS_URL to the Redis of the service, or run `imgclf serve`")
        if self.redis_password_file is None:
            return self.redis_url
        return with_password(self.redis_url, read_secret(self.redis_password_file))

    def threads_per_worker(self) -> int:
        """Torch threads for one worker, so that all workers together do not oversubscribe the CPU."""
        if self.torch_threads is not None:
            return self.torch_threads
        return max(1, (os.cpu_count() or 1) // self.workers)
