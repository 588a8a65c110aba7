"""The three trackers' create-issue calls (Jira Cloud REST v3, Linear GraphQL, GitHub REST), over httpx.

Each call answers a ``CreatedIssue`` or raises ``TrackerRefused`` (the tracker said no: a 4xx, a
GraphQL error; retrying will not help) or ``TrackerUnavailable`` (a 5xx, a 429, a timeout, no
connection; retry later). Error messages are the tracker's own words, never a credential.
"""

from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "Firebreak (action items)"
GITHUB_API_VERSION = "2022-11-28"
JIRA_SUMMARY_MAX = 255  # Jira refuses a longer summary; an action item's title may hold 300

TRACKERS = ("jira", "linear", "github")
LABELS = {"jira": "Jira", "linear": "Linear", "github": "GitHub"}

LINEAR_ISSUE_CREATE = """
mutation IssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) {
    success
    issue { id identifier url state { name type } }
  }
}
""".strip()


class TrackerError(Exception):
    """Creating the issue did not work; ``str()`` says why in words."""


class TrackerRefused(TrackerError):
    """The tracker refused the request (bad project, bad token, bad field): retrying will not help."""


class TrackerUnavailable(TrackerError):
    """The tracker could not answer now (5xx, 429, timeout, no connection): retry later."""


@dataclass(frozen=True)
class CreatedIssue:
    key: str
    url: str
    status: str


@dataclass(frozen=True)
class IssueText:
    """What the issue says: the action item's title, and lines linking back to Firebreak."""

    title: str
    lines: list[str]
    links: list[tuple[str, str]]  # (label, URL)


def trackers_configured() -> list[str]:
    """The trackers whose settings are all set, in a stable order."""
    on = {
        "jira": all(
            (
                settings.FIREBREAK_JIRA_URL,
                settings.FIREBREAK_JIRA_EMAIL,
                settings.FIREBREAK_JIRA_API_TOKEN,
                settings.FIREBREAK_JIRA_PROJECT,
            )
        ),
        "linear": all((settings.FIREBREAK_LINEAR_API_KEY, settings.FIREBREAK_LINEAR_TEAM_ID)),
        "github": all((settings.FIREBREAK_GITHUB_TOKEN, settings.FIREBREAK_GITHUB_REPO)),
    }
    return [tracker for tracker in TRACKERS if on[tracker]]


def tracker_target(tracker: str) -> str:
    """Where issues go, without a secret: ``jira:OPS``, ``linear:<team id>``, ``github:owner/name``."""
    where = {
        "jira": settings.FIREBREAK_JIRA_PROJECT,
        "linear": settings.FIREBREAK_LINEAR_TEAM_ID,
        "github": settings.FIREBREAK_GITHUB_REPO,
    }[tracker]
    return f"{tracker}:{where}"


def issue_create(*, tracker: str, text: IssueText) -> CreatedIssue:
    """Create the issue in ``tracker`` (one of ``trackers_configured()``)."""
    create = {"jira": _jira_create, "linear": _linear_create, "github": _github_create}[tracker]
    try:
        return create(text)
    except httpx.TimeoutException as exc:
        raise TrackerUnavailable(f"{LABELS[tracker]} did not answer in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TrackerUnavailable(f"cannot reach {LABELS[tracker]} ({type(exc).__name__})") from exc


def _post(
    url: str, *, json: dict[str, Any], headers: dict[str, str], auth: httpx.BasicAuth | None = None
) -> httpx.Response:
    with httpx.Client(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT}) as client:
        return client.post(url, json=json, headers=headers, auth=auth or httpx.USE_CLIENT_DEFAULT)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _raise_for(response: httpx.Response, label: str, why: str) -> None:
    code = response.status_code
    if code >= 500 or code == 429:
        raise TrackerUnavailable(f"{label} answered {code}{': ' + why if why else ''}")
    if code >= 400:
        raise TrackerRefused(f"{label} refused the issue ({code}){': ' + why if why else ''}")


def _adf(text: IssueText) -> dict[str, Any]:
    """The description as an Atlassian Document Format document (REST v3 takes no plain text)."""
    content: list[dict[str, Any]] = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in text.lines if line
    ]
    for label, url in text.links:
        content.append(
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": f"{label}: "},
                    {"type": "text", "text": url, "marks": [{"type": "link", "attrs": {"href": url}}]},
                ],
            }
        )
    return {"type": "doc", "version": 1, "content": content}


def _jira_create(text: IssueText) -> CreatedIssue:
    base = settings.FIREBREAK_JIRA_URL.rstrip("/")
    body = {
        "fields": {
            "project": {"key": settings.FIREBREAK_JIRA_PROJECT},
            "summary": text.title[:JIRA_SUMMARY_MAX],
            "issuetype": {"name": settings.FIREBREAK_JIRA_ISSUE_TYPE},
            "description": _adf(text),
        }
    }
    response = _post(
        f"{base}/rest/api/3/issue",
        json=body,
        headers={"Accept": "application/json"},
        auth=httpx.BasicAuth(settings.FIREBREAK_JIRA_EMAIL, settings.FIREBREAK_JIRA_API_TOKEN),
    )
    data = _json(response)
    why = ""
    if isinstance(data, dict):
        messages = [str(m) for m in data.get("errorMessages") or []]
        errors = data.get("errors") or {}
        if isinstance(errors, dict):
            messages += [f"{field}: {message}" for field, message in errors.items()]
        why = "; ".join(messages)
    _raise_for(response, "Jira", why)
    if not isinstance(data, dict) or not data.get("key"):
        raise TrackerRefused(f"Jira answered {response.status_code} without an issue key")
    key = str(data["key"])
    return CreatedIssue(key=key, url=f"{base}/browse/{key}", status="To Do")


def _linear_create(text: IssueText) -> CreatedIssue:
    description = "\n\n".join([*text.lines, *(f"{label}: [{url}]({url})" for label, url in text.links)])
    variables = {
        "input": {"teamId": settings.FIREBREAK_LINEAR_TEAM_ID, "title": text.title, "description": description}
    }
    response = _post(
        settings.FIREBREAK_LINEAR_API_URL,
        json={"query": LINEAR_ISSUE_CREATE, "variables": variables},
        # A personal API key goes bare in Authorization (an OAuth token would be "Bearer <token>").
        headers={"Authorization": settings.FIREBREAK_LINEAR_API_KEY, "Content-Type": "application/json"},
    )
    data = _json(response)
    errors = data.get("errors") if isinstance(data, dict) else None
    why = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors or [])
    _raise_for(response, "Linear", why)
    if errors:
        raise TrackerRefused(f"Linear refused the issue: {why}")
    created = ((data or {}).get("data") or {}).get("issueCreate") or {}
    issue = created.get("issue") or {}
    if not created.get("success") or not issue.get("identifier"):
        raise TrackerRefused("Linear did not create the issue (success was false)")
    state = issue.get("state") or {}
    return CreatedIssue(
        key=str(issue["identifier"]), url=str(issue.get("url") or ""), status=str(state.get("name", ""))
    )


def _github_create(text: IssueText) -> CreatedIssue:
    base = settings.FIREBREAK_GITHUB_API_URL.rstrip("/")
    body = "\n\n".join([*text.lines, *(f"{label}: {url}" for label, url in text.links)])
    response = _post(
        f"{base}/repos/{settings.FIREBREAK_GITHUB_REPO}/issues",
        json={"title": text.title, "body": body},
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {settings.FIREBREAK_GITHUB_TOKEN}",
            "X-GitHub-Api-Version": GITHUB_API_VERSION,
        },
    )
    data = _json(response)
    why = str(data.get("message", "")) if isinstance(data, dict) else ""
    _raise_for(response, "GitHub", why)
    if not isinstance(data, dict) or not data.get("number"):
        raise TrackerRefused(f"GitHub answered {response.status_code} without an issue number")
    return CreatedIssue(key=str(data["number"]), url=str(data.get("html_url") or ""), status=str(data.get("state", "")))
