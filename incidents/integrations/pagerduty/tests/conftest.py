import pytest

from incidents.integrations.pagerduty.tasks import pagerduty_send_task
from incidents.integrations.pagerduty.tests.fake_pagerduty import fake_pagerduty

ROUTING_KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"  # 32 characters, as PagerDuty's integration keys


@pytest.fixture
def pagerduty(settings, monkeypatch):
    """Paging on, pointed at a local stand-in for PagerDuty; queued sends run at once in this process
    (the real task, its retries included, through Celery's apply())."""
    with fake_pagerduty() as fake:
        settings.FIREBREAK_PAGERDUTY_ROUTING_KEY = ROUTING_KEY
        settings.FIREBREAK_PAGERDUTY_EVENTS_URL = fake.url
        settings.FIREBREAK_PAGERDUTY_MAX_ATTEMPTS = 4
        settings.FIREBREAK_BASE_URL = "https://firebreak.example"
        monkeypatch.setattr(pagerduty_send_task, "delay", lambda *args: pagerduty_send_task.apply(args))
        yield fake
