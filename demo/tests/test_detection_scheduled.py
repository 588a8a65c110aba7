"""Scheduled detectors on the demo fleet: the refusal burst is caught and nothing else fires.

Here, not in incidents/detection/tests: the demo fleet sits above incidents (demo may import every app).
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from demo.fleet import fleet_load
from incidents.detection.schedule import detect_scheduled
from incidents.models import Alert

ANCHOR = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fleet(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        yield fleet_load(seed=7, anchor=ANCHOR)
        transaction.set_rollback(True)


def test_demo_fleet_refusal_burst_is_caught_and_nothing_else_fires(fleet, db):
    (burst,) = [f for f in fleet.failures if f.key == "refusal-burst"]
    at = ANCHOR - timedelta(minutes=390) + timedelta(minutes=15)  # a beat run just after the burst
    alerts = detect_scheduled(now=at) + detect_scheduled(now=ANCHOR)
    fired = sorted({(a.detector, a.agent.slug) for a in alerts})
    assert ("refusal_shift", burst.agent) in fired
    # The refusals are also far shorter than triage's usual answers: length_drift on that agent is a true positive.
    assert not [f for f in fired if f[1] != burst.agent], fired
    assert Alert.objects.filter(detector="refusal_shift").count() == 1
