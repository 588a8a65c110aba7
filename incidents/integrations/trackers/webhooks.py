"""What each tracker's webhook proves and says: its signature over the raw body, and the status change.

- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`` (the webhook's secret).
- Linear: ``Linear-Signature: <hex HMAC-SHA256 of the body>``, and ``webhookTimestamp`` (ms) in the
  body within a minute of now, so a captured delivery cannot be replayed later.
- Jira Cloud admin webhooks registered with a secret: ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of
  the body>`` (the WebSub ``method=signature`` form Atlassian documents for admin webhooks).

A parser answers a ``StatusChange`` for an issue event that moved an issue between open and closed,
or None for anything else (other events, other repositories, edits that leave the status alone).
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

LINEAR_MAX_AGE_MS = 60_000


@dataclass(frozen=True)
class StatusChange:
    key: str  # PROJ-12, ENG-7, 42
    status: str  # the tracker's own status name, shown on the row
    closed: bool  # closed/done there (else open again)
    wont_do: bool = False  # closed as not planned / canceled


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(*, scheme: str, secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` signs ``body`` with ``secret``: ``sha256=<hex>`` (GitHub, Jira) or bare hex (Linear)."""
    if not secret or not header:
        return False
    given = header.strip()
    if scheme in ("github", "jira"):
        if not given.startswith("sha256="):
            return False
        given = given.removeprefix("sha256=")
    return hmac.compare_digest(given.lower(), _hmac_hex(secret, body))


def linear_fresh(payload: dict[str, Any], *, now_ms: int) -> bool:
    stamp = payload.get("webhookTimestamp")
    return isinstance(stamp, int) and not isinstance(stamp, bool) and abs(now_ms - stamp) <= LINEAR_MAX_AGE_MS


def github_change(payload: dict[str, Any], *, event: str, repo: str) -> StatusChange | None:
    """An ``issues`` event closing or reopening an issue of ``repo``."""
    if event != "issues" or payload.get("action") not in ("closed", "reopened"):
        return None
    repository = payload.get("repository") or {}
    issue = payload.get("issue") or {}
    if not isinstance(repository, dict) or not isinstance(issue, dict):
        return None
    if str(repository.get("full_name", "")).lower() != repo.lower() or not issue.get("number"):
        return None
    closed = payload["action"] == "closed"
    return StatusChange(
        key=str(issue["number"]),
        status=str(issue.get("state") or ("closed" if closed else "open")),
        closed=closed,
        wont_do=closed and issue.get("state_reason") == "not_planned",
    )


def linear_change(payload: dict[str, Any]) -> StatusChange | None:
    """An Issue ``update`` whose workflow state changed (``updatedFrom.stateId``)."""
    if payload.get("type") != "Issue" or payload.get("action") != "update":
        return None
    data = payload.get("data") or {}
    updated_from = payload.get("updatedFrom") or {}
    if not isinstance(data, dict) or not isinstance(updated_from, dict) or "stateId" not in updated_from:
        return None
    state = data.get("state") or {}
    if not data.get("identifier") or not isinstance(state, dict):
        return None
    kind = state.get("type")
    return StatusChange(
        key=str(data["identifier"]),
        status=str(state.get("name") or kind or ""),
        closed=kind in ("completed", "canceled"),
        wont_do=kind == "canceled",
    )


def jira_change(payload: dict[str, Any]) -> StatusChange | None:
    """A ``jira:issue_updated`` whose changelog moves the status; closed when its category is "done"."""
    if payload.get("webhookEvent") != "jira:issue_updated":
        return None
    changelog = payload.get("changelog") or {}
    items = changelog.get("items") if isinstance(changelog, dict) else None
    if not isinstance(items, list) or not any(isinstance(i, dict) and i.get("field") == "status" for i in items):
        return None
    issue = payload.get("issue") or {}
    fields = issue.get("fields") if isinstance(issue, dict) else None
    status = (fields or {}).get("status") if isinstance(fields, dict) else None
    if not isinstance(issue, dict) or not issue.get("key") or not isinstance(status, dict):
        return None
    category = status.get("statusCategory") or {}
    return StatusChange(
        key=str(issue["key"]),
        status=str(status.get("name", "")),
        closed=isinstance(category, dict) and category.get("key") == "done",
    )
