"""Shared fixtures: a real Redis server on a free port, a catalogue of real photos, a model
cache holding a weights file the tests write themselves, and real worker / web processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import SimpleWorker

from imgclf.config import Settings
from imgclf.embedded_redis import EmbeddedRedis, free_port
from imgclf.models.registry import MODELS, torch_hub_checkpoints
from imgclf.prepare import install_sample_photos

WORKER_MODELS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18"]
"""What the test worker loads: the offline models plus resnet18 with test-written weights."""

BROKEN_IMAGE = "broken.jpg"
"""A catalogue entry that is not an image, for the failed-job path."""


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server of the test session's own, never one already running on 6379."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    install_sample_photos(folder)
    (folder / BROKEN_IMAGE).write_bytes(b"this is not a JPEG")
    return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache with resnet18 weights written here (random, seeded), never downloaded."""
    import torch
    import torchvision

    folder = tmp_path_factory.mktemp("models")
    checkpoints = torch_hub_checkpoints(folder)
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), checkpoints / MODELS["resnet18"].weights_file)
    return folder


def tool(name: str) -> str:
    """A command installed in this virtualenv (make runs pytest without activating it), or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: `make test` installs it"
    return found


def make_settings(redis_url: str, image_dir: Path, model_dir: Path, **extra: Any) -> Settings:
    return Settings(
        redis_url=redis_url,
        data_dir=image_dir.parent,
        image_dir=image_dir,
        model_dir=model_dir,
        **extra,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process build the same settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMGCLF_")}
    env.update(
        IMGCLF_REDIS_URL=settings.redis_url or "",
        IMGCLF_DATA_DIR=str(settings.data_dir),
        IMGCLF_IMAGE_DIR=str(settings.images_path),
        IMGCLF_MODEL_DIR=str(settings.models_path),
        IMGCLF_MODELS=",".join(settings.models),
        IMGCLF_TORCH_THREADS=str(settings.threads_per_worker()),
        IMGCLF_HOST=settings.host,
        IMGCLF_PORT=str(settings.port),
    )
    return env


@pytest.fixture(scope="session")
def worker_settings(redis_server: EmbeddedRedis, image_dir: Path, model_dir: Path) -> Settings:
    """Settings of the session's worker and of the web app that talks to it (Redis db 0)."""
    return make_settings(redis_server.url, image_dir, model_dir, models=WORKER_MODELS, port=free_port())


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def worker(worker_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """One real `imgclf worker` process, started once for the session."""
    process = subprocess.Popen([sys.executable, "-m", "imgclf", "worker"], env=settings_env(worker_settings))
    connection = Redis.from_url(worker_settings.redis_url or "")
    deadline = time.monotonic() + 180
    while not SimpleWorker.all(connection=connection):
        if process.poll() is not None:
            pytest.fail(f"the worker exited at start-up with code {process.returncode}")
        if time.monotonic() > deadline:
            stop(process)
            pytest.fail("the worker did not register within 180 s")
        time.sleep(0.2)
    connection.close()
    yield process
    stop(process)


@pytest.fixture(scope="session")
def live_server(worker_settings: Settings, worker: subprocess.Popen[bytes]) -> Iterator[str]:
    """A real `imgclf web` process on a free port, in front of the session's worker."""
    process = subprocess.Popen([sys.executable, "-m", "imgclf", "web"], env=settings_env(worker_settings))
    url = f"http://127.0.0.1:{worker_settings.port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/info", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail("the web server did not start")
        time.sleep(0.1)
    yield url
    stop(process)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
