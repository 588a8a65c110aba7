"""The inbound sources as pseudo-detectors: /incidents/alerts/settings/ lists them, and admins set their
rule (notify, page, pause, declare) for all agents or per agent, as for Firebreak's own detectors.

Importing this module registers them (``IncidentsConfig.ready()``). They never run: their alerts arrive
over HTTP (``incidents.integrations.inbound.services.inbound_alerts_receive``)."""

from typing import Any

from incidents.detection.base import Detector, Finding, Rule, registry
from incidents.models import Alert

KIND = "inbound"

DESCRIPTIONS = {
    Alert.Source.ALERTMANAGER: "Alerts posted by Prometheus Alertmanager (POST /api/v1/integrations/alertmanager).",
    Alert.Source.GRAFANA: "Alerts posted by a Grafana webhook contact point (POST /api/v1/integrations/grafana).",
    Alert.Source.DATADOG: "Alerts posted by the Datadog Webhooks integration (POST /api/v1/integrations/datadog).",
    Alert.Source.WEBHOOK: "Alerts posted as JSON by any tool, mapped by JSON paths (POST /api/v1/integrations/webhook)"
    ".",
}


def _never_runs(**_: Any) -> list[Finding]:
    return []


for _source, _description in DESCRIPTIONS.items():
    registry[_source.value] = Detector(
        name=_source.value, kind=KIND, run=_never_runs, defaults={}, rule=Rule.NOTIFY, description=_description
    )
