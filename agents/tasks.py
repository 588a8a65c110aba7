from celery import shared_task

from agents.gate import gate_reconcile
from agents.keys.redis_users import redis_users_reconcile
from core.redis import get_redis

# Present while Redis still holds the agents' users as last written; a restart (no persistence)
# loses both, so its absence is the cue to write them again.
USERS_MARKER = "firebreak:redis-users"


@shared_task(ignore_result=True)
def gate_reconcile_task() -> int:
    """Beat: rewrite every gate key that Redis lost or holds wrong, and the agents' Redis users after a restart."""
    fixed = gate_reconcile()
    redis = get_redis()
    if not redis.exists(USERS_MARKER):
        redis_users_reconcile()
        redis.set(USERS_MARKER, "1")
    return fixed
