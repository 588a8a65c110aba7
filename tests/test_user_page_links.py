"""/traces/users/<id>/ lists the incidents and alerts on the user's traces: traces shows them, incidents
fills them in (``traces.hooks.user_links``), so the test spans both layers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.alerts.services import alert_raise
from traces.models import Trace

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


@pytest.fixture
def make_trace(make_agent):
    agent = make_agent("people-bot")

    def make(**kwargs):
        return Trace.objects.create(
            agent=agent, trace_id="9" * 32, started_at=timezone.now() - timedelta(minutes=5), **kwargs
        )

    return make


def test_user_page_lists_linked_incidents_and_alerts(viewer, make_client, make_trace, make_incident):
    trace = make_trace(user_id="u-9")
    incident = make_incident(title="Leaked a coupon", traces=[trace])
    alert_raise(detector="loop", agent=trace.agent, fingerprint="fp-u9", title=f"Coupon loop {XSS}", trace=trace)
    body = make_client(viewer).get("/traces/users/u-9/").content.decode()
    assert f"/incidents/{incident.number}/" in body
    assert "Leaked a coupon" in body
    assert "Coupon loop &lt;script&gt;" in body and XSS not in body
