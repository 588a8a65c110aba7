import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from firebreak import embedded
from firebreak.settings import celery_broker_url

ROOT = Path(__file__).resolve().parents[2]


def _settings_in_subprocess(env: dict) -> dict:
    code = (
        "import json, firebreak.settings as s;"
        "print(json.dumps({'db': {k: str(v) for k, v in s.DATABASES['default'].items() if k != 'TEST'},"
        "'redis': s.REDIS_URL, 'broker': s.CELERY_BROKER_URL, 'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS,"
        "'secret': s.SECRET_KEY, 'embedded': [s.EMBEDDED_POSTGRES, s.EMBEDDED_REDIS]}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_settings_read_services_and_secrets_from_the_environment():
    conf = _settings_in_subprocess(
        {
            "DATABASE_URL": "postgres://fb:pw@db.internal:6543/firebreak",
            "REDIS_URL": "redis://cache.internal:6380/2",
            "SECRET_KEY": "from-env",
            "DEBUG": "true",
            "ALLOWED_HOSTS": "firebreak.example.com, other.example.com",
        }
    )
    assert conf["db"]["HOST"] == "db.internal"
    assert conf["db"]["PORT"] == "6543"
    assert conf["db"]["NAME"] == "firebreak"
    assert conf["db"]["USER"] == "fb"
    assert conf["redis"] == conf["broker"] == "redis://cache.internal:6380/2"
    assert conf["secret"] == "from-env"
    assert conf["debug"] is True
    assert conf["hosts"] == ["firebreak.example.com", "other.example.com"]
    assert conf["embedded"] == [False, False]


def test_a_unix_socket_redis_url_gives_kombus_spelling_of_the_broker_url():
    conf = _settings_in_subprocess({"REDIS_URL": "unix:///run/redis/redis.sock?db=3"})
    assert conf["redis"] == "unix:///run/redis/redis.sock?db=3"
    assert conf["broker"] == "redis+socket:///run/redis/redis.sock?virtual_host=3"
    assert celery_broker_url("unix:///run/redis.sock") == "redis+socket:///run/redis.sock"
    assert celery_broker_url("redis://cache:6379/2") == "redis://cache:6379/2"


def test_without_urls_settings_use_the_embedded_servers():
    conf = _settings_in_subprocess({})
    assert conf["embedded"] == [True, True]
    assert conf["redis"].startswith("unix://")
    assert conf["broker"].startswith("redis+socket://")
    assert conf["debug"] is False
    assert len(conf["secret"]) >= 40


def test_second_start_reuses_the_running_embedded_servers():
    if not (settings.EMBEDDED_POSTGRES and settings.EMBEDDED_REDIS):
        # CI's second pass points at the machine's services; the embedded ones are covered in the first.
        conf = _settings_in_subprocess({})
        assert conf["embedded"] == [True, True]
    var = settings.VAR_DIR
    first_pg = embedded.ensure_postgres(var)
    pid_pg = (var / "pg" / "postmaster.pid").read_text().splitlines()[0]
    first_redis = embedded.ensure_redis(var)
    pid_redis = (var / "redis" / "redis.pid").read_text().strip()
    started = time.perf_counter()
    assert embedded.ensure_postgres(var) == first_pg
    assert embedded.ensure_redis(var) == first_redis
    assert time.perf_counter() - started < 0.5  # a reuse is a pid-file check, not a start
    assert (var / "pg" / "postmaster.pid").read_text().splitlines()[0] == pid_pg
    assert (var / "redis" / "redis.pid").read_text().strip() == pid_redis


def test_embedded_redis_starts_fresh_in_an_empty_directory_and_is_reused(tmp_path):
    import redis

    sock = embedded.ensure_redis(tmp_path)
    try:
        with pytest.raises(redis.AuthenticationError):  # the server's own user has a password
            redis.Redis(unix_socket_path=sock).set("k", "v")
        client = redis.Redis(unix_socket_path=sock, password=embedded.redis_password(tmp_path))
        client.set("k", "v")
        assert embedded.ensure_redis(tmp_path) == sock
        assert client.get("k") == b"v"
    finally:
        assert embedded.stop_all(tmp_path) == ["redis"]


def test_failing_embedded_start_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "_redis_binary", lambda: str(tmp_path / "no-such-redis-server"))
    try:
        embedded.ensure_redis(tmp_path)
    except embedded.EmbeddedServiceError as exc:
        message = str(exc)
    else:
        raise AssertionError("expected EmbeddedServiceError")
    assert "\n" not in message
    assert "REDIS_URL" in message


def test_healthz_reports_both_services(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


def test_a_data_directory_of_another_postgresql_is_refused_in_one_line_and_left_as_it_was(tmp_path):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    (pgdata / "base").mkdir()
    before = sorted(p.name for p in pgdata.iterdir())
    env = {**os.environ, "FIREBREAK_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "firebreak.embedded", "up"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 1
    [line] = out.stderr.strip().splitlines()
    assert "PostgreSQL 16" in line and f"PostgreSQL {embedded.EMBEDDED_PG_MAJOR}" in line
    assert f"mv {pgdata} {pgdata}-16" in line
    assert sorted(p.name for p in pgdata.iterdir()) == before
    assert (pgdata / "PG_VERSION").read_text() == "16\n"


def test_the_embedded_server_is_the_postgresql_major_version_the_check_expects():
    version = subprocess.run(
        [str(embedded._bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"(PostgreSQL) {embedded.EMBEDDED_PG_MAJOR}." in version
