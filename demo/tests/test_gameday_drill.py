"""A drill end to end on a live server: the injected simulated agent (a real process, the real SDK, spans
to the real ingest endpoint) is detected and auto-paused by the real detection path, and the clock says when."""

import time

import pytest

from agents.models import Agent, ApiKey
from demo.gamedays.models import Gameday
from demo.gamedays.tasks import gameday_inject_task

celery_app = gameday_inject_task.app


@pytest.fixture
def eager(settings, live_server):
    """Celery runs each task in place; the drill's agent process reaches the live server."""
    settings.FIREBREAK_BASE_URL = live_server.url
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_runaway_loop_drill_is_detected_and_auto_paused(reference_data, eager, make_client, responder):
    client = make_client(responder)
    r = client.post("/api/v1/gamedays", {"scenario": "runaway-loop"}, content_type="application/json")
    assert r.status_code == 201, r.content
    gid, slug = r.json()["id"], r.json()["agent"]

    def contained() -> bool:
        return client.get(f"/api/v1/gamedays/{gid}").json()["timings"]["contained"] is not None

    assert _wait(contained, 60), Gameday.objects.get(pk=gid).injection_error
    body = client.get(f"/api/v1/gamedays/{gid}").json()
    assert body["timings"]["detected"] is not None
    assert 0 <= body["timings"]["detected"] <= body["timings"]["contained"] < 60
    agent = Agent.objects.get(slug=slug)
    assert agent.state == "paused"
    assert agent.audit_entries.filter(action="pause", actor_label__startswith="detector").exists()
    assert agent.traces.exists()  # the spans came through ingest
    # the process stopped at its gate, and its key was revoked when it ended
    assert _wait(lambda: not ApiKey.objects.filter(agent=agent, revoked_at__isnull=True).exists(), 15)
    assert Gameday.objects.get(pk=gid).injection_error == ""


# The other five scenarios: (scenario, the detector that must see it, whether its default rule stops the agent).
# Where the rule only notifies, the drill is the team's to contain: a responder's kill stops the process.
SCENARIOS = [
    ("tool-misuse", "tool_not_allowed", True),
    ("context-drift", "truncation", False),
    ("safety-bypass", "injection", True),
    ("cost-spiral", "session_caps", True),
    ("silent-model-change", "model_change", False),
]


@pytest.mark.parametrize(("scenario", "detector", "auto_contained"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_each_drill_scenario_is_detected_by_its_detector_and_contained(
    reference_data, eager, make_client, responder, scenario, detector, auto_contained
):
    client = make_client(responder)
    r = client.post("/api/v1/gamedays", {"scenario": scenario}, content_type="application/json")
    assert r.status_code == 201, r.content
    gid, slug = r.json()["id"], r.json()["agent"]
    agent = Agent.objects.get(slug=slug)

    def timing(mark: str) -> float | None:
        return client.get(f"/api/v1/gamedays/{gid}").json()["timings"][mark]

    assert _wait(lambda: timing("detected") is not None, 60), Gameday.objects.get(pk=gid).injection_error

    def detectors() -> set[str]:
        alerts = client.get("/api/v1/alerts", {"agent": slug}).json()
        return {a["detector"] for a in (alerts["results"] if isinstance(alerts, dict) else alerts)}

    # Another detector may fire first on the same spans (context growth in a cost spiral): wait for this one.
    assert _wait(lambda: detector in detectors(), 30), detectors()
    if auto_contained:
        assert _wait(lambda: timing("contained") is not None, 30)
        agent.refresh_from_db()
        assert agent.state == "paused"
        assert agent.audit_entries.filter(action="pause", actor_label__startswith="detector").exists()
    else:
        agent.refresh_from_db()
        assert agent.state == "active" and timing("contained") is None  # notify only: nobody has contained it
        r = client.post(f"/api/v1/agents/{slug}/kill", {"reason": "drill"}, content_type="application/json")
        assert r.status_code == 200, r.content
        assert _wait(lambda: timing("contained") is not None, 10)
    assert timing("detected") <= timing("contained")
    # the process stopped at its gate (not by its time limit), and its key was revoked when it ended
    assert _wait(lambda: not ApiKey.objects.filter(agent=agent, revoked_at__isnull=True).exists(), 15)
    assert Gameday.objects.get(pk=gid).injection_error == ""
