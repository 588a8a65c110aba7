"""`manage.py health_compute`: what `make run` calls at start, so the dashboard has scores at once."""

from io import StringIO

from django.core.management import call_command

from incidents.detection.health import health_get


def test_health_compute_scores_every_agent_now(make_agent):
    make_agent("refund-agent")
    assert health_get(agent_slugs=["refund-agent"])["refund-agent"]["score"] is None
    out = StringIO()
    call_command("health_compute", stdout=out)
    assert "1 agent" in out.getvalue()
    assert health_get(agent_slugs=["refund-agent"])["refund-agent"]["score"] is not None
