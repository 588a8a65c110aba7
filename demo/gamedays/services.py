"""Gameday writes: start a drill (registering a drill agent when none is named), mark the clock, end it."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q

from agents.keys.services import api_key_create, api_key_revoke
from agents.models import Agent, ApiKey, ApiKeyScope
from agents.services import agent_register
from core import clock
from core.actors import Actor
from core.errors import Conflict
from core.roles import RESPONDER
from demo.gamedays.models import MARK_FIELDS, Gameday, GamedayMode, GamedayStatus, Scenario

DRILL_SESSION_COST_CAP = Decimal("0.50")
DRILL_SESSION_TOKEN_CAP = 100_000
DRILL_SESSION_STEP_CAP = 200


def _drill_slug(scenario: str) -> str:
    prefix = f"drill-{scenario}-"
    taken = set(Agent.objects.filter(slug__startswith=prefix).values_list("slug", flat=True))
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


@transaction.atomic
def gameday_start(*, scenario: str, actor: Actor, agent: Agent | None = None, mode: str = GamedayMode.DRILL) -> Gameday:
    """Start a gameday on ``agent`` (None: register a drill agent ``drill-<scenario>-<n>``).

    Raises ValidationError naming the field (nothing written) on an unknown scenario or mode, Conflict when
    the agent already has a running gameday. A drill's injection is queued after commit by the caller's
    ``gameday_inject`` (the task takes the id).
    """
    actor.require(RESPONDER)
    if scenario not in Scenario.values:
        raise ValidationError({"scenario": f"unknown scenario; one of {', '.join(Scenario.values)}"})
    if mode not in GamedayMode.values:
        raise ValidationError({"mode": "drill or tabletop"})
    created = agent is None
    if agent is None:
        slug = _drill_slug(scenario)
        agent = agent_register(
            slug=slug,
            name=f"DRILL {Scenario(scenario).label} #{slug.rsplit('-', 1)[1]}",
            owner="gameday",
            description=f"Drill agent registered for a {scenario} gameday.",
            environment="staging",
            allowed_tools=["lookup_order", "search", "send_email"],
            # Guardrails as a production agent would have them, so each scenario meets what catches it:
            # a cost spiral the session caps, a silent model change the expected model.
            model_version="gpt-4o",
            session_cost_cap=DRILL_SESSION_COST_CAP,
            session_token_cap=DRILL_SESSION_TOKEN_CAP,
            session_step_cap=DRILL_SESSION_STEP_CAP,
            actor=actor,
        )
        Agent.objects.filter(pk=agent.pk).update(is_drill=True)  # DRILL on its pages, alerts and notifications
        agent.is_drill = True
    else:
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        if Gameday.objects.filter(agent=agent, status=GamedayStatus.RUNNING).exists():
            raise Conflict(f"{agent.slug} already has a running gameday; finish or cancel it first")
    return Gameday.objects.create(
        scenario=scenario,
        agent=agent,
        mode=mode,
        agent_created=created,
        started_by=actor.user,
        started_at=clock.now(),
    )


def gameday_mark(*, agent_id: int, mark: str) -> int:
    """Stamp ``mark`` (now) on the agent's running gamedays that have not reached it yet; the first time
    wins. A gameday that reached every mark is finished. Returns how many gamedays were stamped."""
    if mark not in MARK_FIELDS:
        raise ValueError(f"unknown mark {mark!r}")
    now = clock.now()
    with transaction.atomic():
        stamped = Gameday.objects.filter(
            agent_id=agent_id, status=GamedayStatus.RUNNING, started_at__lte=now, **{f"{mark}__isnull": True}
        ).update(**{mark: now})
        if stamped:
            done = Q(status=GamedayStatus.RUNNING, agent_id=agent_id)
            for name in MARK_FIELDS:
                done &= Q(**{f"{name}__isnull": False})
            Gameday.objects.filter(done).update(status=GamedayStatus.FINISHED, ended_at=F(mark))
    return stamped


@transaction.atomic
def gameday_end(*, gameday: Gameday, actor: Actor, cancel: bool = False) -> Gameday:
    """Finish (or cancel) a running gameday: the clock stops; marks after this are not recorded."""
    actor.require(RESPONDER)
    locked = Gameday.objects.select_for_update().get(pk=gameday.pk)
    if locked.status != GamedayStatus.RUNNING:
        raise Conflict(f"{locked.ref} is already {locked.status}")
    locked.status = GamedayStatus.CANCELLED if cancel else GamedayStatus.FINISHED
    locked.ended_at = clock.now()
    locked.save(update_fields=["status", "ended_at"])
    return locked


@transaction.atomic
def gameday_injection_failed(*, gameday_id: int, error: str) -> None:
    Gameday.objects.filter(pk=gameday_id).update(injection_error=error[:2000])


def gameday_agent_key_create(*, gameday: Gameday) -> tuple[ApiKey, str]:
    """An agent key (ingest and gate) for the drill's simulated process; the raw value is never stored."""
    return api_key_create(
        agent=gameday.agent,
        scopes=[ApiKeyScope.INGEST, ApiKeyScope.GATE],
        name=f"{gameday.ref} drill process",
        actor=Actor.system("gameday"),
    )


def gameday_agent_key_revoke(*, key: ApiKey) -> None:
    api_key_revoke(key=key, actor=Actor.system("gameday"), reason="drill process ended")
