"""Notifications of incident events (declared, severity changed, contained, resolved) through Apprise,
sent by a Celery task after the write commits, never in the responder's request."""
