"""An agent's own Redis user reads its gate and hears its channel, and can change nothing (real Redis)."""

import time
from urllib.parse import urlsplit

import pytest
import redis
from django.core.management import call_command

from agents.gate import CHANNEL, KEY, gate_publish
from agents.keys.redis_users import redis_url_for, redis_username, redis_users_reconcile
from agents.keys.services import api_key_create, api_key_revoke
from agents.models import FleetGate
from agents.tasks import gate_reconcile_task
from core.actors import Actor
from core.redis import get_redis


@pytest.fixture
def agent_redis(make_agent, redis_client):
    """(agent, key, its own Redis connection); the key is revoked afterwards so a shared Redis keeps no user."""
    agent = make_agent("acl-agent")
    other = make_agent("acl-other")
    gate_publish([agent, other], FleetGate.load())
    key, raw = api_key_create(agent=agent, scopes=["ingest", "gate"], redis=True)
    client = redis.Redis.from_url(redis_url_for(key, raw), socket_timeout=5)
    client.raw_key = raw
    yield agent, key, client
    client.close()
    key.refresh_from_db()
    if key.revoked_at is None:
        api_key_revoke(key=key, actor=Actor.system("tests"))
        redis_client.execute_command("ACL", "DELUSER", redis_username(key))


def test_an_agents_redis_user_reads_its_own_gate(agent_redis):
    agent, _, client = agent_redis
    assert client.get(KEY.format(slug=agent.slug)) is not None
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL.format(slug=agent.slug))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    pubsub.close()


@pytest.mark.parametrize(
    "command",
    [
        ("SET", "firebreak:gate:acl-agent", '{"state":"active","version":1000000000000}'),
        ("DEL", "firebreak:gate:acl-agent"),
        ("PUBLISH", "firebreak:gate-events:acl-agent", '{"state":"active","version":1000000000000}'),
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("GET", "firebreak:gate:acl-other"),
        ("GET", "firebreak:fleet"),
        ("LRANGE", "celery", "0", "-1"),
        ("KEYS", "*"),
        ("ACL", "SETUSER", "fbk-mine", "on", "+@all"),
        ("CONFIG", "SET", "requirepass", ""),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_an_agents_redis_user_is_refused_everything_else(agent_redis, redis_client, command):
    agent, _, client = agent_redis
    before = redis_client.get(KEY.format(slug=agent.slug))
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*command)
    assert redis_client.get(KEY.format(slug=agent.slug)) == before


def test_an_agent_cannot_listen_on_another_agents_channel(agent_redis):
    _, _, client = agent_redis
    pubsub = client.pubsub()
    with pytest.raises(redis.exceptions.NoPermissionError):
        pubsub.subscribe(CHANNEL.format(slug="acl-other"))
        pubsub.get_message(timeout=2)
    pubsub.close()


def test_revoking_the_key_removes_its_redis_user(agent_redis, django_capture_on_commit_callbacks):
    agent, key, client = agent_redis
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(key=key, actor=Actor.system("tests"))
    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ConnectionError)):
        client.get(KEY.format(slug=agent.slug))  # the held connection is closed and the user is gone


def test_the_reconciler_recreates_users_after_a_redis_restart(agent_redis, redis_client):
    agent, key, client = agent_redis
    redis_client.execute_command("ACL", "DELUSER", redis_username(key))  # what a restart without persistence leaves
    assert redis_users_reconcile() >= 1
    fresh = redis.Redis.from_url(redis_url_for(key, client.raw_key), socket_timeout=5)
    assert fresh.get(KEY.format(slug=agent.slug)) is not None
    fresh.close()


def test_createapikey_with_redis_prints_a_url_that_only_reads(
    db, make_agent, capsys, redis_client, django_capture_on_commit_callbacks
):
    make_agent("acl-night")
    call_command("createapikey", "--agent", "acl-night", "--scopes", "ingest,gate", "--redis")
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines()[1:])
    assert set(lines) == {"FIREBREAK_GATE_PUBLIC_KEY", "FIREBREAK_REDIS_URL"}
    client = redis.Redis.from_url(lines["FIREBREAK_REDIS_URL"], socket_timeout=5)
    client.ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("firebreak:gate:acl-night", "{}")
    username = urlsplit(lines["FIREBREAK_REDIS_URL"]).username
    with django_capture_on_commit_callbacks(execute=True):
        call_command("revokeapikey", username.removeprefix("fbk-"))
    assert redis_client.execute_command("ACL", "GETUSER", username) is None


@pytest.mark.slow
def test_after_a_crash_the_embedded_redis_keeps_its_data_and_the_agents_users_come_back(
    make_agent, private_redis, settings
):
    """The embedded Redis replays its append-only file after a crash (queued tasks and gate copies survive);
    ACL users are not in that file, so beat's reconciler, seeing a new server run id, writes them again."""
    settings.REDIS_URL = private_redis.url
    get_redis.cache_clear()
    try:
        agent = make_agent("aof-agent")
        gate_publish([agent], FleetGate.load())
        key, raw = api_key_create(agent=agent, scopes=["ingest", "gate"], redis=True)
        gate_reconcile_task()  # remembers the server the users were written to
        agent_client = redis.Redis.from_url(redis_url_for(key, raw), socket_timeout=5)
        assert agent_client.get(KEY.format(slug=agent.slug)) is not None
        agent_client.close()
        server = private_redis.client()
        server.lpush("celery", "a queued task")
        time.sleep(1.5)  # appendfsync everysec
        private_redis.restart(keep_data=True)  # SIGKILL, then started again on the same files
        server = private_redis.client()
        assert server.lrange("celery", 0, -1) == [b"a queued task"]
        get_redis.cache_clear()
        agent_client = redis.Redis.from_url(redis_url_for(key, raw), socket_timeout=5)
        with pytest.raises(redis.exceptions.AuthenticationError):
            agent_client.get(KEY.format(slug=agent.slug))
        gate_reconcile_task()
        assert agent_client.get(KEY.format(slug=agent.slug)) is not None
        agent_client.close()
    finally:
        get_redis.cache_clear()
