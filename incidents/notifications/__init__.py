"""Notifications that go out through Apprise (alerts, gate changes, incident events, overdue post-mortems)
to the routes that match them, sent by Celery tasks after the write commits, never in the responder's
request; and the delivery log every outbound sender writes (``deliveries``)."""
