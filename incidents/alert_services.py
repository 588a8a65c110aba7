"""Writes for alerts (acknowledge, resolve) and detector settings. One transaction each."""

import logging
import math

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.roles import ADMIN, RESPONDER
from incidents.models import Alert, DetectorSetting

logger = logging.getLogger(__name__)

MAX_THRESHOLD = 1e12


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


def _refresh(target: Alert, source: Alert) -> None:
    target.status = source.status


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor: Actor) -> Alert:
    """Open → acknowledged: someone is looking. Needs the responder role."""
    actor.require(RESPONDER)
    locked = _locked(alert)
    if locked.status != Alert.Status.OPEN:
        raise ValidationError(
            f"Only an open alert can be acknowledged; this one is {locked.get_status_display().lower()}."
        )
    locked.status = Alert.Status.ACKNOWLEDGED
    locked.handled_by = actor.label
    locked.handled_at = timezone.now()
    locked.save(update_fields=["status", "handled_by", "handled_at"])
    _refresh(alert, locked)
    logger.info("alert %s acknowledged by %s", alert.pk, actor.label)
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, actor: Actor) -> Alert:
    """Open or acknowledged → resolved. A new occurrence (same fingerprint) opens it again."""
    actor.require(RESPONDER)
    locked = _locked(alert)
    if locked.status == Alert.Status.RESOLVED:
        raise ValidationError("This alert is already resolved.")
    locked.status = Alert.Status.RESOLVED
    locked.handled_by = actor.label
    locked.handled_at = timezone.now()
    locked.save(update_fields=["status", "handled_by", "handled_at"])
    _refresh(alert, locked)
    logger.info("alert %s resolved by %s", alert.pk, actor.label)
    return alert


def _number(name: str, value):
    if isinstance(value, bool):
        raise ValidationError({"thresholds": f"{name}: expected a number, got {value!r}."})
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValidationError({"thresholds": f"{name}: expected a number, got {text!r}."}) from None
    if not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValidationError({"thresholds": f"{name}: expected a number, got {value!r}."})
    if value < 0 or value > MAX_THRESHOLD:
        raise ValidationError({"thresholds": f"{name}: must be between 0 and {MAX_THRESHOLD:g}."})
    return value


def thresholds_clean(*, detector: str, thresholds: dict) -> dict:
    """Validate threshold overrides against the detector's defaults: known names, numeric values."""
    from incidents.alert_selectors import detector_registry

    spec = detector_registry().get(detector)
    if spec is None:
        raise ValidationError({"detector": f"Unknown detector {detector!r}."})
    if not isinstance(thresholds, dict):
        raise ValidationError({"thresholds": "Thresholds must be an object of name → number."})
    unknown = sorted(set(thresholds) - set(spec.defaults))
    if unknown:
        known = ", ".join(sorted(spec.defaults)) or "none"
        raise ValidationError(
            {"thresholds": f"Unknown threshold {', '.join(map(repr, unknown))} for {detector}; known: {known}."}
        )
    return {name: _number(name, value) for name, value in thresholds.items()}


@transaction.atomic
def detector_setting_save(*, detector: str, agent=None, enabled: bool, thresholds: dict, rule: str, actor: Actor):
    """Create or replace the setting of one detector for all agents (agent None) or one agent. Admins only."""
    if not actor.can(ADMIN):
        raise PermissionDenied("Editing detector settings needs the admin role.")
    cleaned = thresholds_clean(detector=detector, thresholds=thresholds)
    rule = rule or ""
    if rule not in ("", *DetectorSetting.Rule.values):
        raise ValidationError({"rule": f"Unknown rule {rule!r}; one of {', '.join(DetectorSetting.Rule.values)}."})
    setting = DetectorSetting.objects.select_for_update().filter(detector=detector, agent=agent).first()
    if setting is None:
        setting = DetectorSetting(detector=detector, agent=agent)
    setting.enabled = bool(enabled)
    setting.thresholds = cleaned
    setting.rule = rule
    setting.save()
    logger.info("detector setting %s saved by %s", setting, actor.label)
    return setting
