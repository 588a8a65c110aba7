"""Alerts from the monitoring people already run: Alertmanager, Grafana, Datadog and any JSON webhook."""
