"""POST /api/v1/integrations/<source>: the vendors' sample payloads become Firebreak alerts."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from agents.keys.services import api_key_create
from agents.models import ApiKey, GateState
from incidents.integrations.inbound.tests.samples import sample
from incidents.models import Alert, DetectorSetting, Incident

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


@pytest.fixture
def integration_key(db):
    return api_key_create(integration="prometheus-prod", scopes=["inbound"])[1]


def post(path, body, key, **extra):
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return Client().post(f"/api/v1/integrations/{path}", payload, content_type="application/json", **headers, **extra)


def test_alertmanager_sample_raises_one_alert_with_its_source_link_and_severity(integration_key):
    response = post("alertmanager", sample("alertmanager"), integration_key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["integration"] == "prometheus-prod"
    assert [a["action"] for a in body["alerts"]] == ["raised"]
    alert = Alert.objects.get()
    assert alert.source == "alertmanager" and alert.detector == "alertmanager"
    assert alert.integration == "prometheus-prod"
    assert alert.fingerprint == "am:prometheus-prod:1a30ba71cca2921f"
    assert alert.title == "ProbeFailure: BlackBox Probe Failure: https://server.example.org"
    assert alert.suggested_severity == "SEV1"  # severity="critical"
    assert alert.source_url.startswith("http://prometheus.example.org:9090/graph")
    assert alert.agent is None
    assert alert.details["labels"]["job"] == "http_checks"


def test_grafana_sample_raises_both_alerts(integration_key):
    response = post("grafana", sample("grafana"), integration_key)
    assert response.status_code == 200, response.content
    alerts = {a.fingerprint: a for a in Alert.objects.all()}
    assert set(alerts) == {"gf:prometheus-prod:c6eadffa33fcdf37", "gf:prometheus-prod:bc97ff14869b13e3"}
    memory = alerts["gf:prometheus-prod:c6eadffa33fcdf37"]
    assert memory.title == "High memory usage: This alert was triggered for zone us-1"
    assert memory.source_url == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert memory.suggested_severity == "SEV2"  # no severity label
    assert memory.details["values"] == {"B": 44.23943737541908, "C": 1}


def test_datadog_template_links_the_agent_from_its_tags_and_priority(integration_key, make_agent):
    make_agent("refund-bot")
    response = post("datadog", sample("datadog"), integration_key)
    assert response.status_code == 200, response.content
    alert = Alert.objects.get()
    assert alert.agent.slug == "refund-bot"
    assert alert.suggested_severity == "SEV1"  # P1
    assert alert.source_url == "https://app.datadoghq.com/event/event?id=6735843542498305487"
    assert alert.fingerprint == "dd:prometheus-prod:9bd4ac313a4d1e8fae2482df7b77628"
    recovered = post("datadog", sample("datadog", transition="Recovered"), integration_key)
    assert recovered.json()["alerts"][0]["action"] == "resolved"
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_firing_then_resolved_then_firing_again_reopens_the_same_alert(integration_key):
    assert post("alertmanager", sample("alertmanager"), integration_key).status_code == 200
    resolved = sample("alertmanager", status="resolved")
    resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2023-02-06T13:20:45.828Z"
    assert post("alertmanager", resolved, integration_key).json()["alerts"][0]["action"] == "resolved"
    alert = Alert.objects.get()
    assert alert.status == "resolved" and alert.handled_by == "alertmanager"
    again = post("alertmanager", sample("alertmanager"), integration_key)
    assert again.json()["alerts"][0]["action"] == "reopened"
    alert.refresh_from_db()
    assert alert.status == "open" and alert.count == 2
    assert Alert.objects.count() == 1


def test_repeats_deduplicate_and_namespaces_keep_sources_and_integrations_apart(integration_key):
    for _ in range(3):
        assert post("alertmanager", sample("alertmanager"), integration_key).status_code == 200
    assert Alert.objects.get().count == 3
    other = api_key_create(integration="prometheus-staging", scopes=["inbound"])[1]
    post("alertmanager", sample("alertmanager"), other)
    assert Alert.objects.count() == 2  # same fingerprint, another integration: another alert


def test_a_resolve_for_an_alert_never_seen_writes_nothing(integration_key):
    resolved = sample("alertmanager", status="resolved")
    resolved["alerts"][0]["status"] = "resolved"
    response = post("alertmanager", resolved, integration_key)
    assert response.json()["alerts"][0]["action"] == "unknown"
    assert not Alert.objects.exists()


def test_agent_label_links_a_registered_agent_and_notes_an_unknown_one(integration_key, make_agent):
    make_agent("refund-bot")
    body = sample("alertmanager")
    body["alerts"][0]["labels"]["agent"] = "refund-bot"
    post("alertmanager", body, integration_key)
    assert Alert.objects.get().agent.slug == "refund-bot"
    body = sample("alertmanager")
    body["alerts"][0]["fingerprint"] = "other"
    body["alerts"][0]["labels"]["service"] = "checkout"
    post("alertmanager", body, integration_key)
    unlinked = Alert.objects.get(fingerprint="am:prometheus-prod:other")
    assert unlinked.agent is None
    assert unlinked.details["agent_not_registered"] == ["checkout"]


def test_rule_pause_pauses_the_linked_agent(integration_key, make_agent):
    agent = make_agent("refund-bot")
    DetectorSetting.objects.create(detector="alertmanager", agent=agent, rule="pause")
    body = sample("alertmanager")
    body["alerts"][0]["labels"]["agent"] = "refund-bot"
    assert post("alertmanager", body, integration_key).status_code == 200
    agent.refresh_from_db()
    assert agent.state == GateState.PAUSED
    assert not Incident.objects.exists()


def test_rule_pause_without_an_agent_pauses_nothing_and_says_so(integration_key, make_agent):
    agent = make_agent("refund-bot")
    DetectorSetting.objects.create(detector="alertmanager", agent=None, rule="pause")
    response = post("alertmanager", sample("alertmanager"), integration_key)
    assert "no agent was paused" in response.json()["alerts"][0]["note"]
    assert "no agent was paused" in Alert.objects.get().details["rule_note"]
    agent.refresh_from_db()
    assert agent.state == GateState.ACTIVE


def test_rule_declare_declares_an_incident_with_or_without_an_agent(integration_key, make_agent):
    agent = make_agent("refund-bot")
    DetectorSetting.objects.create(detector="grafana", agent=None, rule="declare")
    body = sample("grafana")
    body["alerts"][0]["labels"]["firebreak_agent"] = "refund-bot"
    assert post("grafana", body, integration_key).status_code == 200
    with_agent = Alert.objects.get(fingerprint="gf:prometheus-prod:c6eadffa33fcdf37")
    without = Alert.objects.get(fingerprint="gf:prometheus-prod:bc97ff14869b13e3")
    assert list(with_agent.incident.agents.all()) == [agent]
    assert without.incident is not None and not without.incident.agents.exists()
    agent.refresh_from_db()
    assert agent.state == GateState.PAUSED  # declare pauses the linked agent, as for detectors


@pytest.mark.parametrize("kind", ["agent", "viewer", "integration-on-another-api", "none"])
def test_keys_that_may_not_post_alerts_are_refused(kind, make_agent, make_user, integration_key):
    if kind == "agent":
        key = api_key_create(agent=make_agent("refund-bot"), scopes=["ingest", "gate"])[1]
        assert post("alertmanager", sample("alertmanager"), key).status_code == 403
    elif kind == "viewer":
        key = api_key_create(user=make_user("viewer"), scopes=["api"])[1]
        assert post("alertmanager", sample("alertmanager"), key).status_code == 403
    elif kind == "integration-on-another-api":
        headers = {"HTTP_AUTHORIZATION": f"Bearer {integration_key}"}
        body = json.dumps({"title": "x", "severity": "SEV1"})
        assert Client().post("/api/v1/incidents", body, content_type="application/json", **headers).status_code == 403
        assert Client().get("/api/v1/agents", **headers).status_code == 403
    else:
        assert post("alertmanager", sample("alertmanager"), None).status_code in (401, 403)
    assert not Alert.objects.exists()


def test_a_responders_own_key_may_post_and_is_recorded_as_the_integration(make_user):
    user = make_user("responder", username="ops-ann")
    key = api_key_create(user=user, scopes=["api"])[1]
    assert post("grafana", sample("grafana"), key).status_code == 200
    assert set(Alert.objects.values_list("integration", flat=True)) == {"user:ops-ann"}


@pytest.mark.parametrize(
    ("path", "change", "field"),
    [
        ("alertmanager", {"version": "3"}, "version"),
        ("alertmanager", {"alerts": []}, "alerts"),
        ("alertmanager", {"receiver": None}, "receiver"),
        ("grafana", {"status": "pending"}, "status"),
        ("datadog", {"transition": None}, "transition"),
        ("datadog", {"aggregate": "", "alert_id": ""}, "aggregate"),
    ],
)
def test_a_payload_not_of_the_vendors_shape_is_a_400_naming_the_field(integration_key, path, change, field):
    response = post(path, sample(path, **change), integration_key)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert not Alert.objects.exists()


def test_one_bad_alert_in_a_batch_writes_none_of_it(integration_key):
    body = sample("grafana")
    body["alerts"][1]["labels"]["zone"] = {"nested": "not a string"}
    response = post("grafana", body, integration_key)
    assert response.status_code == 400
    assert "alerts[1].labels.zone" in response.json()["detail"]
    body = sample("grafana")
    body["alerts"][1]["status"] = "exploded"
    assert "alerts[1].status" in post("grafana", body, integration_key).json()["detail"]
    assert not Alert.objects.exists()


def test_not_json_and_too_big_are_refused(integration_key, settings):
    assert post("alertmanager", "{not json", integration_key).status_code == 400
    settings.FIREBREAK_INBOUND_MAX_BYTES = 200
    assert post("alertmanager", sample("alertmanager"), integration_key).status_code == 413
    assert not Alert.objects.exists()


def test_generic_webhook_maps_json_paths(integration_key, make_agent):
    make_agent("refund-bot")
    body = {"check": {"name": "Queue backlog", "id": 17}, "state": "alerting", "who": {"bot": "refund-bot"}}
    query = "title=$.check.name&fingerprint=$.check.id&status=$.state&agent=$.who.bot&link=$.url"
    response = post(f"webhook?{query}", body, integration_key)
    assert response.status_code == 200, response.content
    alert = Alert.objects.get()
    assert alert.fingerprint == "wh:prometheus-prod:17" and alert.agent.slug == "refund-bot"
    body["state"] = "ok"
    assert post(f"webhook?{query}", body, integration_key).json()["alerts"][0]["action"] == "resolved"


def test_generic_webhook_reads_a_list_of_alerts(integration_key):
    body = {"items": [{"t": "disk full", "k": "a", "sev": "critical"}, {"t": "slow", "k": "b", "sev": "low"}]}
    response = post("webhook?alerts=$.items&title=$.t&fingerprint=$.k&severity=$.sev", body, integration_key)
    assert response.status_code == 200, response.content
    assert dict(Alert.objects.values_list("title", "suggested_severity")) == {"disk full": "SEV1", "slow": "SEV3"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=$.state", "title"),  # no title mapping
        ("title=$.missing", "title"),  # not in the body
        ("title=check.name", "title"),  # not a JSON path
        ("title=$.check&colour=$.x", "colour"),  # unknown parameter
        ("title=$.check", "title"),  # an object, not text
    ],
)
def test_generic_webhook_bad_mapping_is_a_400_naming_the_parameter(integration_key, query, field):
    response = post(f"webhook?{query}", {"check": {"name": "x"}, "state": "firing"}, integration_key)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert not Alert.objects.exists()


def test_an_agentless_alert_from_outside_is_escaped_on_the_alerts_page_and_dashboard(
    integration_key, viewer, make_client
):
    body = sample("alertmanager")
    body["alerts"][0]["labels"]["alertname"] = XSS
    body["alerts"][0]["generatorURL"] = "javascript:alert(1)"
    assert post("alertmanager", body, integration_key).status_code == 200
    alert = Alert.objects.get()
    assert alert.source_url == ""  # only http(s) links are kept
    c = make_client(viewer)
    page = c.get("/incidents/alerts/").content.decode()
    assert f'id="alert-{alert.pk}"' in page and "no agent" in page
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "from Alertmanager (prometheus-prod)" in page
    dashboard = c.get("/")
    assert dashboard.status_code == 200
    assert XSS not in dashboard.content.decode() and "&lt;script&gt;" in dashboard.content.decode()
    search = c.get("/search/?q=ProbeFailure")
    assert search.status_code == 200 and XSS not in search.content.decode()
    declare = c.get(f"/incidents/new/?alert={alert.pk}")
    assert declare.status_code == 200


def test_the_source_link_is_shown_on_the_alerts_page(integration_key, viewer, make_client):
    post("grafana", sample("grafana"), integration_key)
    page = make_client(viewer).get("/incidents/alerts/").content.decode()
    assert 'href="https://play.grafana.org/alerting/1afz29v7z/edit"' in page


def test_the_sources_are_listed_in_detector_settings(admin_user, make_client):
    page = make_client(admin_user).get("/incidents/alerts/settings/").content.decode()
    for source in ("alertmanager", "grafana", "datadog", "webhook"):
        assert f"<code>{source}</code>" in page


def test_createapikey_integration_prints_a_key_that_posts_alerts(capsys):
    call_command("createapikey", "--integration", "grafana-cloud")
    raw = capsys.readouterr().out.strip().splitlines()[0]
    key = ApiKey.objects.get()
    assert key.integration == "grafana-cloud" and key.scopes == ["inbound"]
    assert key.agent is None and key.user is None
    assert post("grafana", sample("grafana"), raw).status_code == 200
    assert set(Alert.objects.values_list("integration", flat=True)) == {"grafana-cloud"}


def test_a_responder_declares_an_incident_from_an_agentless_alert(integration_key, responder, make_client):
    post("alertmanager", sample("alertmanager"), integration_key)
    alert = Alert.objects.get()
    c = make_client(responder)
    form = c.get(f"/incidents/new/?alert={alert.pk}").content.decode()
    assert "ProbeFailure: BlackBox Probe Failure" in form
    response = c.post(
        "/incidents/new/",
        {"title": alert.title, "severity": "SEV1", "alert": alert.pk, "commander": responder.username},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    alert.refresh_from_db()
    incident = alert.incident
    assert incident is not None and not incident.agents.exists()
    page = c.get(f"/incidents/{incident.number}/")
    assert page.status_code == 200
    assert "not resolved" in page.content.decode()  # the loose end: its open alert


def test_the_new_alert_toast_shows_an_agentless_alert_escaped(integration_key, viewer, make_client):
    c = make_client(viewer)
    since = c.get("/incidents/alerts/new/")["X-Alert-Since"]
    body = sample("alertmanager")
    body["alerts"][0]["labels"]["alertname"] = XSS
    post("alertmanager", body, integration_key)
    toast = c.get("/incidents/alerts/new/", {"since": since})
    assert toast.status_code == 200
    text = toast.content.decode()
    assert XSS not in text and "&lt;script&gt;" in text and "Alertmanager" in text


@pytest.mark.parametrize("name", ["", "has space", "a/b"])
def test_createapikey_integration_refuses_a_bad_name(name):
    with pytest.raises(CommandError, match="integration"):
        call_command("createapikey", "--integration", name)
    assert not ApiKey.objects.exists()
