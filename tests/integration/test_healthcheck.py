"""`imgclf healthcheck`, the containers' health checks, against real processes."""

import subprocess

import pytest

from imgclf.cli import main
from imgclf.config import Settings
from imgclf.ops.embedded_redis import free_port
from imgclf.ops.healthcheck import check_web, check_worker
from tests.conftest import unreachable_redis_url


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
