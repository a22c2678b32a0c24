"""`imgclf healthcheck`, the containers' health checks, against real processes."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from imgclf.cli import main
from imgclf.config import Settings
from imgclf.ops.embedded_redis import free_port
from imgclf.ops.healthcheck import check_web, check_worker
from imgclf.ops.processes import spawn, stop
from tests.conftest import unreachable_redis_url

ROOT = Path(__file__).parents[2]


def test_web_check_passes_against_a_running_web_server(worker_settings: Settings, live_server: str) -> None:
    assert check_web(worker_settings) is None
    assert "Connection refused" in (check_web(worker_settings.model_copy(update={"port": free_port()})) or "")


def test_worker_check_passes_when_a_worker_of_this_host_is_registered(
    worker_settings: Settings, worker: subprocess.Popen[bytes], redis_url: str
) -> None:
    assert check_worker(worker_settings) is None
    idle_db = worker_settings.model_copy(update={"redis_url": redis_url})
    assert "no worker of host" in (check_worker(idle_db) or "")
    unreachable = worker_settings.model_copy(update={"redis_url": unreachable_redis_url()})
    assert "Redis is unreachable" in (check_worker(unreachable) or "")


def test_the_command_exits_non_zero_with_the_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMGCLF_PORT", str(free_port()))
    assert main(["healthcheck"]) == 1
    assert "unhealthy" in capsys.readouterr().err


def worker_image_check() -> list[str]:
    """The worker image's HEALTHCHECK command, as the Dockerfile writes it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stage = dockerfile[dockerfile.index(" AS worker\n") :]
    command = re.search(r"CMD (\[\"bash\".*\])$", stage, re.MULTILINE)
    assert command, "the worker stage has no bash health check"
    parsed: list[str] = json.loads(command.group(1))
    return parsed


def test_the_worker_image_health_check_follows_the_ready_file(
    worker_settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    ready.touch()
    os.utime(ready, (0, 0))  # a predecessor's file, long stale
    env = {"PATH": os.environ["PATH"], "IMGCLF_WORKER_READY_FILE": str(ready)}

    def healthy() -> bool:
        return subprocess.run(worker_image_check(), env=env, capture_output=True).returncode == 0

    assert not healthy()
    process = spawn("worker", worker_settings.model_copy(update={"redis_url": redis_url, "worker_ready_file": ready}))
    try:
        deadline = time.monotonic() + 120
        while not healthy():
            assert process.poll() is None and time.monotonic() < deadline, "the worker never became healthy"
            time.sleep(0.2)
        touched = ready.stat().st_mtime
        time.sleep(2.5)
        assert ready.stat().st_mtime > touched  # touched with each heartbeat
    finally:
        stop(process)
    stale = time.time() - 30
    os.utime(ready, (stale, stale))  # a hung or dead worker stops touching it
    assert not healthy()
