"""`imgclf serve`: one command starts Redis, a worker and the web server, and Ctrl+C stops them all."""

import signal
import socket
from pathlib import Path

import httpx
import psutil

from tests.conftest import classify, submit, wait_for_end
from tests.integration.serve_process import Serve, serve, serve_env


def stop_with_ctrl_c(running: Serve) -> list[psutil.Process]:
    children = running.children()
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(60) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left behind: {alive}"
    return children


def test_serve_embeds_redis_keeps_results_across_restarts_and_leaves_nothing(tmp_path: Path, model_dir: Path) -> None:
    with serve(tmp_path, model_dir) as (running, url):
        names = sorted(Path(child.exe()).name for child in running.children())
        assert "redis-server" in names
        assert "coffee.jpg" in httpx.get(f"{url}/info").json()["images"]  # sample photos installed
        with httpx.Client(base_url=url) as client:
            job_id = submit(client, "efficientnet_lite0", "coffee.jpg")
            body = wait_for_end(client, job_id)
        assert body["task_status"] == "finished"
        assert body["data"][0][0] == "espresso"
        stop_with_ctrl_c(running)
    assert (tmp_path / "data" / "redis").is_dir()

    # Append-only persistence: the ticket still answers after a restart.
    with serve(tmp_path, model_dir) as (running, url):
        again = httpx.get(f"{url}/classifications/{job_id}").json()
        assert again == body
        stop_with_ctrl_c(running)


def test_serve_uses_the_configured_redis_instead(tmp_path: Path, model_dir: Path, redis_url: str) -> None:
    with serve(tmp_path, model_dir, IMGCLF_REDIS_URL=redis_url) as (running, url), httpx.Client(base_url=url) as client:
        names = [Path(child.exe()).name for child in running.children()]
        assert "redis-server" not in names
        body = classify(client, "efficientnet_lite0", "chelsea.jpg")
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
