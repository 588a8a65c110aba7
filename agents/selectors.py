import hmac

from django.db.models import QuerySet

from agents.models import Agent, ApiKey, AuditEntry, FleetGate


def agent_list() -> QuerySet[Agent]:
    return Agent.objects.all()


def agent_get(*, slug: str) -> Agent:
    return Agent.objects.get(slug=slug)


def audit_list(*, agent: Agent | None = None, limit: int = 50) -> list[AuditEntry]:
    qs = AuditEntry.objects.select_related("agent")
    if agent is not None:
        qs = qs.filter(agent=agent)
    return list(qs[:limit])


def fleet_gate_get() -> FleetGate:
    return FleetGate.load()


def api_key_resolve(*, raw: str) -> ApiKey | None:
    """The live key for a raw bearer value, or None. Constant-time on the hash."""
    if not raw.startswith(ApiKey.PREFIX):
        return None
    lookup = raw[len(ApiKey.PREFIX) :].split("_", 1)[0]
    key = (
        ApiKey.objects.select_related("agent", "user")
        .filter(lookup=lookup, revoked_at__isnull=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.key_hash, ApiKey.hash(raw)):
        return None
    return key
