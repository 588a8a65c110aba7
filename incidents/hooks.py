"""Rules that higher apps add to incidents without incidents importing them.

incidents sits below evals (agents < traces < incidents < evals). Where a
higher app must take part in closing an incident, it appends a callable here
from its AppConfig.ready():

- ``closure_checks``: ``check(incident) -> str | None`` returns a message
  saying what is still missing before the incident may close, or None when
  its rule is satisfied (incidents: SEV1/SEV2 need a published post-mortem;
  evals: an eval case captured from the incident whose latest run passed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only: incidents.apps imports this module before the models load
    from incidents.models import Incident

closure_checks: list[Callable[[Incident], str | None]] = []


def closure_blockers(incident: Incident) -> list[str]:
    """Every message from the closure checks, in registration order (empty: the incident may close)."""
    return [message for check in closure_checks if (message := check(incident))]
