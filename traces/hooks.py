"""What higher apps add to trace pages without traces importing them.

- ``user_links``: ``links(user_id) -> list[(kind, title, url)]``, the incidents and alerts linked to a
  user's traces (incidents fills it), shown on /traces/users/<id>/.
- ``retention_keepers``: ``keep() -> QuerySet`` of trace primary keys (one column, e.g.
  ``X.objects.values("trace_id")``) that retention must keep: incidents names its incidents' and
  post-mortems' traces, evals its eval cases' (golden runs are kept by traces itself).
- ``retention_sweepers``: ``sweep(cutoff) -> int`` deletes what a higher app derived from steps older than
  ``cutoff`` once retention dropped them (incidents: the detectors' hourly rollups), in retention's transaction.
"""

from collections.abc import Callable
from datetime import datetime

from django.db.models import QuerySet

UserLink = tuple[str, str, str]  # (kind, title, url)
user_links: list[Callable[[str], list[UserLink]]] = []


def user_links_for(user_id: str) -> list[UserLink]:
    return [link for provider in user_links for link in provider(user_id)]


retention_keepers: list[Callable[[], QuerySet]] = []
retention_sweepers: list[Callable[[datetime], int]] = []
