"""``make run``'s process manager: supervisord owns every process and restarts whichever crashes.

``python -m firebreak.supervise`` writes ``var/run/supervisord.conf`` and runs supervisord in the
foreground. Its programs: the embedded PostgreSQL and Redis (in the foreground, when ``DATABASE_URL`` /
``REDIS_URL`` are unset), the gate server (uvicorn, the public port), web (gunicorn, behind it on a unix
socket), the Celery worker and beat. A crashed program is started again within about a second; the others
keep running, and while PostgreSQL or Redis restarts they answer 503 with ``Retry-After`` (ingest spools).
Django programs run with ``FIREBREAK_SUPERVISED=1``: they wait for the embedded servers instead of starting
them. Ctrl-C stops everything; ``supervisorctl -c var/run/supervisord.conf status`` shows the programs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Program:
    name: str
    command: str
    priority: int = 10
    stopsignal: str = "TERM"
    stopwaitsecs: int = 10


def programs(*, var_dir: Path, port: int, embedded_postgres: bool, embedded_redis: bool) -> list[Program]:
    """What supervisord runs, in start order (priority)."""
    bin_dir = Path(sys.executable).parent
    python = sys.executable
    found: list[Program] = []
    if embedded_postgres:
        # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
        found.append(Program("postgres", f"{python} -m firebreak.embedded serve postgres", 1, "INT", 30))
    if embedded_redis:
        found.append(Program("redis", f"{python} -m firebreak.embedded serve redis", 1))
    found += [
        Program(
            "gate",
            f"{bin_dir / 'uvicorn'} firebreak.asgi:application --host 127.0.0.1 --port {port} --no-proxy-headers "
            "--no-access-log "
            "--timeout-keep-alive 75 --lifespan on",
        ),
        Program(
            "web",
            f"{bin_dir / 'gunicorn'} firebreak.wsgi --bind unix:{var_dir / 'run' / 'web.sock'} "
            "--worker-class gthread --workers 3 --threads 4 --timeout 60 --access-logfile -",
        ),
        Program(
            "worker",
            f"{bin_dir / 'celery'} -A firebreak worker --loglevel INFO --concurrency 2 --without-gossip "
            "--without-mingle",
            stopwaitsecs=30,
        ),
        Program(
            "beat", f"{bin_dir / 'celery'} -A firebreak beat --loglevel INFO --schedule {var_dir / 'beat-schedule'}"
        ),
    ]
    return found


def config(*, var_dir: Path, port: int, embedded_postgres: bool, embedded_redis: bool) -> str:
    """supervisord's configuration for ``make run``."""
    run = var_dir / "run"
    lines = [
        "[supervisord]",
        "nodaemon=true",
        *(["user=root"] if os.geteuid() == 0 else []),  # said, so supervisord does not warn that it was not
        f"logfile={run / 'supervisord.log'}",
        f"pidfile={run / 'supervisord.pid'}",
        f"directory={ROOT}",
        "",
        "[unix_http_server]",
        f"file={run / 'supervisor.sock'}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{run / 'supervisor.sock'}",
        "",
    ]
    for program in programs(
        var_dir=var_dir, port=port, embedded_postgres=embedded_postgres, embedded_redis=embedded_redis
    ):
        lines += [
            f"[program:{program.name}]",
            f"command={program.command}",
            f"priority={program.priority}",
            "autostart=true",
            "autorestart=true",
            # Restarted at once and for as long as it takes: a program waiting for PostgreSQL is not failing.
            "startsecs=1",
            "startretries=1000",
            f"stopsignal={program.stopsignal}",
            f"stopwaitsecs={program.stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "",
        ]
    return "\n".join(lines).replace("%", "%%")


def main() -> None:
    var_dir = Path(os.environ.get("FIREBREAK_VAR_DIR") or ROOT / "var").resolve()
    port = int(os.environ.get("PORT") or 8000)
    run = var_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    conf = run / "supervisord.conf"
    conf.write_text(
        config(
            var_dir=var_dir,
            port=port,
            embedded_postgres=not os.environ.get("DATABASE_URL"),
            embedded_redis=not os.environ.get("REDIS_URL"),
        )
    )
    # Links in notifications and the drill agents' FIREBREAK_URL point at this server's port, not 8000,
    # unless the deployment names its public URL.
    os.environ.setdefault("FIREBREAK_BASE_URL", f"http://127.0.0.1:{port}")
    os.environ.update(
        FIREBREAK_SUPERVISED="1",
        FIREBREAK_VAR_DIR=str(var_dir),
        FIREBREAK_WEB_UPSTREAM=f"unix:{run / 'web.sock'}",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    supervisord = str(Path(sys.executable).parent / "supervisord")
    os.execv(supervisord, [supervisord, "-c", str(conf)])  # noqa: S606 (no shell)


if __name__ == "__main__":
    main()
