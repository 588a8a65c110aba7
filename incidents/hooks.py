"""Rules that higher apps add to incidents without incidents importing them.

incidents sits below evals (agents < traces < incidents < evals). Where a
higher app must take part in closing an incident, it appends a callable here
from its AppConfig.ready():

- ``closure_checks``: ``check(incident) -> str | None`` returns a message
  saying what is still missing before the incident may close, or None when
  its rule is satisfied (incidents: SEV1/SEV2 need a published post-mortem;
  evals: an eval case captured from the incident whose latest run passed).
"""

from collections.abc import Callable

closure_checks: list[Callable] = []


def closure_blockers(incident) -> list[str]:
    """Every message from the closure checks, in registration order (empty: the incident may close)."""
    return [message for check in closure_checks if (message := check(incident))]
