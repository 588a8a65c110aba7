"""Alert pages: the list (acknowledge, resolve; plain and htmx) and the detector settings."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.conftest import SPAN, TRACE
from incidents.models import DetectorSetting

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def rows(body: str) -> list[str]:
    return re.findall(r'id="alert-(\d+)"', body)


def test_alert_list_open_first_then_newest_last_seen(viewer, make_client, make_alert):
    now = timezone.now()
    old_open = make_alert(title="old open", last_seen=now - timedelta(hours=2))
    new_open = make_alert(title="new open", last_seen=now - timedelta(minutes=1))
    resolved = make_alert(title="resolved newest", status="resolved", last_seen=now)
    acked = make_alert(title="acked", status="acknowledged", last_seen=now)
    body = make_client(viewer).get("/incidents/alerts/").content.decode()
    assert rows(body) == [str(new_open.pk), str(old_open.pk), str(acked.pk), str(resolved.pk)]


def test_alert_list_filters(viewer, make_client, make_alert, make_agent):
    other = make_agent("other-bot")
    a = make_alert(detector="loop")
    b = make_alert(detector="cost", status="resolved")
    c = make_alert(detector="loop", agent=other)
    c_ = make_client(viewer)
    assert rows(c_.get("/incidents/alerts/?detector=loop").content.decode()) == [str(c.pk), str(a.pk)]
    assert rows(c_.get("/incidents/alerts/?status=resolved").content.decode()) == [str(b.pk)]
    assert rows(c_.get("/incidents/alerts/?agent=other-bot").content.decode()) == [str(c.pk)]
    assert rows(c_.get("/incidents/alerts/?agent=nobody").content.decode()) == []
    # a bogus status is ignored, not an error
    assert c_.get("/incidents/alerts/?status=bogus").status_code == 200


def test_alert_row_links_trajectory_at_step_declare_and_incident(viewer, make_client, make_alert, make_incident):
    plain = make_alert()
    incident = make_incident()
    linked = make_alert(incident=incident)
    body = make_client(viewer).get("/incidents/alerts/").content.decode()
    assert f"/traces/{TRACE}/?agent=refund-bot&amp;at={SPAN}" in body
    assert f"/incidents/new/?alert={plain.pk}" in body
    assert f"/incidents/new/?alert={linked.pk}" not in body
    assert f"/incidents/{incident.number}/" in body
    assert "/agents/refund-bot/" in body


def test_alert_title_and_details_are_escaped(viewer, make_client, make_alert):
    make_alert(title=XSS, details={"note": XSS})
    for url in ("/incidents/alerts/", "/"):
        body = make_client(viewer).get(url).content.decode()
        assert XSS not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_viewer_cannot_acknowledge_or_resolve(viewer, make_client, make_alert):
    alert = make_alert()
    c = make_client(viewer)
    assert c.post(f"/incidents/alerts/{alert.pk}/acknowledge").status_code == 403
    assert c.post(f"/incidents/alerts/{alert.pk}/resolve").status_code == 403
    alert.refresh_from_db()
    assert alert.status == "open"
    assert 'data-action="acknowledge"' not in c.get("/incidents/alerts/").content.decode()


def test_responder_acknowledges_and_resolves_plain_and_htmx(responder, make_client, make_alert):
    alert = make_alert()
    c = make_client(responder)
    assert 'data-action="acknowledge"' in c.get("/incidents/alerts/").content.decode()
    response = c.post(f"/incidents/alerts/{alert.pk}/acknowledge", {"next": "/incidents/alerts/?status=open"})
    assert response.status_code == 302 and response.url == "/incidents/alerts/?status=open"
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    response = c.post(f"/incidents/alerts/{alert.pk}/resolve", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith(f'<tr id="alert-{alert.pk}"') and "Resolved" in body
    alert.refresh_from_db()
    assert alert.status == "resolved"
    # resolving twice is refused, the row says why
    response = c.post(f"/incidents/alerts/{alert.pk}/resolve", HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "already resolved" in response.content.decode()
    # an off-site next is ignored
    other = make_alert()
    response = c.post(f"/incidents/alerts/{other.pk}/acknowledge", {"next": "https://evil.example/"})
    assert response.url == "/incidents/alerts/"


def test_acknowledge_missing_alert_is_404(responder, make_client, db):
    assert make_client(responder).post("/incidents/alerts/999999/acknowledge").status_code == 404


def test_settings_page_lists_detectors_viewer_cannot_edit(viewer, make_client, test_detector):
    c = make_client(viewer)
    body = c.get("/incidents/alerts/settings/").content.decode()
    assert test_detector in body and "repeats" in body and "window_s" in body
    assert 'name="t_repeats"' not in body
    response = c.post("/incidents/alerts/settings/", {"detector": test_detector, "t_repeats": "5"})
    assert response.status_code == 403
    assert not DetectorSetting.objects.exists()


def test_admin_saves_global_then_agent_setting(admin_user, make_client, test_detector, traced_agent):
    c = make_client(admin_user)
    assert 'name="t_repeats"' in c.get("/incidents/alerts/settings/").content.decode()
    response = c.post(
        "/incidents/alerts/settings/",
        {"detector": test_detector, "agent": "", "enabled": "on", "rule": "notify", "t_repeats": "5", "t_window_s": ""},
    )
    assert response.status_code == 302
    setting = DetectorSetting.objects.get(detector=test_detector, agent=None)
    assert setting.thresholds == {"repeats": 5} and setting.rule == "notify" and setting.enabled
    response = c.post(
        "/incidents/alerts/settings/",
        {"detector": test_detector, "agent": "refund-bot", "rule": "", "t_window_s": "2.5"},
    )
    assert response.status_code == 302
    agent_setting = DetectorSetting.objects.get(detector=test_detector, agent=traced_agent)
    assert agent_setting.thresholds == {"window_s": 2.5} and not agent_setting.enabled and agent_setting.rule == ""
    # saving again replaces, not duplicates
    c.post("/incidents/alerts/settings/", {"detector": test_detector, "enabled": "on", "t_repeats": "7"})
    assert DetectorSetting.objects.filter(detector=test_detector).count() == 2
    assert DetectorSetting.objects.get(detector=test_detector, agent=None).thresholds == {"repeats": 7}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"t_bogus": "3"}, "Unknown threshold"),
        ({"t_repeats": "three"}, "expected a number"),
        ({"t_repeats": "nan"}, "expected a number"),
        ({"t_repeats": "-1"}, "between 0"),
        ({"rule": "explode"}, "Unknown rule"),
        ({"detector": "no-such-detector"}, "Unknown detector"),
        ({"agent": "no-such-agent"}, "Unknown agent"),
    ],
)
def test_settings_bad_input_errors_and_writes_nothing(admin_user, make_client, test_detector, data, message):
    payload = {"detector": test_detector, "enabled": "on", "rule": "", **data}
    response = make_client(admin_user).post("/incidents/alerts/settings/", payload)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Nothing was saved" in response.content.decode()
    assert not DetectorSetting.objects.exists()
