from django.apps import AppConfig

from agents import hooks as agent_hooks
from agents.signals import gate_changed
from incidents import hooks, signals
from traces import hooks as trace_hooks
from traces.signals import spans_ingested, step_flagged


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        # In ready(), not at the top: these modules import models, which exist only once every app is loaded.
        # Importing the detector packages registers the detectors; the task modules are imported for Celery,
        # which autodiscovers <app>.tasks only.
        from incidents import receivers
        from incidents.detection import scheduled, streaming  # noqa: F401
        from incidents.detection import tasks as detection_tasks  # noqa: F401
        from incidents.detection.scheduled.rollup import rollups_drop_before
        from incidents.integrations.inbound import sources as inbound_sources  # noqa: F401
        from incidents.integrations.pagerduty import receivers as pagerduty
        from incidents.integrations.pagerduty import tasks as pagerduty_tasks  # noqa: F401
        from incidents.integrations.slack import receivers as slack_receivers
        from incidents.integrations.trackers import tasks as tracker_tasks  # noqa: F401
        from incidents.last_known_good import last_known_good
        from incidents.notifications import receivers as notification_receivers
        from incidents.notifications import tasks as notification_tasks  # noqa: F401
        from incidents.notifications.routes import routes_configured
        from incidents.search.selectors import user_links
        from incidents.selectors import retention_kept_traces

        gate_changed.connect(receivers.on_gate_changed, dispatch_uid="incidents.gate_timeline")
        spans_ingested.connect(receivers.on_spans_ingested, dispatch_uid="incidents.streaming_detection")
        step_flagged.connect(receivers.on_step_flagged, dispatch_uid="incidents.flag_timeline")
        signals.alert_changed.connect(pagerduty.on_alert_changed, dispatch_uid="incidents.pagerduty_alert")
        signals.incident_changed.connect(pagerduty.on_incident_changed, dispatch_uid="incidents.pagerduty_incident")
        signals.timeline_recorded.connect(pagerduty.on_timeline_recorded, dispatch_uid="incidents.pagerduty_command")
        gate_changed.connect(slack_receivers.on_gate_changed, dispatch_uid="incidents.slack_gate")
        signals.alert_changed.connect(slack_receivers.on_alert_changed, dispatch_uid="incidents.slack_alert")
        signals.incident_changed.connect(slack_receivers.on_incident_changed, dispatch_uid="incidents.slack_incident")
        signals.timeline_recorded.connect(slack_receivers.on_timeline_recorded, dispatch_uid="incidents.slack_timeline")
        gate_changed.connect(notification_receivers.on_gate_changed, dispatch_uid="incidents.notify_gate")
        signals.alert_changed.connect(notification_receivers.on_alert_changed, dispatch_uid="incidents.notify_alert")
        signals.incident_changed.connect(
            notification_receivers.on_incident_changed, dispatch_uid="incidents.notify_incident"
        )
        routes_configured()  # a bad FIREBREAK_NOTIFY_ROUTES stops start-up here, naming the route
        if receivers.resume_needs_admin_for_open_sev1 not in agent_hooks.resume_checks:
            agent_hooks.resume_checks.append(receivers.resume_needs_admin_for_open_sev1)
        if receivers.postmortem_published_for_sev1_sev2 not in hooks.closure_checks:
            hooks.closure_checks.append(receivers.postmortem_published_for_sev1_sev2)
        if user_links not in trace_hooks.user_links:
            trace_hooks.user_links.append(user_links)
        if retention_kept_traces not in trace_hooks.retention_keepers:
            trace_hooks.retention_keepers.append(retention_kept_traces)
        if rollups_drop_before not in trace_hooks.retention_sweepers:
            trace_hooks.retention_sweepers.append(rollups_drop_before)
        if receivers.sev1_action_items_done not in hooks.closure_checks:
            hooks.closure_checks.append(receivers.sev1_action_items_done)
        if last_known_good not in agent_hooks.last_known_good_finders:
            agent_hooks.last_known_good_finders.append(last_known_good)
