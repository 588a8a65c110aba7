"""Events incidents announces after they commit, for the senders that tell the outside world
(notifications, paging, chat) to connect to in their ``AppConfig.ready()``.

``alert_changed``: an alert was raised (new), reopened, acknowledged or resolved. kwargs:
alert_id (int), event ("raised" | "reopened" | "acknowledged" | "resolved"), actor_label (str: who
did it; a sender skips what its own side did, e.g. "pagerduty" for a webhook from PagerDuty, so a
state change never echoes back).

``incident_changed``: an incident event. kwargs: incident_id (int), event ("declared",
"severity", a status such as "contained" or "resolved", "closed"), detail (str), actor_label (str).

``timeline_recorded``: an entry went on an incident's timeline. kwargs: entry_id, incident_id,
kind (TimelineKind value), actor_label (str).

All three are sent from ``transaction.on_commit``: a receiver sees committed rows, and a receiver that
fails never undoes the write (receivers only enqueue Celery tasks).
"""

from django.dispatch import Signal

alert_changed = Signal()
incident_changed = Signal()
timeline_recorded = Signal()
