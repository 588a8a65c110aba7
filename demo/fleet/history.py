"""The demo history: four months of past incidents, replayed through the real services at the times they happened.

Each past incident gets a few failure trajectories, ingested at their past time as a backfill (no live
detection), then goes through its life with ``core.clock.at`` set to each moment: declared, triaged,
contained through the gate services (audit rows), assessed, flagged, captured as an eval case, red then
green in CI, resolved, written up from its template, reviewed, published, its action items worked
off, closed. The latest few stop part-way, as open work does. Everything is seeded; the history's
trace ids depend on the seed alone, so a second load finds them and adds nothing.
"""

import hashlib
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agents.models import AuditEntry
from core import clock
from demo.fleet.agents import AGENTS_BY_SLUG
from demo.fleet.failures import _Failures
from demo.fleet.history_replay import CI, CLOSED, CONTAINED, DRAFT, RESOLVED, REVIEW, _Past, _Replay, _version
from demo.fleet.history_stories import STORIES, Story
from demo.fleet.load import DEMO_ACTOR, _analyze
from demo.fleet.plan import BATCH_SPANS
from demo.fleet.runs import _Run, _Trace
from demo.fleet.traffic import _Gen
from evals.models import EvalCase, EvalRun
from evals.services import RunResult, eval_runs_record
from incidents.models import ActionItem, IncidentStatus, PostMortem
from traces.ingest.spans import Span
from traces.models import Trace
from traces.services import trace_golden_set, trace_ingest
from traces.synthetic import trajectory_spans

HISTORY_ATTRIBUTE = "firebreak.demo.history"  # on each history trajectory's root span: the incident it belongs to
# Days before the anchor, story, severity, how far it got; then options: "late-class" (declared
# unclassified, classified during triage), "raised" (declared one severity lower), "no-pm" (a SEV3
# closed on its eval alone). Recurrences: the same story within 30 days (loop, invoice).
# fmt: off
PLAN: list[tuple[int, str, str, str, str]] = [
    (117, "loop", "SEV2", CLOSED, ""),
    (113, "onboarding-links", "SEV3", CLOSED, ""),
    (109, "merge", "SEV1", CLOSED, ""),
    (105, "sql-quality", "SEV2", CLOSED, "late-class"),
    (101, "triage-intent", "SEV3", CLOSED, "no-pm"),
    (97, "refusal", "SEV2", CLOSED, ""),
    (94, "loop", "SEV2", CLOSED, "raised"),
    (90, "invoice", "SEV1", CLOSED, ""),
    (86, "research-drift", "SEV3", CLOSED, ""),
    (83, "pingpong", "SEV2", CLOSED, "late-class"),
    (79, "refund-intent", "SEV3", CLOSED, "no-pm"),
    (75, "injection", "SEV1", CLOSED, ""),
    (71, "cost", "SEV2", CLOSED, ""),
    (67, "invoice", "SEV2", CLOSED, ""),
    (64, "truncation", "SEV3", CLOSED, ""),
    (60, "executor-scale", "SEV1", CLOSED, "raised"),
    (57, "onboarding-intent", "SEV3", CLOSED, "late-class"),
    (53, "refund-double", "SEV1", CLOSED, ""),
    (49, "sql-quality", "SEV3", CLOSED, ""),
    (46, "merge", "SEV2", CLOSED, ""),
    (42, "pingpong", "SEV3", CLOSED, "no-pm"),
    (38, "refusal", "SEV3", CLOSED, ""),
    (35, "cost", "SEV2", CLOSED, "late-class"),
    (31, "truncation", "SEV2", CLOSED, "raised"),
    (27, "triage-intent", "SEV2", CLOSED, ""),
    (23, "injection", "SEV1", CLOSED, ""),
    (19, "loop", "SEV3", CLOSED, ""),
    (15, "research-drift", "SEV3", CLOSED, "no-pm"),
    (12, "executor-scale", "SEV2", CLOSED, ""),
    (9, "refund-intent", "SEV3", RESOLVED, ""),
    (6, "invoice", "SEV2", REVIEW, ""),
    (4, "merge", "SEV1", DRAFT, ""),
    (2, "truncation", "SEV3", CONTAINED, "late-class"),
]
# fmt: on
@dataclass(frozen=True)
class HistorySummary:
    incidents: int
    closed: int
    open_work: int
    traces: int
    spans_stored: int
    audit_rows: int
    postmortems_published: int
    action_items: int
    eval_cases: int
    eval_runs: int
    elapsed_seconds: float
    already_loaded: bool = False


def _ids(seed: int) -> random.Random:
    digest = hashlib.sha256(f"firebreak-history|{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def history_first_trace_id(seed: int) -> str:
    """The id of the history's first trajectory: stored means this seed's history is loaded."""
    return f"{_ids(seed).getrandbits(128):032x}"


def _build(story: Story, gen: _Gen, rng: random.Random) -> list[_Trace]:
    """The incident's trajectories, the flagged one first."""
    if story.builder.startswith("healthy:"):
        builder = getattr(gen, story.builder.split(":", 1)[1])
        traces: list[_Trace] = []
        for _ in range(rng.randint(2, 3)):
            user = gen.user()
            made = builder(user)
            for t in made if isinstance(made, list) else [made]:
                t.user_id = user
                traces.append(t)
    else:
        build = getattr(_Failures(gen), story.builder)
        traces = []
        for _ in range(rng.randint(1, 3)):
            traces.extend(build()[:3])
        traces = traces[:4]
    traces.sort(key=lambda t: t.agent != story.agents[0])
    return traces


def _handoff_verified(rng: random.Random, start: datetime) -> _Trace:
    """After the ping-pong fix: the production change goes to the executor once, with its approval.

    The fleet's traffic has no config-change run that went right (its only one is the ping-pong
    example), so this run becomes the class's golden run.
    """
    run = _Run(rng, "planner", flaky=False)
    request_id, plan_id = f"REQ-{rng.randint(1000, 9999)}", f"PLAN-{rng.randint(10000, 99999)}"
    question = "Rotate the database credentials for billing-service in production."
    runbook = {"runbook_id": "RB-billing-service-credentials", "steps": 4, "approved_by": "platform-ops"}
    run.llm(f"Request {request_id}: credentials rotation; looking up the runbook.", prompt=question)
    run.tool("lookup_runbook", {"service": "billing-service", "topic": "credentials"}, runbook)
    run.tool("create_plan", {"request_id": request_id, "runbook_id": runbook["runbook_id"]}, {"plan_id": plan_id})
    handoff = {"to": "executor", "request_id": request_id, "plan_id": plan_id, "approval": runbook["runbook_id"]}
    run.tool("handoff", handoff, {"accepted": True, "hand_offs": 1})
    answer = f"Plan {plan_id} handed to the executor with the runbook's approval."
    run.llm(answer)
    trace = _Trace("planner", "config-change", question, answer, run.steps, start=start)
    return trace


def _plan(seed: int, anchor: datetime) -> tuple[list[_Past], list[list[Span]]]:
    rng, ids = random.Random(seed * 7919 + 1), _ids(seed)
    gen = _Gen(rng, anchor)
    pasts, spans = [], []
    for n, (days_ago, key, severity, end, options) in enumerate(PLAN, 1):
        story = STORIES[key]
        hour = rng.choice([2, 4, 7, 9, 10, 11, 13, 14, 15, 16, 18, 21])
        declared = (anchor - timedelta(days=days_ago)).replace(hour=hour, minute=rng.randint(0, 59), second=0)
        declared = min(declared, anchor - timedelta(hours=30))  # the latest ones have a day to move on
        traces = _build(story, gen, rng)
        lag = timedelta(minutes=rng.uniform(3, 20))
        for i, t in enumerate(traces):
            t.start = declared - lag - t.duration - timedelta(minutes=i * rng.uniform(3, 11))
        verified = [_handoff_verified(rng, declared + timedelta(days=3))] if story.builder == "ping_pong" else []
        for t in [*traces, *verified]:  # ids in build order: the first one drawn is history_first_trace_id
            spec = AGENTS_BY_SLUG[t.agent]
            t.trace_id = f"{ids.getrandbits(128):032x}"
            t.session_id = t.session_id or f"sess-{ids.getrandbits(48):012x}"
            t.user_id = t.user_id or gen.user()
            made = trajectory_spans(
                agent=t.agent, steps=t.steps, trace_id=t.trace_id, start=t.start, user_id=t.user_id,
                session_id=t.session_id, input_class=t.input_class, root_input=t.root_input,
                root_output=t.root_output, model_version=spec.model_version, status=t.status, rng=ids,
                prompt_version=t.prompt_version or _version(spec.prompt_version, days_ago, later=t in verified),
            )  # fmt: skip
            made[0].attributes = {HISTORY_ATTRIBUTE: f"past-{n}" + ("-verified" if t in verified else "")}
            spans.extend(made)
        pasts.append(_Past(f"past-{n}", days_ago, story, severity, end, options, declared, traces, verified))
    batches: list[list[Span]] = [[]]
    for span in spans:
        if len(batches[-1]) >= BATCH_SPANS:
            batches.append([])
        batches[-1].append(span)
    return pasts, batches


def history_load(*, seed: int = 7, anchor: datetime | None = None) -> HistorySummary:
    """Replay the history ending at ``anchor`` (default now) through the services; a no-op when loaded.

    Needs the demo agents registered (``fleet_load`` does it). Nothing is dated after ``anchor``
    minus an hour. Returns counts of what was written; ``already_loaded`` when the seed's history was
    found and nothing was written.
    """
    started = time.perf_counter()
    anchor = (anchor or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    if Trace.objects.filter(trace_id=history_first_trace_id(seed)).exists():
        return HistorySummary(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, time.perf_counter() - started, already_loaded=True)
    pasts, batches = _plan(seed, anchor)
    stored = sum(trace_ingest(spans=batch, backfill=True).stored for batch in batches)
    _analyze(Trace)
    rng = random.Random(seed * 104729 + 3)
    audit_before = _audit_count()
    incidents = [_Replay(past, rng, anchor - timedelta(hours=1)).run() for past in pasts]
    cases = list(EvalCase.objects.filter(incident__in=incidents))
    nightly = anchor - timedelta(hours=rng.uniform(4, 8))
    latest_green = [c for c in cases if c.runs.exists()]
    with clock.at(nightly):
        eval_runs_record(
            results=[
                RunResult(case=c, passed=True, output="Passed.", version=c.agent.prompt_version) for c in latest_green
            ],
            source="ci: evals nightly",
            actor=CI,
        )
    for past in pasts:
        for t in past.verified:
            trace = Trace.objects.get(trace_id=t.trace_id, agent__slug=t.agent)
            golden = Trace.objects.filter(agent_id=trace.agent_id, input_class=trace.input_class, is_golden=True)
            if not golden.exists():
                with clock.at(t.end + timedelta(hours=1)):
                    trace_golden_set(trace=trace, actor=DEMO_ACTOR)
    return HistorySummary(
        incidents=len(incidents),
        closed=sum(i.status == IncidentStatus.CLOSED for i in incidents),
        open_work=sum(i.status != IncidentStatus.CLOSED for i in incidents),
        traces=sum(len(p.traces) for p in pasts),
        spans_stored=stored,
        audit_rows=_audit_count() - audit_before,
        postmortems_published=PostMortem.objects.filter(
            incident__in=incidents, status=PostMortem.Status.PUBLISHED
        ).count(),
        action_items=ActionItem.objects.filter(postmortem__incident__in=incidents).count(),
        eval_cases=len(cases),
        eval_runs=EvalRun.objects.filter(case__in=cases).count(),
        elapsed_seconds=time.perf_counter() - started,
    )


def _audit_count() -> int:
    return AuditEntry.objects.count()
