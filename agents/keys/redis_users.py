"""Redis users of agent keys: read the agent's own gate key and listen on its own channel, nothing else.

An agent that reads its gate straight from Redis gets a Redis user of its own (an ACL user named
after its key, whose password is the key itself, stored only as the SHA-256 Redis accepts). It can
GET ``firebreak:gate:<slug>`` and SUBSCRIBE to ``firebreak:gate-events:<slug>``; SET, DEL, PUBLISH,
FLUSHALL, other agents' keys and the Celery queues all answer NOPERM. ACL users are configuration,
not data: the gate reconciler re-creates them from PostgreSQL after a Redis restart, and revoking
the key deletes its user (Redis then closes the connections it holds).

The server's own Redis user needs the ACL commands (``ACL SETUSER``/``ACL DELUSER``) for this: the
embedded Redis and docker compose give it them; on an external Redis, grant ``+acl``.
"""

import logging
from urllib.parse import quote, urlsplit, urlunsplit

from agents.gate import CHANNEL, KEY
from agents.models import ApiKey
from core.redis import gate_redis_url, get_redis

logger = logging.getLogger(__name__)

USER_PREFIX = "fbk-"


class RedisUserError(RuntimeError):
    """Redis refused to create or delete an agent's user (e.g. the server's user lacks +acl)."""


def redis_username(key: ApiKey) -> str:
    return f"{USER_PREFIX}{key.lookup}"


def redis_user_rules(key: ApiKey) -> list[str]:
    """The ACL rules of the key's user: its password hash, its one key, its one channel, read-only commands."""
    if key.agent is None:
        raise ValueError("only an agent's key has a Redis user")
    slug = key.agent.slug
    return [
        "reset",
        "on",
        f"#{key.key_hash}",
        f"~{KEY.format(slug=slug)}",
        "resetchannels",
        f"&{CHANNEL.format(slug=slug)}",
        "-@all",
        "+get",
        "+subscribe",
        "+unsubscribe",
        "+ping",
        "+select",  # the gate may live in another logical database than 0
    ]


def redis_user_put(key: ApiKey) -> None:
    """Create (or re-create, idempotently) the key's Redis user. Raises RedisUserError."""
    try:
        get_redis().execute_command("ACL", "SETUSER", redis_username(key), *redis_user_rules(key))
    except Exception as exc:
        raise RedisUserError(
            f"Redis refused to create the agent's user ({exc}); the server's Redis user needs the ACL commands"
        ) from exc


def redis_user_delete(key: ApiKey) -> None:
    """Delete the key's Redis user; Redis closes the connections authenticated as it. Raises RedisUserError."""
    try:
        get_redis().execute_command("ACL", "DELUSER", redis_username(key))
    except Exception as exc:
        raise RedisUserError(f"Redis refused to delete the agent's user ({exc})") from exc


def redis_url_for(key: ApiKey, raw: str) -> str:
    """``FIREBREAK_REDIS_URL`` for an agent: the gate's Redis, logged in as the key's own user."""
    parts = urlsplit(gate_redis_url())
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = f"{quote(redis_username(key), safe='')}:{quote(raw, safe='')}@"
    return urlunsplit(parts._replace(netloc=userinfo + host))


def redis_users_reconcile() -> int:
    """Re-create the Redis user of every live agent key that has one (after a Redis restart), and delete
    those of keys revoked while Redis could not be told. Returns how many users were written.

    Only keys of this database are touched, so several Firebreak databases sharing one Redis (test
    workers) never remove each other's users.
    """
    keys = ApiKey.objects.filter(redis_access=True, agent__isnull=False).select_related("agent")
    live = [k for k in keys if k.revoked_at is None]
    revoked = [k for k in keys if k.revoked_at is not None]
    if not keys:
        return 0
    pipe = get_redis().pipeline(transaction=False)
    for key in live:
        pipe.execute_command("ACL", "SETUSER", redis_username(key), *redis_user_rules(key))
    for key in revoked:
        pipe.execute_command("ACL", "DELUSER", redis_username(key))
    pipe.execute()
    return len(live)
