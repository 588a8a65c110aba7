"""Writes for the blast radius: a run recorded on the incident's timeline."""

from datetime import datetime

from core.actors import Actor
from incidents.blast_radius.selectors import TIMELINE_USER_LIMIT, BlastResult, blast_radius
from incidents.blast_radius.signature import BlastSignature
from incidents.models import Incident, TimelineEntry, TimelineKind
from incidents.services import timeline_record


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def blast_radius_record(
    *, incident: Incident, signature: BlastSignature, since: datetime, until: datetime, actor: Actor
) -> tuple[BlastResult, TimelineEntry]:
    """Compute the blast radius and put the run on the incident's timeline."""
    result = blast_radius(signature=signature, since=since, until=until, limit_users=TIMELINE_USER_LIMIT)
    body = (
        f"Blast radius: {_count(result.trajectories, 'trajectory', 'trajectories')}, "
        f"{_count(result.distinct_users, 'user', 'users')}, "
        f"{result.still_running:,} still running — signature {signature.describe()}"
    )
    entry = timeline_record(
        incident=incident,
        kind=TimelineKind.BLAST_RADIUS,
        body=body,
        actor=actor,
        data=result.as_data(),
        created_at=result.computed_at,
    )
    return result, entry
