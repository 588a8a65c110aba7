"""Receivers that run the gameday clock: each existing signal, for a drill's agent, stamps one mark."""

from agents.models import Agent, AuditAction
from demo.gamedays.services import gameday_mark
from evals.models import EvalCase
from incidents.models import Alert, Incident, TimelineKind
from traces.models import Trace

GATE_MARKS = {AuditAction.KILL: "contained", AuditAction.PAUSE: "contained", AuditAction.BUDGET_FREEZE: "budget_frozen"}


def on_gate_changed(sender: object, *, agent: Agent, action: str, **kwargs: object) -> None:
    mark = GATE_MARKS.get(action)  # type: ignore[call-overload]
    if mark:
        gameday_mark(agent_id=agent.pk, mark=mark)


def on_alert_changed(sender: object, *, alert_id: int, event: str, **kwargs: object) -> None:
    if event != "raised":
        return
    agent_id = Alert.objects.filter(pk=alert_id).values_list("agent_id", flat=True).first()
    if agent_id is not None:
        gameday_mark(agent_id=agent_id, mark="detected")


def on_step_flagged(sender: object, *, trace: Trace, **kwargs: object) -> None:
    gameday_mark(agent_id=trace.agent_id, mark="step_flagged")


def on_timeline_recorded(sender: object, *, incident_id: int, kind: str, **kwargs: object) -> None:
    if kind != TimelineKind.BLAST_RADIUS:
        return
    for agent_id in Incident.agents.through.objects.filter(incident_id=incident_id).values_list("agent_id", flat=True):
        gameday_mark(agent_id=agent_id, mark="blast_radius")


def on_eval_case_saved(
    sender: object, *, instance: EvalCase, created: bool, raw: bool = False, **kwargs: object
) -> None:
    if created and not raw:
        gameday_mark(agent_id=instance.agent_id, mark="eval_captured")
