"""One past incident's life, replayed step by step through the services at its own times (``core.clock.at``)."""

import random
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.models import Agent
from agents.services import (
    agent_budget_freeze,
    agent_budget_unfreeze,
    agent_kill,
    agent_pause,
    agent_resume,
    agent_tool_disable,
    agent_tool_enable,
)
from core import clock
from core.actors import Actor
from demo.fleet.agents import AGENTS_BY_SLUG
from demo.fleet.history_stories import Story
from demo.fleet.history_text import Facts, fill, note_assess, note_cause, note_fix, sections
from demo.fleet.runs import _Trace
from evals.services import RunResult, eval_case_capture, eval_runs_record
from incidents.models import ActionItem, Incident, IncidentStatus, PostMortem, RunbookPhase, Severity
from incidents.postmortems.selectors import postmortem_template_default, postmortem_template_list
from incidents.postmortems.services import (
    action_item_add,
    action_item_status_set,
    postmortem_section_save,
    postmortem_start,
    postmortem_status_set,
)
from incidents.services import (
    incident_close,
    incident_declare,
    incident_failure_class_set,
    incident_severity_set,
    incident_status_set,
    runbook_tick,
    timeline_note_add,
)
from traces.models import Step, Trace
from traces.services import trace_flag

ON_CALL = ("maya.chen", "tomas.berg", "aisha.okafor", "li.wei", "sam.ortiz")
CI = Actor.system("ci: evals nightly")
# Where an incident's life stops: closed, or still open work.
CLOSED, REVIEW, DRAFT, RESOLVED, CONTAINED = "closed", "review", "draft", "resolved", "contained"

WINDOW_DAYS = 120
# Minutes from declaration to containment, hours to resolution, per severity (older incidents took longer).
CONTAIN_MINUTES = {Severity.SEV1: (2, 7), Severity.SEV2: (4, 18), Severity.SEV3: (8, 45)}
RESOLVE_HOURS = {Severity.SEV1: (1.5, 5), Severity.SEV2: (3, 10), Severity.SEV3: (5, 30)}


def _version(prompt_version: str, days_ago: int, later: int = 0) -> str:
    """The agent's prompt version ``days_ago`` days back: one release about every 25 days."""
    name, _, number = prompt_version.rpartition("@v")
    return f"{name}@v{max(1, int(number) - days_ago // 25) + later}"


def _tool_runs(steps: list[dict]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for step in steps:
        if step["kind"] == "tool" and step.get("status") != "error":
            if runs and runs[-1][0] == step["tool"]:
                runs[-1] = (step["tool"], runs[-1][1] + 1)
            else:
                runs.append((step["tool"], 1))
    return runs


@dataclass
class _Past:
    key: str
    days_ago: int
    story: Story
    severity: str
    end: str
    options: str
    declared: datetime
    traces: list[_Trace]
    verified: list[_Trace]  # runs after the fix, not attached: the golden run where the fleet has none


class _Replay:
    """One past incident's life, each step through its service at its own time."""

    def __init__(self, past: _Past, rng: random.Random, cutoff: datetime):
        self.past, self.story, self.rng, self.cutoff = past, past.story, rng, cutoff
        self.person = Actor.system(rng.choice(ON_CALL))
        self.slow = 1 + past.days_ago / WINDOW_DAYS  # the team got faster over the months
        spec = AGENTS_BY_SLUG[self.story.agents[0]]
        self.version = _version(spec.prompt_version, past.days_ago)
        self.fixed = _version(spec.prompt_version, past.days_ago, later=1)
        self.model = spec.model_version
        self.agents = {a.slug: a for a in Agent.objects.filter(slug__in=self.story.agents)}
        stored = {t.trace_id: t for t in Trace.objects.filter(trace_id__in=[t.trace_id for t in past.traces])}
        self.traces = [stored[t.trace_id] for t in past.traces]
        self.contained: datetime | None = None
        self.resolved: datetime | None = None
        self.case_ref = ""

    def at(self, when: datetime) -> AbstractContextManager[datetime]:
        return clock.at(min(when, self.cutoff))

    def facts(self) -> Facts:
        primary = self.past.traces[0]
        return Facts(
            agent=self.story.agents[0], version=self.version, fixed=self.fixed, model=self.model,
            runs=len(self.past.traces), users=len({t.user_id for t in self.past.traces}),
            declared=self.past.declared, contained=self.contained, resolved=self.resolved,
            case_ref=self.case_ref, tool_calls=_tool_runs(primary.steps),
        )  # fmt: skip

    def minutes(self, low: float, high: float) -> timedelta:
        return timedelta(minutes=self.rng.uniform(low, high) * self.slow)

    def run(self) -> Incident:
        past, story, r = self.past, self.story, self.rng
        late, raised = "late-class" in past.options, "raised" in past.options
        declared_severity = {"SEV1": "SEV2", "SEV2": "SEV3"}[past.severity] if raised else past.severity
        t = past.declared
        with self.at(t):
            incident = incident_declare(
                title=story.titles[past.days_ago % len(story.titles)], severity=declared_severity,
                failure_class=None if late else story.failure_class, agents=list(self.agents.values()),
                traces=self.traces, actor=self.person,
                summary=fill(story.what, self.facts()),
            )  # fmt: skip
        t += timedelta(minutes=r.uniform(0.5, 2))
        with self.at(t):
            incident_status_set(incident=incident, status=IncidentStatus.INVESTIGATING, actor=self.person,
                                note=f"{self.person.label} is looking; trajectories attached.")  # fmt: skip
        if late:
            t += timedelta(minutes=r.uniform(1, 4))
            with self.at(t):
                incident_failure_class_set(incident=incident, failure_class=story.failure_class, actor=self.person,
                                           note="Classified from the flagged trajectory.")  # fmt: skip
        lo, hi = CONTAIN_MINUTES[Severity(declared_severity)]
        t = past.declared + self.minutes(lo, hi)
        self.contain(incident, t)
        self.contained = t
        self.tick(incident, RunbookPhase.CONTAIN, t + timedelta(minutes=1))
        if raised:
            with self.at(t + timedelta(minutes=r.uniform(2, 6))):
                incident_severity_set(incident=incident, severity=past.severity, actor=self.person,
                                      note="Raised: the blast radius is larger than it first looked.")  # fmt: skip
        t += timedelta(minutes=r.uniform(8, 25))
        with self.at(t):
            primary = self.traces[0]
            trace_flag(trace=primary, span_id=self.flag_span(primary), note=story.flag_note, actor=self.person)
        with self.at(t + timedelta(minutes=2)):
            timeline_note_add(incident=incident, body=note_assess(story, self.facts()), actor=self.person)
        self.tick(incident, RunbookPhase.ASSESS, t + timedelta(minutes=4))
        t += timedelta(minutes=r.uniform(10, 40))
        with self.at(t):
            timeline_note_add(incident=incident, body=note_cause(story, self.facts()), actor=self.person)
            case = eval_case_capture(trace=self.traces[0], incident=incident, expected_behaviour=story.expected,
                                     actor=self.person)  # fmt: skip
        self.case_ref = f"EC-{case.pk}"
        if past.end == CONTAINED:
            return incident
        red_first = r.random() < 0.45
        if red_first:
            with self.at(t + timedelta(minutes=r.uniform(10, 30))):
                eval_runs_record(results=[RunResult(case=case, passed=False, version=self.version,
                                                    output=f"Reproduced on {self.version}: {story.flag_note}")],
                                 source="ci: regression suite", actor=CI)  # fmt: skip
        low, high = RESOLVE_HOURS[Severity(past.severity)]
        t = past.declared + self.minutes(low * 60, high * 60)
        with self.at(t - timedelta(minutes=12)):
            eval_runs_record(results=[RunResult(case=case, passed=True, version=self.fixed, output="Passed.")],
                             source="ci: regression suite", actor=CI)  # fmt: skip
        with self.at(t - timedelta(minutes=6)):
            timeline_note_add(incident=incident, body=note_fix(story, self.facts()), actor=self.person)
        self.release(incident, t - timedelta(minutes=3))
        self.tick(incident, RunbookPhase.REMEDIATE, t - timedelta(minutes=1))
        self.resolved = t
        with self.at(t):
            incident_status_set(incident=incident, status=IncidentStatus.RESOLVED, actor=self.person)
        if past.end == RESOLVED or "no-pm" in past.options:
            return self.close(incident, t + timedelta(days=r.uniform(1, 3))) if past.end == CLOSED else incident
        return self.postmortem(incident, t)

    def flag_span(self, trace: Trace) -> str:
        steps = list(Step.objects.filter(trace=trace).order_by("started_at", "id"))
        children = [s for s in steps if s.parent_span_id]
        for step in children:
            if step.finish_reason == "length":
                return step.span_id
        for step in children:
            if step.tool_name in self.story.flag_tools:
                return step.span_id
        return next((s.span_id for s in children if s.kind == "llm"), children[0].span_id)

    def contain(self, incident: Incident, t: datetime) -> None:
        story, reason = self.story, f"{incident.ref}: {self.story.flag_note}"[:500]
        agent = self.agents[story.agents[0]]
        with self.at(t):
            if story.contain == "kill":
                agent_kill(agent=agent, actor=self.person, reason=reason, incident_number=incident.number)
            elif story.contain == "freeze":
                agent_budget_freeze(agent=agent, actor=self.person, reason=reason, incident_number=incident.number)
                agent_pause(agent=agent, actor=self.person, reason=reason, incident_number=incident.number)
            elif story.contain == "pause":
                for a in self.agents.values():
                    agent_pause(agent=a, actor=self.person, reason=reason, incident_number=incident.number)
            elif story.contain.startswith("tool:"):
                agent_tool_disable(agent=agent, tool=story.contain[5:], actor=self.person, reason=reason,
                                   incident_number=incident.number)  # fmt: skip
            incident.refresh_from_db()
            if incident.status != IncidentStatus.CONTAINED:  # on commit, the gate receiver moves it once all stop
                if story.contain == "none":
                    note = "Contained without stopping the agent: its output goes to review until the fix."
                elif story.contain.startswith("tool:"):
                    note = f"Tool `{story.contain[5:]}` disabled for {agent.slug}."
                else:
                    note = "Every linked agent is stopped."
                incident_status_set(incident=incident, status=IncidentStatus.CONTAINED, actor=self.person, note=note)

    def release(self, incident: Incident, t: datetime) -> None:
        story, reason = self.story, f"{incident.ref}: fix verified on the regression case ({self.fixed})"
        with self.at(t):
            for a in self.agents.values():
                a.refresh_from_db()
                if a.state != "active":
                    agent_resume(agent=a, actor=self.person, reason=reason, incident_number=incident.number)
                if a.budget_frozen:
                    agent_budget_unfreeze(agent=a, actor=self.person, reason=reason, incident_number=incident.number)
            if story.contain.startswith("tool:"):
                agent_tool_enable(agent=self.agents[story.agents[0]], tool=story.contain[5:], actor=self.person,
                                  reason=reason, incident_number=incident.number)  # fmt: skip

    def tick(self, incident: Incident, phase: str, t: datetime) -> None:
        with self.at(t):
            for step in incident.runbook_steps.filter(phase=phase, done_at__isnull=True).order_by("order", "id"):
                runbook_tick(incident=incident, step_id=step.pk, actor=self.person)

    def postmortem(self, incident: Incident, resolved: datetime) -> Incident:
        past, r = self.past, self.rng
        t = resolved + timedelta(hours=r.uniform(2, 20))
        with self.at(t):
            template = postmortem_template_default(incident=incident, templates=postmortem_template_list())
            pm = postmortem_start(incident=incident, template=template, actor=self.person)
        bodies = sections(template.slug if template else "", self.story, self.facts())
        keys = [s["key"] for s in pm.sections if s["key"] in bodies]
        if past.end == DRAFT:
            keys = keys[:2]
        for key in keys:
            t += timedelta(minutes=r.uniform(5, 25))
            with self.at(t):
                postmortem_section_save(postmortem=pm, key=key, body=bodies[key], actor=self.person)
        items = []
        with self.at(t + timedelta(minutes=5)):
            for kind, title in self.story.actions:
                due = (t + timedelta(days=r.choice([7, 14, 21]))).date()
                items.append(action_item_add(postmortem=pm, title=title, kind=kind, due_date=due, actor=self.person))
        if past.end == DRAFT:
            return incident
        t += timedelta(hours=r.uniform(18, 40))
        with self.at(t):
            postmortem_status_set(postmortem=pm, status=PostMortem.Status.IN_REVIEW, actor=self.person)
        if past.end == REVIEW:
            return incident
        t += timedelta(hours=r.uniform(10, 48))
        with self.at(t):
            postmortem_status_set(
                postmortem=pm, status=PostMortem.Status.PUBLISHED, actor=Actor.system(r.choice(ON_CALL))
            )
        self.tick(incident, RunbookPhase.LEARN, t + timedelta(minutes=10))
        close_at = t + timedelta(days=r.uniform(1, 3))
        for i, item in enumerate(items):
            done = past.severity == Severity.SEV1 or i == 0 or r.random() < 0.4
            when = t + timedelta(days=r.uniform(0.5, 2.5 if past.severity == Severity.SEV1 else 12))
            if done and when < self.cutoff:
                status = ActionItem.Status.WONT_DO if (i == 2 and past.days_ago % 2) else ActionItem.Status.DONE
                with self.at(when):
                    action_item_status_set(item=item, status=status, actor=self.person)
                if past.severity == Severity.SEV1:
                    close_at = max(close_at, when + timedelta(hours=2))
            elif past.severity == Severity.SEV1:
                return incident  # a SEV1 stays open until its action items are done
        return self.close(incident, close_at)

    def close(self, incident: Incident, t: datetime) -> Incident:
        if t >= self.cutoff:
            return incident
        self.tick(incident, RunbookPhase.LEARN, t - timedelta(minutes=5))
        with self.at(t):
            return incident_close(incident=incident, actor=self.person, confirm=True,
                                  note="Closed in the weekly incident review.")  # fmt: skip
