"""Writes to the change log (``ChangeEvent``): what changed on an agent, and the change freeze that
refuses configuration changes while it is on.

- ``agent_change_record``: a pipeline (or a person) says "prompt v7 is deployed"; refused during a
  change freeze, audited.
- ``agent_change_observe``: ingest saw a prompt or model version for the first time; always recorded
  (it happened), flagged ``during_freeze`` when the freeze is on; once per (agent, kind, version).
- ``change_freeze_refuse``: what every configuration write calls first. Containment (kill, pause,
  resume, degrade, block, rollback) never calls it.
"""

import functools
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar, cast
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from agents.changes import refuse_agent_keys
from agents.models import Agent, AuditAction, AuditEntry, ChangeEvent, ChangeKind, ChangeSource, FleetGate
from core import clock
from core.actors import Actor
from core.errors import Conflict

F = TypeVar("F", bound=Callable[..., Any])

VERSION_MAX = 200
# Versions this process saw recorded lately, (agent pk, kind, version) -> when (monotonic): ingest asks for every
# batch, and a batch whose versions are all here costs no query. A record deleted since is recorded again by the
# first batch after its entry is this old.
SEEN_SECONDS = 60.0
SEEN_MAX = 10_000
_seen: dict[tuple[int, str, str], float] = {}
DESCRIPTION_MAX = 2000


class ChangeFrozen(Conflict):
    """A configuration change refused because the fleet's change freeze is on (an API answers 409)."""


def change_freeze_status() -> dict[str, object] | None:
    """The freeze as a responder reads it: who set it, since when, why. None when it is off."""
    fleet = FleetGate.objects.filter(pk=1).first()
    if fleet is None or not fleet.change_freeze:
        return None
    entry = AuditEntry.objects.filter(agent=None, action=AuditAction.CHANGE_FREEZE).order_by("-created_at").first()
    return {
        "reason": fleet.change_freeze_reason,
        "set_by": entry.actor_label if entry else "",
        "since": entry.created_at if entry else None,
    }


def change_freeze_refuse(*, what: str) -> None:
    """Raise ChangeFrozen naming the freeze (who set it, since when, why) when the change freeze is on."""
    status = change_freeze_status()
    if status is None:
        return
    since = status["since"]
    when = since.strftime("%Y-%m-%d %H:%M UTC") if isinstance(since, datetime) else "an unknown time"
    raise ChangeFrozen(
        f"{what} refused: the change freeze is on, set by {status['set_by'] or 'unknown'} "
        f"since {when} ({status['reason'] or 'no reason given'}). Containment (kill, pause, degrade, "
        "block, rollback) is still allowed."
    )


def _clean(kind: str, version: str, description: str) -> tuple[str, str, str]:
    errors: dict[str, str] = {}
    kind = (kind or "").strip()
    if kind not in ChangeKind.values:
        errors["kind"] = f"one of {', '.join(ChangeKind.values)}"
    version = (version or "").strip()
    if not version:
        errors["version"] = "a version is required"
    elif len(version) > VERSION_MAX:
        errors["version"] = f"at most {VERSION_MAX} characters"
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = f"at most {DESCRIPTION_MAX} characters"
    if errors:
        raise ValidationError(errors)
    return kind, version, description


@transaction.atomic
def agent_change_record(
    *, agent: Agent, actor: Actor, kind: str, version: str, description: str = "", source: str = ChangeSource.API
) -> ChangeEvent:
    """Record a change a pipeline or a person made (one audit row). Raises ValidationError naming the
    field, ChangeFrozen during a change freeze, Conflict when this version is already recorded."""
    refuse_agent_keys(actor)
    kind, version, description = _clean(kind, version, description)
    change_freeze_refuse(what=f"recording the {kind} change {version!r}")
    if ChangeEvent.objects.filter(agent=agent, kind=kind, version=version).exists():
        raise Conflict(f"the {kind} version {version!r} of {agent.slug} is already recorded")
    event = ChangeEvent.objects.create(
        agent=agent,
        kind=kind,
        version=version,
        description=description,
        actor_label=actor.label,
        source=source,
        created_at=clock.now(),
    )
    AuditEntry.objects.create(
        agent=agent,
        action=AuditAction.CHANGE_RECORD,
        actor=actor.user,
        actor_label=actor.label,
        reason=description,
        after={"kind": kind, "version": version, "source": source},
        created_at=event.created_at,
    )
    return event


def agent_changes_seen(versions: Iterable[tuple[int, str, str]]) -> bool:
    """Every one of ``versions`` ((agent pk, kind, version)) was recorded, as this process saw within
    ``SEEN_SECONDS``: nothing of them is new to the change log."""
    now = time.monotonic()
    return all(now - _seen.get((agent_id, str(kind), (version or "").strip()[:VERSION_MAX]), -1e18) < SEEN_SECONDS
               for agent_id, kind, version in versions)  # fmt: skip


def _seen_now(agent_id: int, kind: str, version: str) -> None:
    if len(_seen) >= SEEN_MAX:
        _seen.clear()
    _seen[(agent_id, str(kind), version)] = time.monotonic()  # str: the value, whether given a ChangeKind or not


def agent_change_observe(*, agent_id: int, kind: str, version: str, trace_id: str) -> ChangeEvent | None:
    """Ingest saw ``version`` (a prompt or model version) on ``trace_id`` of the agent. Records it the
    first time only (None otherwise), flagged ``during_freeze`` when the freeze is on. Safe to call
    concurrently: the unique (agent, kind, version) decides which trace is first."""
    version = (version or "").strip()[:VERSION_MAX]
    if not version or kind not in (ChangeKind.PROMPT, ChangeKind.MODEL):
        return None
    if ChangeEvent.objects.filter(agent_id=agent_id, kind=kind, version=version).exists():
        _seen_now(agent_id, kind, version)
        return None
    frozen = FleetGate.objects.filter(pk=1, change_freeze=True).exists()
    try:
        with transaction.atomic():
            event = ChangeEvent.objects.create(
                agent_id=agent_id,
                kind=kind,
                version=version,
                description=f"{ChangeKind(kind).label} version {version} first seen in traffic",
                actor_label="ingest",
                source=ChangeSource.INGEST,
                first_trace_id=trace_id[:32],
                during_freeze=frozen,
                created_at=clock.now(),
            )
    except IntegrityError:
        _seen_now(agent_id, kind, version)
        return None  # another batch recorded it first
    transaction.on_commit(lambda: _seen_now(agent_id, kind, version))  # not before: a rollback undoes it
    return event


def change_trace_url(event: ChangeEvent) -> str | None:
    """The link to the first trace that carried the change (None when a pipeline recorded it)."""
    if not event.first_trace_id:
        return None
    return f"/traces/{quote(event.first_trace_id)}/?agent={quote(event.agent.slug)}"


def freeze_guarded(what: str) -> Callable[[F], F]:
    """Refuse the decorated configuration write with ChangeFrozen while the change freeze is on."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            change_freeze_refuse(what=what)
            return fn(*args, **kwargs)

        return cast(F, guarded)

    return wrap
