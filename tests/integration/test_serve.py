"""`imgclf serve`: one command starts Redis, a worker and the web server, and Ctrl+C stops them all."""

import signal
import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest

from imgclf.ops.embedded_redis import EmbeddedRedis
from tests.conftest import job_id_from_page
from tests.integration.serve_process import Serve, serve, serve_env


def stop_with_ctrl_c(running: Serve) -> list[psutil.Process]:
    children = running.children()
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(60) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left behind: {alive}"
    return children


def classify(url: str, image_id: str) -> tuple[str, dict[str, object]]:
    page = httpx.post(f"{url}/classifications", data={"model_id": "efficientnet_lite0", "image_id": image_id})
    job_id = job_id_from_page(page.text)
    for _ in range(600):
        body: dict[str, object] = httpx.get(f"{url}/classifications/{job_id}").json()
        if body["task_status"] in ("finished", "failed"):
            return job_id, body
        time.sleep(0.05)
    pytest.fail("the job did not end")


def test_serve_embeds_redis_keeps_results_across_restarts_and_leaves_nothing(tmp_path: Path, model_dir: Path) -> None:
    with serve(tmp_path, model_dir) as (running, url):
        names = sorted(Path(child.exe()).name for child in running.children())
        assert "redis-server" in names
        assert "coffee.jpg" in httpx.get(f"{url}/info").json()["images"]  # sample photos installed
        job_id, body = classify(url, "coffee.jpg")
        assert body["task_status"] == "finished"
        assert body["data"][0][0] == "espresso"  # type: ignore[index]
        stop_with_ctrl_c(running)
    assert (tmp_path / "data" / "redis").is_dir()

    # Append-only persistence: the ticket still answers after a restart.
    with serve(tmp_path, model_dir) as (running, url):
        again = httpx.get(f"{url}/classifications/{job_id}").json()
        assert again == body
        stop_with_ctrl_c(running)


def test_serve_uses_the_configured_redis_instead(tmp_path: Path, model_dir: Path, redis_server: EmbeddedRedis) -> None:
    redis_url = redis_server.url_for_db(14)
    with serve(tmp_path, model_dir, IMGCLF_REDIS_URL=redis_url) as (running, url):
        names = [Path(child.exe()).name for child in running.children()]
        assert "redis-server" not in names
        _, body = classify(url, "chelsea.jpg")
        assert body["task_status"] == "finished"
        stop_with_ctrl_c(running)
    assert not (tmp_path / "data" / "redis").exists()


def test_serve_killed_outright_takes_its_children_along(tmp_path: Path, model_dir: Path) -> None:
    with serve(tmp_path, model_dir) as (running, _):
        children = running.children()
        assert len(children) == 4  # redis-server, two workers, web
        running.process.kill()
        _, alive = psutil.wait_procs(children, timeout=20)
        assert alive == [], f"left behind: {alive}"


def test_serve_gives_up_on_a_child_that_cannot_start(tmp_path: Path, model_dir: Path) -> None:
    """A web server whose port is taken dies at every start: serve tries a few times with a
    back-off, then stops with the reason instead of restarting it forever."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running = Serve(tmp_path, serve_env(model_dir, port, IMGCLF_WORKERS="1"))
        try:
            running.wait_for("starting it again in 1 s")
            assert running.process.wait(120) == 1
            running.wait_for("web died 5 times in a row at start-up (exit code 3); stopping the service", timeout=5)
        finally:
            running.close()
