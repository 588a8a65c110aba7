"""The OpenAPI document at /api/schema/ lists every API operation of issue 14 (the API does what the UI
does), and every /api/v1/ URL in the URLconf is in it (drf-spectacular names a ``pk`` path parameter ``id``)."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

EXPECTED = {
    ("get", "/api/v1/alerts"),
    ("get", "/api/v1/alerts/{id}"),
    ("post", "/api/v1/alerts/{id}/acknowledge"),
    ("post", "/api/v1/alerts/{id}/resolve"),
    ("get", "/api/v1/incidents"),
    ("post", "/api/v1/incidents"),
    ("post", "/api/v1/incidents/{number}/status"),
    ("post", "/api/v1/incidents/{number}/severity"),
    ("post", "/api/v1/incidents/{number}/commander"),
    ("post", "/api/v1/incidents/{number}/take-command"),
    ("get", "/api/v1/incidents/{number}/notes"),
    ("post", "/api/v1/incidents/{number}/notes"),
    ("get", "/api/v1/incidents/{number}/timeline"),
    ("get", "/api/v1/incidents/{number}/postmortem"),
    ("get", "/api/v1/incidents/{number}/postmortem/export.md"),
    ("get", "/api/v1/traces"),
    ("get", "/api/v1/traces/{trace_id}"),
    ("post", "/api/v1/traces/{trace_id}/flag"),
    ("post", "/api/v1/incidents/{number}/runbook/{step_id}"),
    ("get", "/api/v1/keys"),
    ("post", "/api/v1/keys"),
    ("post", "/api/v1/keys/{lookup}/revoke"),
}


def _api_routes(resolver: URLResolver, prefix: str = "") -> set[str]:
    routes: set[str] = set()
    for p in resolver.url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            routes |= _api_routes(p, route)
        elif isinstance(p, URLPattern) and route.startswith("api/v1/"):
            routes.add(
                "/"
                + route.replace("<int:", "{")
                .replace("<str:", "{")
                .replace("<slug:", "{")
                .replace(">", "}")
                .replace("{pk}", "{id}")
            )
    return routes


def test_the_schema_lists_every_operation_the_ui_has(client, viewer):
    client.force_login(viewer)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operations = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert not EXPECTED - operations, sorted(EXPECTED - operations)
    missing = _api_routes(get_resolver()) - set(schema["paths"])
    assert not missing, sorted(missing)
    for method, path in EXPECTED:
        assert schema["paths"][path][method].get("summary"), (method, path)
