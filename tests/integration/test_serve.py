"""`imgclf serve`: one command starts Redis, a worker and the web server, and Ctrl+C stops them all."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from imgclf.embedded_redis import EmbeddedRedis, free_port


class Serve:
    """A running `imgclf serve`, its output read line by line."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imgclf", "serve"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            self.output.append(line)
            if text in line:
                return line
        pytest.fail(f"serve never printed {text!r}; output:\n{''.join(self.output)}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


@pytest.fixture(autouse=True)
def shared_model_cache(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """serve's own data folder, but the session's model cache: ONNX exports are made once."""
    monkeypatch.setenv("IMGCLF_MODEL_DIR", str(model_dir))


@contextmanager
def serve(tmp_path: Path, **variables: str) -> Iterator[tuple[Serve, str]]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMGCLF_")}
    env.pop("REDIS_URL", None)
    env.update(
        IMGCLF_PORT=str(port),
        IMGCLF_MODELS="efficientnet_lite0",
        IMGCLF_WORKERS="2",
        IMGCLF_MODEL_DIR=os.environ["IMGCLF_MODEL_DIR"],
        **variables,
    )
    running = Serve(tmp_path, env)
    try:
        running.wait_for(f"running at http://127.0.0.1:{port}")
        running.wait_for("worker(s) ready")
        yield running, f"http://127.0.0.1:{port}"
    finally:
        running.close()


def stop_with_ctrl_c(running: Serve) -> list[psutil.Process]:
    children = running.children()
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(60) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left behind: {alive}"
    return children


def classify(url: str, image_id: str) -> tuple[str, dict[str, object]]:
    page = httpx.post(f"{url}/classifications", data={"model_id": "efficientnet_lite0", "image_id": image_id})
    marker = 'id="job-id">'
    start = page.text.index(marker) + len(marker)
    job_id = page.text[start : page.text.index("<", start)]
    for _ in range(600):
        body: dict[str, object] = httpx.get(f"{url}/classifications/{job_id}").json()
        if body["task_status"] in ("finished", "failed"):
            return job_id, body
        time.sleep(0.05)
    pytest.fail("the job did not end")


def test_serve_embeds_redis_keeps_results_across_restarts_and_leaves_nothing(tmp_path: Path) -> None:
    with serve(tmp_path) as (running, url):
        names = sorted(Path(child.exe()).name for child in running.children())
        assert "redis-server" in names
        assert "coffee.jpg" in httpx.get(f"{url}/info").json()["images"]  # sample photos installed
        job_id, body = classify(url, "coffee.jpg")
        assert body["task_status"] == "finished"
        assert body["data"][0][0] == "espresso"  # type: ignore[index]
        stop_with_ctrl_c(running)
    assert (tmp_path / "data" / "redis").is_dir()

    # Append-only persistence: the ticket still answers after a restart.
    with serve(tmp_path) as (running, url):
        again = httpx.get(f"{url}/classifications/{job_id}").json()
        assert again == body
        stop_with_ctrl_c(running)


def test_serve_uses_the_configured_redis_instead(tmp_path: Path, redis_server: EmbeddedRedis) -> None:
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/14"
    with serve(tmp_path, IMGCLF_REDIS_URL=redis_url) as (running, url):
        names = [Path(child.exe()).name for child in running.children()]
        assert "redis-server" not in names
        _, body = classify(url, "chelsea.jpg")
        assert body["task_status"] == "finished"
        stop_with_ctrl_c(running)
    assert not (tmp_path / "data" / "redis").exists()


def test_serve_killed_outright_takes_its_children_along(tmp_path: Path) -> None:
    with serve(tmp_path) as (running, _):
        children = running.children()
        assert len(children) == 4  # redis-server, two workers, web
        running.process.kill()
        _, alive = psutil.wait_procs(children, timeout=20)
        assert alive == [], f"left behind: {alive}"
