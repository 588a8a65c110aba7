"""Supervised processes: under ``make run`` a crashed process is restarted and the others keep running
(real supervisord, real embedded PostgreSQL and Redis, real gunicorn, uvicorn and Celery); compose restarts
and health-checks every long-running service."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from firebreak.supervise import config, programs
from tests.sdk.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
SUPERVISORCTL = Path(sys.executable).with_name("supervisorctl")


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def pid_of(conf: Path, name: str) -> int:
    out = subprocess.run([SUPERVISORCTL, "-c", conf, "pid", name], capture_output=True, text=True, timeout=10).stdout
    return int(out.strip()) if out.strip().isdigit() else 0


def eventually(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_the_configuration_restarts_every_program_and_runs_the_embedded_servers_only_when_asked(tmp_path):
    both = config(var_dir=tmp_path, port=8000, embedded_postgres=True, embedded_redis=True)
    assert [line for line in both.splitlines() if line.startswith("[program:")] == [
        f"[program:{name}]" for name in ("postgres", "redis", "gate", "web", "worker", "beat")
    ]
    assert both.count("autorestart=true") == 6
    external = config(var_dir=tmp_path, port=8000, embedded_postgres=False, embedded_redis=False)
    assert "[program:postgres]" not in external and "[program:redis]" not in external


@pytest.mark.slow
def test_a_crashed_worker_or_postgres_is_restarted_and_the_rest_keeps_serving(tmp_path):
    var, port = tmp_path / "var", free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "FIREBREAK_SUPERVISED")}
    env |= {"FIREBREAK_VAR_DIR": str(var), "PORT": str(port)}
    with open(tmp_path / "supervisord.out", "w") as out:
        supervisord = subprocess.Popen(
            [sys.executable, "-m", "firebreak.supervise"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    conf = var / "run" / "supervisord.conf"
    try:
        eventually(lambda: healthy(port), 120, "make run's processes never became healthy")
        for crashed in ("worker", "postgres"):
            pids = {name: pid_of(conf, name) for name in ("gate", "web", "worker", "postgres")}
            os.kill(pids[crashed], signal.SIGKILL)
            eventually(lambda: pid_of(conf, crashed) not in (0, pids[crashed]), 30, f"{crashed} was not restarted")
            eventually(lambda: healthy(port), 120, f"not healthy again after {crashed} was killed")  # a bound
            others = {name: pid_of(conf, name) for name in pids if name != crashed}
            assert others == {name: pid for name, pid in pids.items() if name != crashed}  # nobody else stopped
    finally:
        supervisord.send_signal(signal.SIGINT)  # what Ctrl-C does: everything stops, PostgreSQL cleanly
        supervisord.wait(timeout=60)
    assert not (var / "pg" / "postmaster.pid").exists()


def test_compose_restarts_and_health_checks_every_long_running_service():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    long_running = {name: service for name, service in services.items() if name != "migrate"}
    assert set(long_running) == {"postgres", "redis", "gate", "web", "worker", "beat"}
    for name, service in long_running.items():
        assert service.get("restart") in ("always", "unless-stopped"), name
        assert service.get("healthcheck", {}).get("test"), name
    assert services["migrate"]["restart"] == "no"  # one-shot: it must not loop
    assert "--appendonly" in services["redis"]["command"]  # queued tasks survive a restart


def test_uvicorn_never_takes_the_client_address_from_a_header():
    root = ROOT
    [gate] = [
        p for p in programs(var_dir=root, port=8000, embedded_postgres=False, embedded_redis=False) if p.name == "gate"
    ]
    assert "--no-proxy-headers" in gate.command  # make run's gate server (supervised)
    assert '"--no-proxy-headers"' in (root / "docker-compose.yml").read_text()


def test_compose_scales_web_and_worker_with_nothing_kept_per_container():
    """``docker compose up --scale web=2 --scale worker=3``: no fixed host port or container name on them, the
    same secrets in every container (from the environment, never made per container), and one spool volume
    shared by every web container."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("web", "worker"):
        service = services[name]
        assert "ports" not in service and "container_name" not in service, name
        assert "ipv4_address" not in str(service.get("networks")), name
        env = service["environment"]
        for secret in ("SECRET_KEY", "FIREBREAK_GATE_SIGNING_KEY", "REDIS_URL"):
            assert ":?" in env[secret], f"{name}: {secret} must be required, not made by each container"
        assert env["DATABASE_REPLICA_URL"] == "${DATABASE_REPLICA_URL:-}"
    spool = f"{services['web']['environment']['FIREBREAK_VAR_DIR']}/spool/ingest"  # settings' default under var
    volumes = [v.split(":") for v in services["web"]["volumes"]]
    assert any(source in compose["volumes"] and spool.startswith(target + "/") for source, target in volumes)
