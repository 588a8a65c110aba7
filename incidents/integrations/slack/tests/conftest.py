"""A local Slack: a real HTTP server on 127.0.0.1 that answers the Web API methods the app calls the
way Slack does, after checking each request against Slack's documented arguments (Bearer token,
required arguments, channel-name rules, Block Kit shapes and limits), and takes replies posted to
a ``response_url``. No network leaves the machine."""

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jsonschema
import pytest
from celery import current_app as celery_app

TOKEN = "xoxb-test-0000000000-firebreak"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

# Block Kit, the subset the app sends, with the limits Slack documents (docs.slack.dev/reference/block-kit).
_TEXT: dict[str, Any] = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"enum": ["plain_text", "mrkdwn"]}, "text": {"type": "string", "minLength": 1}},
}
_PLAIN = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "plain_text"}, "text": {"type": "string", "minLength": 1, "maxLength": 75}},
}
_BUTTON = {
    "type": "object",
    "required": ["type", "text", "action_id"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "button"},
        "text": _PLAIN,
        "action_id": {"type": "string", "maxLength": 255},
        "value": {"type": "string", "maxLength": 2000},
        "style": {"enum": ["primary", "danger"]},
        "url": {"type": "string", "maxLength": 3000},
        "confirm": {
            "type": "object",
            "required": ["title", "text", "confirm", "deny"],
            "properties": {"title": _PLAIN, "text": _TEXT, "confirm": _PLAIN, "deny": _PLAIN},
        },
    },
}
BLOCKS_SCHEMA = {
    "type": "array",
    "maxItems": 50,
    "items": {
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "text"],
                "properties": {
                    "type": {"const": "section"},
                    "text": {
                        **_TEXT,
                        "properties": {**_TEXT["properties"], "text": {"type": "string", "maxLength": 3000}},
                    },
                    "block_id": {"type": "string", "maxLength": 255},
                },
            },
            {
                "type": "object",
                "required": ["type", "elements"],
                "properties": {
                    "type": {"const": "context"},
                    "elements": {"type": "array", "minItems": 1, "maxItems": 10, "items": _TEXT},
                },
            },
            {
                "type": "object",
                "required": ["type", "elements"],
                "properties": {
                    "type": {"const": "actions"},
                    "block_id": {"type": "string", "maxLength": 255},
                    "elements": {"type": "array", "minItems": 1, "maxItems": 25, "items": _BUTTON},
                },
            },
        ]
    },
}
CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeSlack:
    """What the receiver saw and how it should answer."""

    url: str = ""
    calls: list[SlackCall] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # bodies posted to a response_url
    taken_names: set[str] = field(default_factory=set)
    emails: dict[str, str] = field(default_factory=dict)  # Slack user id -> profile e-mail
    fail: dict[str, int] = field(default_factory=dict)  # method -> HTTP status to answer once
    refuse: dict[str, str] = field(default_factory=dict)  # method -> Slack error to answer once (HTTP 200)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (channel, ts) -> message
    _ts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    @property
    def hooks_url(self) -> str:
        return self.url + "/hooks/"

    def called(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    # --- the methods, as Slack answers them ------------------------------------------------------------

    def answer(self, method: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if method in self.fail:
                return self.fail.pop(method), {"ok": False, "error": "internal_error"}
            if method in self.refuse:
                return 200, {"ok": False, "error": self.refuse.pop(method)}
            handler = getattr(self, "m_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method"}
            return 200, handler(args)

    def _next_ts(self) -> str:
        self._ts += 1
        return f"1700000000.{self._ts:06d}"

    def _blocks_ok(self, args: dict[str, Any]) -> str | None:
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if blocks is None:
            return None if args.get("text") else "no_text"
        try:
            jsonschema.validate(blocks, BLOCKS_SCHEMA)
        except jsonschema.ValidationError:
            return "invalid_blocks"
        return None

    def m_conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name", "")
        if not name:
            return {"ok": False, "error": "invalid_name_required"}
        if len(name) > 80:
            return {"ok": False, "error": "invalid_name_maxlength"}
        if not CHANNEL_NAME.match(name):
            return {"ok": False, "error": "invalid_name_specials"}
        if name in self.taken_names:
            return {"ok": False, "error": "name_taken"}
        self.taken_names.add(name)
        cid = f"C{len(self.taken_names):08d}"
        return {"ok": True, "channel": {"id": cid, "name": name, "is_channel": True, "is_private": False}}

    def m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        problem = self._blocks_ok(args)
        if problem:
            return {"ok": False, "error": problem}
        ts = self._next_ts()
        channel = args["channel"] if args["channel"].startswith("C") else "C99999999"
        self.messages[(channel, ts)] = {"text": args.get("text"), "blocks": args.get("blocks")}
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text"), "ts": ts}}

    def m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (args.get("channel", ""), args.get("ts", ""))
        if not all(key):
            return {"ok": False, "error": "invalid_arguments"}
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        problem = self._blocks_ok(args)
        if problem:
            return {"ok": False, "error": problem}
        self.messages[key] = {"text": args.get("text"), "blocks": args.get("blocks")}
        return {"ok": True, "channel": key[0], "ts": key[1], "text": args.get("text")}

    def m_conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not users or not all(re.match(r"^[UW][A-Z0-9]+$", u) for u in users):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": args["channel"]}}

    def m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        uid = args.get("user", "")
        if uid not in self.emails:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": uid, "name": uid.lower(), "profile": {"email": self.emails[uid]}}}


class _Handler(BaseHTTPRequestHandler):
    slack: FakeSlack

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _args(self) -> dict[str, Any]:
        parts = urlsplit(self.path)
        args: dict[str, Any] = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if raw:
            if self.headers.get("Content-Type", "").startswith("application/json"):
                args.update(json.loads(raw))
            else:
                args.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        return args

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        args = self._args()
        if path.startswith("/hooks/"):
            self.slack.responses.append(args)
            self._reply(200, {"ok": True})
            return
        method = path.removeprefix("/api/")
        self.slack.calls.append(SlackCall(method, args, dict(self.headers)))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(200, {"ok": False, "error": "not_authed"})
            return
        status, body = self.slack.answer(method, args)
        self._reply(status, body)

    do_GET = _handle
    do_POST = _handle


@pytest.fixture
def fake_slack(settings) -> Iterator[FakeSlack]:
    """The local Slack, with the app's settings pointing at it."""
    slack = FakeSlack()
    handler = type("Handler", (_Handler,), {"slack": slack})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    slack.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.FIREBREAK_SLACK_BOT_TOKEN = TOKEN
    settings.FIREBREAK_SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.FIREBREAK_SLACK_API_URL = slack.api_url
    settings.FIREBREAK_SLACK_ALERTS_CHANNEL = "#agent-alerts"
    settings.FIREBREAK_SLACK_RESPONSE_URL_PREFIXES = [slack.hooks_url]
    settings.FIREBREAK_BASE_URL = "https://firebreak.example"
    try:
        yield slack
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run where they are enqueued (the broker is real; no worker runs in tests)."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = False
        celery_app.conf.task_eager_propagates = False


def sign(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature headers (v0), computed as Slack documents it."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": ts, "HTTP_X_SLACK_SIGNATURE": f"v0={digest}"}


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()
