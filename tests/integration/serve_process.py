"""A running `imgclf serve` for the tests, its output read line by line."""

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from imgclf.ops.embedded_redis import free_port


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


def serve_env(model_dir: Path, port: int, **variables: str) -> dict[str, str]:
    """serve's environment: one model, two workers, the session's model cache (ONNX exports are
    made once), nothing of the caller's IMGCLF_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMGCLF_")}
    env.pop("REDIS_URL", None)
    env.update(
        {
            "IMGCLF_PORT": str(port),
            "IMGCLF_MODELS": "efficientnet_lite0",
            "IMGCLF_WORKERS": "2",
            "IMGCLF_MODEL_DIR": str(model_dir),
            **variables,
        }
    )
    return env


@contextmanager
def serve(tmp_path: Path, model_dir: Path, **variables: str) -> Iterator[tuple[Serve, str]]:
    """serve in `tmp_path` (its own data folder), once the workers are ready."""
    port = free_port()
    running = Serve(tmp_path, serve_env(model_dir, port, **variables))
    try:
        running.wait_for(f"running at http://127.0.0.1:{port}")
        running.wait_for("worker(s) ready")
        yield running, f"http://127.0.0.1:{port}"
    finally:
        running.close()
