from celery import shared_task

from agents.gate import gate_reconcile
from agents.keys.redis_users import redis_users_reconcile
from core.redis import get_redis

# Holds the run id of the Redis server the agents' users were last written to. ACL users live in memory
# only (an append-only file replays data, not users), so a restarted server, whose run id is new, gets them
# written again.
USERS_MARKER = "firebreak:redis-users"


@shared_task(ignore_result=True)
def gate_reconcile_task() -> int:
    """Beat: rewrite every gate key that Redis lost or holds wrong, and the agents' Redis users after a restart."""
    fixed = gate_reconcile()
    redis = get_redis()
    run_id = redis.info("server")["run_id"]
    if redis.get(USERS_MARKER) != run_id.encode():
        redis_users_reconcile()
        redis.set(USERS_MARKER, run_id)
    return fixed
