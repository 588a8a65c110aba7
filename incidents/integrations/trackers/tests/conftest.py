"""Fixtures of the tracker tests: an action item on INC-7's post-mortem, and a local HTTP server that plays
Jira, Linear and GitHub, checking each request against what the vendor documents before it answers.

The schemas follow the vendors' documentation: Jira Cloud REST v3 "Create issue" (``fields.project.key``,
``summary``, ``issuetype``, ``description`` as an Atlassian Document Format ``doc`` of version 1), Linear's
GraphQL ``issueCreate(input: IssueCreateInput!)`` with ``teamId``/``title``/``description``, GitHub REST
"Create an issue" (``title``, ``body``) with its Accept and API-version headers.
"""

import base64
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from core.actors import Actor
from incidents.models import ActionItem, Incident, PostMortemTemplate
from incidents.postmortems import services as postmortem_services

JIRA_EMAIL, JIRA_TOKEN = "ops@example.com", "jira-token-123"
LINEAR_KEY = "lin_api_test_key"
GITHUB_TOKEN = "ghp_testtoken"
SECRETS = {"jira": "jira-webhook-secret", "linear": "linear-webhook-secret", "github": "github-webhook-secret"}

_TEXT_NODE = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {
        "type": {"const": "text"},
        "text": {"type": "string", "minLength": 1},
        "marks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ["link", "strong", "em", "code"]}, "attrs": {"type": "object"}},
            },
        },
    },
    "additionalProperties": False,
}
ADF_DOC = {
    "type": "object",
    "required": ["type", "version", "content"],
    "properties": {
        "type": {"const": "doc"},
        "version": {"const": 1},
        "content": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["type", "content"],
                "properties": {"type": {"const": "paragraph"}, "content": {"type": "array", "items": _TEXT_NODE}},
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}
JIRA_CREATE = {
    "type": "object",
    "required": ["fields"],
    "properties": {
        "fields": {
            "type": "object",
            "required": ["project", "summary", "issuetype", "description"],
            "properties": {
                "project": {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}},
                "summary": {"type": "string", "minLength": 1, "maxLength": 255},
                "issuetype": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                "description": ADF_DOC,
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}
LINEAR_CREATE = {
    "type": "object",
    "required": ["query", "variables"],
    "properties": {
        "query": {"type": "string", "pattern": r"^mutation\b[\s\S]*issueCreate\(input: \$input\)"},
        "variables": {
            "type": "object",
            "required": ["input"],
            "properties": {
                "input": {
                    "type": "object",
                    "required": ["teamId", "title"],
                    "properties": {
                        "teamId": {"type": "string", "minLength": 1},
                        "title": {"type": "string", "minLength": 1},
                        "description": {"type": "string"},
                    },
                    "additionalProperties": False,
                }
            },
        },
    },
}
GITHUB_CREATE = {
    "type": "object",
    "required": ["title"],
    "properties": {"title": {"type": "string", "minLength": 1}, "body": {"type": "string"}},
    "additionalProperties": False,
}


def _jira_headers(headers):
    expected = "Basic " + base64.b64encode(f"{JIRA_EMAIL}:{JIRA_TOKEN}".encode()).decode()
    return [] if headers.get("Authorization") == expected else ["Authorization is not Basic email:token"]


def _linear_headers(headers):
    # A personal API key is sent as is (no "Bearer").
    return [] if headers.get("Authorization") == LINEAR_KEY else ["Authorization is not the API key"]


def _github_headers(headers):
    errors = []
    if headers.get("Authorization") != f"Bearer {GITHUB_TOKEN}":
        errors.append("Authorization is not Bearer <token>")
    if headers.get("Accept") != "application/vnd.github+json":
        errors.append("Accept is not application/vnd.github+json")
    if headers.get("X-GitHub-Api-Version") != "2022-11-28":
        errors.append("X-GitHub-Api-Version missing")
    return errors


ROUTES = {
    "/rest/api/3/issue": ("jira", JIRA_CREATE, _jira_headers),
    "/graphql": ("linear", LINEAR_CREATE, _linear_headers),
    "/repos/acme/ops/issues": ("github", GITHUB_CREATE, _github_headers),
}

SUCCESS = {
    "jira": (201, {"id": "10000", "key": "OPS-24", "self": "https://acme.atlassian.net/rest/api/3/issue/10000"}),
    "linear": (
        200,
        {
            "data": {
                "issueCreate": {
                    "success": True,
                    "issue": {
                        "id": "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9",
                        "identifier": "ENG-7",
                        "url": "https://linear.app/acme/issue/ENG-7/add-an-eval-case",
                        "state": {"name": "Todo", "type": "unstarted"},
                    },
                }
            }
        },
    ),
    "github": (
        201,
        {"id": 1, "number": 42, "html_url": "https://github.com/acme/ops/issues/42", "state": "open", "title": "x"},
    ),
}


class Receiver:
    """What the fake trackers received (``requests``: vendor, JSON body, headers, schema errors) and will answer."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: dict[str, tuple[int, object]] = dict(SUCCESS)
        self.url = ""

    def answer(self, vendor: str, status: int, body: object) -> None:
        self.answers[vendor] = (status, body)


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            route = ROUTES.get(self.path)
            if route is None:
                self._send(404, {"message": "Not Found"})
                return
            vendor, schema, check_headers = route
            errors = check_headers(self.headers)
            if "application/json" not in (self.headers.get("Content-Type") or ""):
                errors.append("Content-Type is not JSON")
            try:
                body = json.loads(raw)
                errors += [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(body)]
            except ValueError:
                body, errors = None, [*errors, "body is not JSON"]
            state.requests.append({"vendor": vendor, "body": body, "headers": dict(self.headers), "errors": errors})
            if errors:  # what the vendor would answer to a malformed request
                self._send(400, {"errorMessages": errors, "message": "; ".join(errors), "errors": []})
                return
            self._send(*state.answers[vendor])

        def _send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def trackers(settings, receiver):
    """Every tracker configured against the local receiver, with webhook secrets."""
    settings.FIREBREAK_BASE_URL = "https://firebreak.example.com"
    settings.FIREBREAK_JIRA_URL = receiver.url
    settings.FIREBREAK_JIRA_EMAIL = JIRA_EMAIL
    settings.FIREBREAK_JIRA_API_TOKEN = JIRA_TOKEN
    settings.FIREBREAK_JIRA_PROJECT = "OPS"
    settings.FIREBREAK_JIRA_ISSUE_TYPE = "Task"
    settings.FIREBREAK_JIRA_WEBHOOK_SECRET = SECRETS["jira"]
    settings.FIREBREAK_LINEAR_API_KEY = LINEAR_KEY
    settings.FIREBREAK_LINEAR_TEAM_ID = "9cfb482a-81e3-4154-b5b9-2c805e70a02d"
    settings.FIREBREAK_LINEAR_API_URL = f"{receiver.url}/graphql"
    settings.FIREBREAK_LINEAR_WEBHOOK_SECRET = SECRETS["linear"]
    settings.FIREBREAK_GITHUB_TOKEN = GITHUB_TOKEN
    settings.FIREBREAK_GITHUB_REPO = "acme/ops"
    settings.FIREBREAK_GITHUB_API_URL = receiver.url
    settings.FIREBREAK_GITHUB_WEBHOOK_SECRET = SECRETS["github"]
    return receiver


@pytest.fixture
def no_trackers(settings):
    for name in ("FIREBREAK_JIRA_URL", "FIREBREAK_LINEAR_API_KEY", "FIREBREAK_GITHUB_TOKEN"):
        setattr(settings, name, "")
    for name in ("JIRA", "LINEAR", "GITHUB"):
        setattr(settings, f"FIREBREAK_{name}_WEBHOOK_SECRET", "")


@pytest.fixture
def incident(db):
    return Incident.objects.create(
        number=7, title="Refund agent refunded everyone", severity="SEV2", declared_at=datetime(2025, 3, 3, tzinfo=UTC)
    )


@pytest.fixture
def postmortem(incident, responder):
    template = PostMortemTemplate.objects.get(slug="sev1-agent")
    return postmortem_services.postmortem_start(incident=incident, template=template, actor=Actor.person(responder))


@pytest.fixture
def item(postmortem, responder) -> ActionItem:
    return postmortem_services.action_item_add(
        postmortem=postmortem,
        title="Add an eval case for refunds over $100",
        kind=ActionItem.Kind.EVAL_CASE,
        actor=Actor.person(responder),
    )
