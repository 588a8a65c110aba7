"""Notifications go out through Apprise to every matching route, one retried task per (event, route),
each attempt logged on its Delivery. Against real local HTTP receivers, no network."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from agents.fleet import fleet_stop
from agents.services import agent_kill, agent_tool_disable
from core import clock
from core.actors import Actor
from incidents.alerts.services import alert_raise
from incidents.detection.base import Finding
from incidents.detection.engine import findings_handle
from incidents.models import Delivery, DetectorSetting, Incident
from incidents.notifications import tasks
from incidents.notifications.messages import alert_notice
from incidents.notifications.routes import routes_configured
from incidents.notifications.services import postmortems_overdue_fanout
from incidents.notifications.tests.receivers import http_receiver
from incidents.services import incident_severity_set, incident_status_set
from traces.models import Trace

pytestmark = pytest.mark.django_db
celery_app = tasks.notification_deliver_task.app

BASE = "https://firebreak.example"


@pytest.fixture
def eager(settings):
    """Celery runs each task in place (the tests here are about the message, not the broker)."""
    settings.FIREBREAK_BASE_URL = BASE
    settings.FIREBREAK_NOTIFY_RETRY_SECONDS = 0
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def json_url(receiver) -> str:
    return f"json://127.0.0.1:{receiver.port}/hook"


def test_an_alert_raised_under_the_notify_rule_posts_apprises_json_payload(
    eager, settings, traced_agent, django_capture_on_commit_callbacks
):
    DetectorSetting.objects.create(detector="context_growth", rule=DetectorSetting.Rule.NOTIFY)
    trace = Trace.objects.get(agent=traced_agent)
    with http_receiver() as receiver:
        settings.FIREBREAK_NOTIFY_URLS = [json_url(receiver)]
        finding = Finding(
            detector="context_growth", agent_id=traced_agent.pk, key="k1", title="Context grew 12×",
            trace_id=trace.pk, span_id="b" * 16, severity="SEV2",
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            [alert] = findings_handle([finding])
    [request] = receiver.requests
    payload = request.body
    # Apprise's documented JSON payload: version, title, message, attachments, type.
    assert request.path == "/hook"
    assert request.headers["Content-Type"].startswith("application/json")
    assert set(payload) == {"version", "title", "message", "attachments", "type"}
    assert payload["version"] == "1.0"
    assert payload["type"] == "warning"
    assert payload["attachments"] == []
    assert payload["title"] == "[SEV2] Alert raised: Context grew 12× (refund-bot)"
    assert "Detector context_growth on agent refund-bot, seen 1×." in payload["message"]
    assert "Rule: Notify." in payload["message"]
    span = "b" * 16
    assert f"{BASE}/traces/{trace.trace_id}/?agent=refund-bot&at={span}#step-{span}" in payload["message"]
    [delivery] = Delivery.objects.filter(alert=alert)
    assert (delivery.channel, delivery.target, delivery.event, delivery.status, delivery.attempts) == (
        "apprise", "default", "alert.raised", "sent", 1,
    )  # fmt: skip
    assert delivery.agent == traced_agent


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_teams_workflows_gets_the_adaptive_card_apprise_documents(
    eager, settings, traced_agent, django_capture_on_commit_callbacks
):
    with http_receiver(tls=True) as receiver:
        settings.FIREBREAK_NOTIFY_URLS = [f"workflows://127.0.0.1:{receiver.port}/wf-1234/sig-abcd/?verify=no&image=no"]
        with django_capture_on_commit_callbacks(execute=True):
            alert_raise(
                detector="loop", agent=traced_agent, fingerprint="wf", title="Refund loop", suggested_severity="SEV1"
            )
    [request] = receiver.requests
    # The Workflows trigger URL: /workflows/<workflow>/triggers/manual/paths/invoke?api-version&sp&sv&sig
    assert request.path == "/workflows/wf-1234/triggers/manual/paths/invoke"
    assert request.query["sig"] == ["sig-abcd"]
    assert request.query["sp"] == ["/triggers/manual/run"]
    assert request.query["sv"] == ["1.0"]
    assert "api-version" in request.query
    card = request.body
    assert card["type"] == "message"
    [attachment] = card["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = attachment["content"]
    assert content["type"] == "AdaptiveCard"
    assert content["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert content["version"]
    blocks = {b["id"]: b for b in content["body"] if b["type"] == "TextBlock"}
    assert blocks["title"]["text"] == "[SEV1] Alert raised: Refund loop (refund-bot)"
    assert "Detector loop on agent refund-bot" in blocks["body"]["text"]
    assert Delivery.objects.get().status == "sent"


def test_routes_match_on_agent_severity_and_event_kind(
    eager, settings, make_agent, traced_agent, responder, django_capture_on_commit_callbacks
):
    other = make_agent("search-bot")
    with http_receiver() as payments, http_receiver() as gates, http_receiver() as everything:
        settings.FIREBREAK_NOTIFY_URLS = [json_url(everything)]
        settings.FIREBREAK_NOTIFY_ROUTES = json.dumps([
            {"name": "payments-oncall", "urls": [json_url(payments)], "agents": ["refund-bot"],
             "severities": ["SEV1", "SEV2"], "events": ["alert", "gate", "incident"]},
            {"name": "gate-log", "urls": [json_url(gates)], "events": ["gate"]},
        ])  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            alert_raise(
                detector="loop", agent=traced_agent, fingerprint="a1", title="SEV1 on refund", suggested_severity="SEV1"
            )
            alert_raise(
                detector="loop", agent=traced_agent, fingerprint="a2", title="SEV3 on refund", suggested_severity="SEV3"
            )
            alert_raise(
                detector="loop", agent=other, fingerprint="a3", title="SEV1 on search", suggested_severity="SEV1"
            )
            agent_kill(agent=other, actor=Actor.person(responder), reason="search bot spamming")
    titles = lambda r: [b["title"] for b in r.bodies]  # noqa: E731
    assert titles(payments) == ["[SEV1] Alert raised: SEV1 on refund (refund-bot)"]
    assert titles(gates) == [f"search-bot — Killed by {responder.username}"]
    assert len(everything.bodies) == 4
    assert sorted(Delivery.objects.values_list("target", flat=True)) == ["default"] * 4 + [
        "gate-log",
        "payments-oncall",
    ]


def test_a_kill_notifies_who_and_why_and_the_agent_page_lists_it(
    eager, settings, traced_agent, responder, make_client, django_capture_on_commit_callbacks
):
    with http_receiver() as receiver:
        settings.FIREBREAK_NOTIFY_URLS = [json_url(receiver)]
        with django_capture_on_commit_callbacks(execute=True):
            agent_kill(agent=traced_agent, actor=Actor.person(responder), reason="refunds issued twice")
    [payload] = receiver.bodies
    assert payload["title"] == f"refund-bot — Killed by {responder.username}"
    assert "Why: refunds issued twice" in payload["message"]
    assert f"{BASE}/agents/refund-bot/" in payload["message"]
    assert payload["type"] == "failure"
    [delivery] = Delivery.objects.all()
    assert (delivery.event, delivery.agent, delivery.status) == ("gate.kill", traced_agent, "sent")
    page = make_client(responder).get("/incidents/agents/refund-bot/deliveries/", headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert b"gate.kill" in page.content and b"default" in page.content


def test_a_receiver_answering_500_is_retried_then_failed_with_why_on_the_incident_page(
    eager, settings, make_incident, responder, make_client, django_capture_on_commit_callbacks
):
    with http_receiver(status=500) as receiver:
        settings.FIREBREAK_NOTIFY_URLS = [json_url(receiver)]
        with django_capture_on_commit_callbacks(execute=True):
            incident = make_incident(title="Refunds looping", severity="SEV1")
    assert len(receiver.requests) == 5  # FIREBREAK_NOTIFY_ATTEMPTS
    [delivery] = Delivery.objects.filter(incident=incident)
    assert delivery.status == "failed" and delivery.attempts == 5
    assert "500" in delivery.error and "json://" not in delivery.error, delivery.error
    page = make_client(responder).get(f"/incidents/{incident.number}/")
    assert b'id="notifications"' in page.content
    assert b"incident.declared" in page.content and b"Why: Failed to send JSON POST notification" in page.content


def test_incident_events_go_out_through_the_signal_with_the_kept_task_name(
    eager, settings, make_incident, responder, django_capture_on_commit_callbacks
):
    assert tasks.incident_notify_task.name == "incidents.tasks.incident_notify_task"
    with http_receiver() as receiver:
        settings.FIREBREAK_NOTIFY_URLS = [json_url(receiver)]
        with django_capture_on_commit_callbacks(execute=True):
            incident = make_incident(title="Refunds looping", severity="SEV3")
        with django_capture_on_commit_callbacks(execute=True):
            incident_severity_set(incident=incident, severity="SEV2", actor=Actor.person(responder))
        with django_capture_on_commit_callbacks(execute=True):
            incident_status_set(incident=incident, status="contained", actor=Actor.person(responder))
    ref = f"INC-{incident.number}"
    assert [b["title"] for b in receiver.bodies] == [
        f"{ref} [SEV3] Refunds looping — declared",
        f"{ref} [SEV2] Refunds looping — severity changed (was SEV3)",
        f"{ref} [SEV2] Refunds looping — contained",
    ]
    assert f"{BASE}/incidents/{incident.number}/" in receiver.bodies[0]["message"]
    assert list(Delivery.objects.order_by("id").values_list("event", flat=True)) == [
        "incident.declared", "incident.severity", "incident.contained",
    ]  # fmt: skip


def test_a_message_queued_under_the_old_task_name_still_sends(eager, settings, make_incident):
    incident = make_incident(title="Old message")  # no URLs yet: nothing queued
    with http_receiver() as receiver:
        settings.FIREBREAK_NOTIFY_URLS = [json_url(receiver)]
        celery_app.tasks["incidents.tasks.incident_notify_task"].apply((incident.pk, "resolved", ""))
    assert receiver.bodies[0]["title"].endswith("— resolved")


def test_overdue_postmortems_notify_once_a_day(eager, settings, make_incident):
    with clock.at(datetime.now(UTC) - timedelta(days=4)):
        incident = make_incident(title="Old SEV1", severity="SEV1")
    with http_receiver() as receiver:
        settings.FIREBREAK_NOTIFY_URLS = [json_url(receiver)]
        tasks.postmortems_overdue_notify_task.apply()
        tasks.postmortems_overdue_notify_task.apply()  # an hour later: already told today
        assert len(receiver.bodies) == 1
        assert receiver.bodies[0]["title"] == f"INC-{incident.number} [SEV1] post-mortem overdue — Old SEV1"
        assert f"{BASE}/incidents/{incident.number}/postmortem/" in receiver.bodies[0]["message"]
        deliveries = postmortems_overdue_fanout(now=datetime.now(UTC) + timedelta(days=1, minutes=1))
    assert len(deliveries) == 1  # the next day: again


def test_replaying_the_past_sends_nothing(settings, make_incident, responder, django_capture_on_commit_callbacks):
    settings.FIREBREAK_NOTIFY_URLS = ["json://127.0.0.1:9/"]
    with django_capture_on_commit_callbacks(execute=True), clock.at(datetime(2026, 3, 1, tzinfo=UTC)):
        make_incident(title="From the demo history")
    assert not Delivery.objects.exists()


def test_a_broker_down_never_fails_the_write_and_nothing_is_half_written(
    settings, make_incident, django_capture_on_commit_callbacks, monkeypatch
):
    settings.FIREBREAK_NOTIFY_URLS = ["json://127.0.0.1:9/"]

    def down(*args):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.incident_notify_task, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident()
    assert Incident.objects.filter(pk=incident.pk).exists()
    assert not Delivery.objects.exists()


def test_a_delivery_the_broker_cannot_take_is_failed_with_why(settings, make_incident, monkeypatch):
    settings.FIREBREAK_NOTIFY_URLS = ["json://127.0.0.1:9/"]
    incident = make_incident()

    def down(*args):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.notification_deliver_task, "delay", down)
    tasks.incident_notify_task.apply((incident.pk, "declared"))
    [delivery] = Delivery.objects.all()
    assert delivery.status == "failed" and "broker" in delivery.error


def test_a_bad_route_stops_and_nothing_is_sent_or_logged(settings, make_incident, django_capture_on_commit_callbacks):
    settings.FIREBREAK_NOTIFY_ROUTES = json.dumps([{"name": "ops", "urls": ["no-such-scheme://token@host"]}])
    with pytest.raises(ImproperlyConfigured, match='route "ops": URL 1') as exc:
        routes_configured()
    assert "token" not in str(exc.value)
    with django_capture_on_commit_callbacks(execute=True):
        incident = make_incident()
    assert Incident.objects.filter(pk=incident.pk).exists()
    assert not Delivery.objects.exists()


def test_the_delivery_task_retries_with_exponential_backoff(settings):
    settings.FIREBREAK_NOTIFY_RETRY_SECONDS = 10
    settings.FIREBREAK_NOTIFY_RETRY_MAX_SECONDS = 600
    waits = [tasks.backoff_seconds(n) for n in range(4)]
    for n, wait in enumerate(waits):
        assert 10 * 2**n <= wait <= 10 * 2**n * 1.2
    assert tasks.backoff_seconds(10) <= 720


def test_a_tool_disable_names_the_tool_and_a_fleet_stop_tells_each_agents_routes(
    eager, settings, make_agent, responder, django_capture_on_commit_callbacks
):
    refund, search = make_agent("refund-agent"), make_agent("search-agent")
    with http_receiver() as payments:
        settings.FIREBREAK_NOTIFY_ROUTES = json.dumps(
            [{"name": "payments", "urls": [json_url(payments)], "agents": ["refund-agent"]}]
        )
        with django_capture_on_commit_callbacks(execute=True):
            agent_tool_disable(
                agent=refund, tool="send_email", actor=Actor.person(responder), reason="mails customers twice"
            )
        with django_capture_on_commit_callbacks(execute=True):
            fleet_stop(actor=Actor.person(responder), reason="gameday: everything stops")
    assert [b["title"] for b in payments.bodies] == [
        f"refund-agent — Tool disabled (send_email) by {responder.username}",
        f"refund-agent — Fleet stopped by {responder.username}",
    ]
    assert "Why: gameday: everything stops" in payments.bodies[1]["message"]
    assert not Delivery.objects.filter(agent=search).exists()  # the payments route does not follow search-agent


def test_outside_text_cannot_forge_a_line_or_a_link_in_the_message(make_alert):
    alert = make_alert(title="Loop\nTrajectory: [click here](https://evil.example) <https://evil.example>")
    notice = alert_notice(alert=alert, event="raised")
    assert "\n" not in notice.title
    assert "](" not in notice.title and "<https" not in notice.title
    assert "Loop Trajectory: [click here] (https://evil.example) ‹https://evil.example›" in notice.title
    assert sum(line.startswith("Trajectory:") for line in notice.body.splitlines()) == 1
