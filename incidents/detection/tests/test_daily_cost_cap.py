"""The daily cost cap, enforced from ingested spend: after each batch and by beat, once per day and cap."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from agents import services
from agents.models import Agent, AuditAction, AuditEntry, GateState
from core.actors import Actor
from incidents.detection import registry
from incidents.detection.runner import detect_batch
from incidents.detection.schedule import detect_scheduled
from incidents.models import Alert
from traces.models import Trace
from traces.selectors.spend import agent_spend_today


def _run(make_spans, ingest, agent, cost, start=None):
    """One run costing ``cost``, ingested; returns its Trace pk."""
    spans = make_spans(agent=agent, steps=[{"kind": "llm", "cost": cost}], start=start)
    ingest(spans)
    return Trace.objects.get(trace_id=spans[0].trace_id).pk


def _pauses(agent):
    return AuditEntry.objects.filter(agent=agent, action=AuditAction.PAUSE)


def test_both_checks_are_registered():
    assert registry["daily_cost_cap"].kind == "streaming"
    assert registry["daily_cost_cap_sweep"].kind == "scheduled"


def test_spend_today_counts_runs_started_since_midnight_utc(make_agent, make_spans, ingest):
    agent = make_agent("spender", daily_cost_cap=Decimal("1"))
    _run(make_spans, ingest, "spender", 0.30)
    _run(make_spans, ingest, "spender", 0.25)
    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(minutes=5)
    _run(make_spans, ingest, "spender", 9.00, start=yesterday)
    assert agent_spend_today(agent) == Decimal("0.55")


def test_crossing_the_daily_cap_pauses_the_agent_once_audited_as_the_detector(make_agent, make_spans, ingest):
    agent = make_agent("spender", daily_cost_cap=Decimal("1.00"))
    under = _run(make_spans, ingest, "spender", 0.60)
    assert detect_batch(trace_pks=[under]) == []
    assert Agent.objects.get(pk=agent.pk).state == GateState.ACTIVE

    over = _run(make_spans, ingest, "spender", 0.55)
    (alert,) = detect_batch(trace_pks=[over])
    agent.refresh_from_db()
    assert agent.state == GateState.PAUSED
    (pause,) = _pauses(agent)
    assert pause.actor_label == "detector:daily_cost_cap"
    assert "$1.15" in pause.reason and "$1.00 cap" in pause.reason
    assert alert.detector == "daily_cost_cap" and alert.details["spend"] == "1.150000"

    # A responder resumes it the same day: the next batches over the same cap do not pause it again.
    services.agent_resume(agent=agent, actor=Actor.system("erin"), reason="the spend is expected today")
    more = _run(make_spans, ingest, "spender", 0.50)
    detect_batch(trace_pks=[more])
    detect_scheduled(agents=[Agent.objects.get(pk=agent.pk)])
    assert Agent.objects.get(pk=agent.pk).state == GateState.ACTIVE
    assert _pauses(agent).count() == 1

    # Raising the cap and crossing the new one pauses it again.
    services.agent_gate_settings_set(agent=agent, actor=Actor.system("erin"), daily_cost_cap=Decimal("2.00"))
    last = _run(make_spans, ingest, "spender", 0.40)
    detect_batch(trace_pks=[last])
    assert Agent.objects.get(pk=agent.pk).state == GateState.PAUSED
    assert _pauses(agent).count() == 2
    assert Alert.objects.filter(detector="daily_cost_cap", agent=agent).count() == 2


def test_beat_pauses_an_agent_whose_batch_detection_was_missed(make_agent, make_spans, ingest):
    agent = make_agent("spender", daily_cost_cap=Decimal("0.50"))
    _run(make_spans, ingest, "spender", 0.70)  # its streaming detection never ran
    detect_scheduled(agents=[agent])
    agent.refresh_from_db()
    assert agent.state == GateState.PAUSED
    assert _pauses(agent).get().actor_label == "detector:daily_cost_cap"


def test_no_cap_or_under_it_pauses_nothing(make_agent, make_spans, ingest):
    uncapped = make_agent("free", session_cost_cap=None)
    pk = _run(make_spans, ingest, "free", 50.0)
    assert [a for a in detect_batch(trace_pks=[pk]) if a.detector == "daily_cost_cap"] == []
    detect_scheduled(agents=[uncapped])
    assert Agent.objects.get(pk=uncapped.pk).state == GateState.ACTIVE


def test_the_agent_page_shows_todays_spend_and_a_resume_over_the_cap_warns(
    make_agent, make_spans, ingest, responder, make_client
):
    agent = make_agent("spender", daily_cost_cap=Decimal("1.00"), session_cost_cap=None)
    client = make_client(responder)
    _run(make_spans, ingest, "spender", 0.40)
    page = client.get("/agents/spender/").content.decode()
    assert "Spent today (UTC)" in page and "$0.40 of $1.00" in page and "over the daily cap" not in page

    detect_batch(trace_pks=[_run(make_spans, ingest, "spender", 0.80)])
    assert Agent.objects.get(pk=agent.pk).state == GateState.PAUSED
    page = client.get("/agents/spender/").content.decode()
    assert "$1.20 of $1.00" in page and "over the daily cap" in page

    response = client.post("/agents/spender/resume", {"reason": "expected spend"}, follow=True)
    assert Agent.objects.get(pk=agent.pk).state == GateState.ACTIVE
    text = response.content.decode()
    assert "spender resumed." in text
    assert "over its daily cost cap of $1.00: it will not be paused again today for this cap" in text
