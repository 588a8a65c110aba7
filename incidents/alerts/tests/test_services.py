"""Alert services: raise, acknowledge, resolve, and the detector settings' validation."""

import pytest
from django.core.exceptions import ValidationError

from core.actors import Actor
from incidents.alerts.services import alert_acknowledge, alert_raise, alert_resolve, detector_setting_save

pytestmark = pytest.mark.django_db


def test_setting_service_validates_directly(admin_user, test_detector):
    with pytest.raises(ValidationError):
        detector_setting_save(
            detector=test_detector, enabled=True, thresholds={"repeats": True}, rule="", actor=Actor.person(admin_user)
        )
    setting = detector_setting_save(
        detector=test_detector, enabled=True, thresholds={"repeats": 4}, rule="declare", actor=Actor.person(admin_user)
    )
    assert setting.thresholds == {"repeats": 4}


def test_acknowledging_records_who_did_it(make_agent, responder):
    alert, _ = alert_raise(detector="action_repeat", agent=make_agent("who-bot"), fingerprint="f-who", title="loop")
    alert_acknowledge(alert=alert, actor=Actor.person(responder))
    alert.refresh_from_db()
    assert (alert.status, alert.handled_by) == ("acknowledged", responder.username)
    assert alert.handled_at is not None
    alert_resolve(alert=alert, actor=Actor.person(responder))
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_a_fingerprint_longer_than_the_column_still_deduplicates(make_agent):
    agent = make_agent("long-bot")
    long = "inbound:alertmanager:" + "x" * 200  # sources bring their own fingerprints, of any length
    first, created = alert_raise(detector="action_repeat", agent=agent, fingerprint=long, title="loop")
    again, created_again = alert_raise(detector="action_repeat", agent=agent, fingerprint=long, title="loop")
    assert created and not created_again and again.pk == first.pk
    assert len(first.fingerprint) == 64
