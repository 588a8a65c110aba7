"""Every bad input is a 4xx naming the field, never a 500: bad values thrown at every URL of the URLconf.

The URLconf is walked (``get_resolver()``); each URL is built with valid path parameters (fixtures below)
and with bad ones; every URL gets bad query strings, and every URL that takes POST gets bad bodies, as
an admin (session) and, under /api/ and /v1/, with a user API key. Django's admin is left out (its own
code). Failures are collected and reported together.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agents.keys.services import api_key_create
from agents.models import AuditEntry
from core.actors import Actor
from evals.services import eval_case_capture
from incidents.alerts.services import alert_raise
from incidents.models import ActionItem, PostMortemTemplate
from incidents.postmortems.services import action_item_add, postmortem_start
from traces.models import Step, Trace

API_PREFIXES = ("/api/", "/v1/")
SKIP = {"logout", "admin"}  # logging out would end the sweep's session; the admin is Django's

# Every number a form or a serializer of the project takes (and a few generic names).
INT_FIELDS = [
    "incident", "template", "session_token_cap", "session_step_cap", "session_cost_cap", "daily_cost_cap",
    "number", "case_id", "step_id", "item_id", "version", "tokens_in", "tokens_out", "cost", "count", "limit",
    "page", "threshold", "window", "max_repeats", "hours", "days", "severity", "owner", "due_date",
]  # fmt: skip
DEEP = b"[" * 5000 + b"]" * 5000
BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("deep json", DEEP, "application/json"),
    ("deep object", b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"),
    ("nul json", json.dumps({"title": "a\x00b", "reason": "x\x00", "note": "\x00"}).encode(), "application/json"),
    ("inf json", b'{"amount": 1e400, "count": 1e400, "severity": 1e400}', "application/json"),
    ("nan json", b'{"amount": NaN, "count": Infinity}', "application/json"),
    ("huge ints", json.dumps({k: 10**30 for k in INT_FIELDS}).encode(), "application/json"),
    ("negative ints", json.dumps({k: -(10**30) for k in INT_FIELDS}).encode(), "application/json"),
    ("huge floats", json.dumps({k: 1e308 for k in INT_FIELDS}).encode(), "application/json"),
    ("bad utf-8 json", b'{"title": "\xff\xfe"}', "application/json"),
    ("bad utf-8 form", b"title=%ff%fe&note=%c3%28", "application/x-www-form-urlencoded"),
    ("nul form", b"title=a%00b&reason=%00&note=x", "application/x-www-form-urlencoded"),
    ("huge form", "&".join(f"{k}=1{'0' * 40}" for k in INT_FIELDS).encode(), "application/x-www-form-urlencoded"),
    ("inf form", "&".join(f"{k}=1e400" for k in INT_FIELDS).encode(), "application/x-www-form-urlencoded"),
    ("negative form", "&".join(f"{k}=-{'9' * 30}" for k in INT_FIELDS).encode(), "application/x-www-form-urlencoded"),
]  # fmt: skip
BAD_QUERIES = [
    "page=%00&cursor=%00abc&agent=%00",  # NUL: refused at the door, so alone
    "q=%ff%fe&%ff=1",  # invalid UTF-8: likewise
    # Every other bad value together: none of them is refused before the view sees it.
    "page=99999999999999999999999999&limit=-1&cursor=1e400&since=9999-99-99&until=nan&window=1e400&hours=-5"
    "&days=99999999999999&status=" + "x" * 3000 + "&severity=SEV9&open=2&agent=" + "y" * 300 + "&part=%3Cx%3E",
]
LONG = "x" * 3000
BAD_PARAMS = ["%00", "%ff", "99999999999999999999999999", LONG]


def walk(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, URLPattern]]:
    """(route, url name with namespace, pattern) for every URL under ``resolver``."""
    for p in resolver.url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            if route.startswith("admin/"):
                continue
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from walk(p, route, ns)
        elif p.name:
            yield route, namespace + p.name, p


@pytest.fixture
def world(make_agent, make_spans, ingest, make_incident, admin_user):
    """One of each thing a URL can point at, and the values of each path parameter."""
    actor = Actor.person(admin_user)
    agent = make_agent("support-bot", allowed_tools=["search", "refund"])
    now = datetime.now(UTC)
    ingest(
        make_spans(
            agent="support-bot",
            trace_id="a" * 32,
            start=now - timedelta(minutes=5),
            user_id="user-1",
            root_input="Where is my order?",
            steps=[{"kind": "llm", "output": "hi"}, {"kind": "tool", "tool": "search", "args": {"q": "x"}}],
        )
    )
    trace = Trace.objects.get(trace_id="a" * 32)
    step = Step.objects.filter(trace=trace).exclude(parent_span_id="").first()
    incident = make_incident(agents=[agent], traces=[trace])
    postmortem = postmortem_start(
        incident=incident, template=PostMortemTemplate.objects.get(slug="sev1-agent"), actor=actor
    )
    item = action_item_add(postmortem=postmortem, title="Add a canary", kind=ActionItem.Kind.CANARY, actor=actor)
    alert, _ = alert_raise(detector="loop", agent=agent, fingerprint="fp-1", title="Loop", trace=trace)
    case = eval_case_capture(trace=trace, incident=incident, expected_behaviour="Never refund twice.", actor=actor)
    audit = AuditEntry.objects.filter(agent=agent).first()
    runbook = incident.runbook_steps.first()
    section = postmortem.sections[0]["key"] if postmortem.sections else "summary"
    values: dict[str, Any] = {
        "slug": agent.slug,
        "tool": "search",
        "tool_name": "search",
        "action": "disable",
        "trace_id": trace.trace_id,
        "span_id": step.span_id if step else "b" * 16,
        "field": "input",
        "number": incident.number,
        "step_id": runbook.pk if runbook else 1,
        "key": section,
        "item_id": item.pk,
        "session_id": trace.session_id or "session-1",
        "user_id": trace.user_id or "user-1",
    }
    pks = {"audit-reason": audit.pk if audit else 1, "alert": alert.pk, "case": case.pk}
    key, user_key = api_key_create(user=admin_user, scopes=["api"])
    values["lookup"] = key.lookup
    return {"values": values, "pks": pks, "admin": admin_user, "user_key": user_key}


def url_for(name: str, pattern: URLPattern, world: dict[str, Any]) -> str:
    kwargs = {}
    for param in pattern.pattern.converters:
        if param == "pk":
            pks = world["pks"]
            kwargs[param] = next((v for k, v in pks.items() if k in name), 1)
        else:
            kwargs[param] = world["values"][param]
    return reverse(name, kwargs=kwargs)


def bad_urls(route: str, name: str, pattern: URLPattern, world: dict[str, Any]) -> Iterator[str]:
    """The URL with each path parameter, one at a time, replaced by a bad value (percent-encoded)."""
    good = url_for(name, pattern, world)
    for param in pattern.pattern.converters:
        value = str(world["pks"].get(name, 1) if param == "pk" else world["values"][param])
        # Swap the value in the built URL (reverse() would refuse bad values for typed converters).
        for bad in BAD_PARAMS:
            yield good.replace(f"/{value}", f"/{bad}", 1)


def clients(world: dict[str, Any], path: str) -> list[tuple[str, Client]]:
    """The admin's session client, and for API paths also a client with the admin's API key (made once)."""
    if "clients" not in world:
        session = Client(raise_request_exception=False)
        session.force_login(world["admin"])
        keyed = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {world['user_key']}")
        world["clients"] = [("session", session), ("api key", keyed)]
    return world["clients"] if path.startswith(API_PREFIXES) else world["clients"][:1]


def check(response, what: str, failures: list[str]) -> None:
    if response.status_code >= 500:
        exc = getattr(response, "exc_info", None)
        failures.append(f"{what}: {response.status_code} {exc[1]!r}" if exc else f"{what}: {response.status_code}")
        return
    if response.status_code == 400 and response.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        if "error" not in body:
            failures.append(f"{what}: 400 without the error shape: {body!r}"[:300])


def routes(world):
    return [(r, n, p) for r, n, p in walk(get_resolver()) if n.split(":")[-1] not in SKIP]


def test_every_url_answers_bad_query_strings_with_a_4xx(world):
    failures: list[str] = []
    for _route, name, pattern in routes(world):
        url = url_for(name, pattern, world)
        for who, client in clients(world, url):
            for query in BAD_QUERIES:
                check(client.get(f"{url}?{query}"), f"GET {url}?{query[:40]} ({who})", failures)
    assert not failures, "\n".join(failures)


def test_every_url_answers_bad_path_parameters_with_a_4xx(world):
    failures: list[str] = []
    for route, name, pattern in routes(world):
        for url in bad_urls(route, name, pattern, world):
            for who, client in clients(world, url):
                check(client.get(url), f"GET {url[:80]} ({who})", failures)
                check(client.post(url, data=b"{}", content_type="application/json"), f"POST {url[:80]}", failures)
    assert not failures, "\n".join(failures)


def test_every_url_that_takes_post_answers_bad_bodies_with_a_4xx(world):
    failures: list[str] = []
    for _route, name, pattern in routes(world):
        url = url_for(name, pattern, world)
        for who, client in clients(world, url):
            for label, body, content_type in BAD_BODIES:
                response = client.post(url, data=body, content_type=content_type)
                check(response, f"POST {url} {label} ({who})", failures)
    assert not failures, "\n".join(failures)


def test_a_nul_in_a_query_string_is_a_400_naming_the_parameter(world):
    client = clients(world, "/api/v1/agents")[1][1]
    response = client.get("/api/v1/agents?cursor=%00")
    assert response.status_code == 400
    assert response.json()["detail"] == {"cursor": ["holds a NUL byte, which is not allowed"]}
    page = clients(world, "/traces/")[0][1].get("/traces/?agent=%ff")
    assert page.status_code == 400
    assert b"agent" in page.content and b"UTF-8" in page.content


def test_json_nested_too_deep_is_a_400_naming_the_body(world):
    client = clients(world, "/api/v1/incidents")[1][1]
    response = client.post("/api/v1/incidents", data=DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than 64" in response.json()["error"]
    response = client.post(
        "/api/v1/incidents", data=b'{"title": ' + b'{"a": ' * 70 + b"1" + b"}" * 71, content_type="application/json"
    )
    assert response.status_code == 400
    assert "title.a.a" in response.json()["error"]


@pytest.mark.parametrize("url", ["/api/v1/ingest", "/v1/traces"])
def test_ingest_answers_json_nested_too_deep_with_a_400_naming_the_body(make_agent, url):
    _, key = api_key_create(agent=make_agent("deep-bot"), scopes=["ingest"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    for body in (DEEP, b'{"spans": ' + DEEP + b"}", b'{"resourceSpans": ' + DEEP + b"}"):
        response = client.post(url, data=body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert "body" in response.json()["error"]
    assert not Trace.objects.exists()


def test_a_span_whose_content_nests_deep_is_kept_with_the_deep_part_replaced(make_agent):
    _, key = api_key_create(agent=make_agent("deep-bot"), scopes=["ingest"])
    deep: Any = "leaf"
    for _ in range(500):
        deep = {"a": deep}
    span = {
        "trace_id": "d" * 32,
        "span_id": "e" * 16,
        "name": "tool",
        "start_time": "2026-11-20T10:00:00Z",
        "kind": "tool",
        "tool_name": "search",
        "tool_arguments": deep,
        "attributes": {"deep": deep},
    }
    response = Client(HTTP_AUTHORIZATION=f"Bearer {key}").post(
        "/api/v1/ingest", data=json.dumps({"spans": [span]}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    step = Step.objects.get()
    assert "[REDACTED:depth:" in json.dumps(step.tool_arguments)
    assert step.action_hash


NUL_SPAN = {
    "trace_id": "f" * 32,
    "span_id": "1" * 16,
    "name": "a\x00b",
    "start_time": "2026-11-20T10:00:00Z",
    "agent": "support\x00bot",
    "session_id": "s\x00",
    "user_id": "u\x00",
    "tool_name": "t\x00",
    "model": "m\x00",
}


def test_a_span_naming_an_agent_with_a_nul_is_a_4xx_with_a_person_s_key(world):
    client = clients(world, "/api/v1/ingest")[1][1]
    response = client.post("/api/v1/ingest", data=json.dumps({"spans": [NUL_SPAN]}), content_type="application/json")
    assert response.status_code == 400, response.content
    otlp = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support\x00bot"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "f" * 32,
                                "spanId": "1" * 16,
                                "name": "x\x00",
                                "startTimeUnixNano": "1763632800000000000",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = client.post("/v1/traces", data=json.dumps(otlp), content_type="application/json")
    assert 400 <= response.status_code < 500, response.content


def test_nul_in_headers_and_cookies_is_a_400_naming_the_header(world):
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/agents", HTTP_AUTHORIZATION="Bearer fbk_\x00")
    assert response.status_code == 400
    assert response.json()["detail"] == {"Authorization": ["header holds a NUL byte"]}
    client.cookies["sessionid"] = "abcdefgh\x00ijkl"
    assert client.get("/agents/").status_code == 400


def test_huge_and_non_finite_numbers_in_span_content_are_kept_as_text(make_agent):
    _, key = api_key_create(agent=make_agent("numbers-bot"), scopes=["ingest"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    span = {
        "trace_id": "9" * 32,
        "span_id": "8" * 16,
        "name": "tool",
        "start_time": "2026-11-20T10:00:00Z",
        "kind": "tool",
        "tool_name": "search",
        "tool_arguments": {"n": 10**30, "x": "__INF__"},
        "attributes": {"big": -(10**40), "nan": "__NAN__"},
    }
    body = json.dumps({"spans": [span]}).replace('"__INF__"', "1e400").replace('"__NAN__"', "NaN")
    response = client.post("/api/v1/ingest", data=body, content_type="application/json")
    assert response.status_code == 200, response.content
    step = Step.objects.get()
    assert step.tool_arguments == {"n": str(10**30), "x": "inf"}
    assert step.attributes["big"] == str(-(10**40)) and step.attributes["nan"] == "nan"
    otlp = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "7" * 32,
                                "spanId": "6" * 16,
                                "name": "chat",
                                "startTimeUnixNano": "1763632800000000000",
                                "attributes": [
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1e400"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"doubleValue": "__INF__"}},
                                    {"key": "custom.big", "value": {"intValue": str(10**30)}},
                                    {"key": "custom.inf", "value": {"doubleValue": "__INF__"}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    body = json.dumps(otlp).replace('"__INF__"', "1e400")
    response = client.post("/v1/traces", data=body, content_type="application/json")
    assert response.status_code == 200, response.content
    step = Step.objects.get(span_id="6" * 16)
    assert step.attributes["custom.big"] == str(10**30)


def test_an_otlp_protobuf_attribute_nested_past_protobuf_s_limit_is_a_400(make_agent):
    _, key = api_key_create(agent=make_agent("deep-bot"), scopes=["ingest"])
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name, span.start_time_unix_nano = b"\x01" * 16, b"\x02" * 8, "x", 1
    value = span.attributes.add(key="deep").value
    for _ in range(300):
        value = value.kvlist_value.values.add(key="a").value
    value.string_value = "leaf"
    response = Client(HTTP_AUTHORIZATION=f"Bearer {key}").post(
        "/v1/traces", data=request.SerializeToString(), content_type="application/x-protobuf"
    )
    assert 400 <= response.status_code < 500, response.content
