"""The blast radius API: read-only for viewers, 400 naming the parameter, in the OpenAPI schema."""

import pytest

from incidents.blast_radius.tests.conftest import PARAMS
from incidents.models import TimelineEntry, TimelineKind

API = "/api/v1/incidents/1/blast-radius"


def test_api_reads_for_viewers(world, make_client, viewer):
    _incident, runs = world
    response = make_client(viewer).get(API, {**PARAMS, "agent": ["refunds", "support"]})
    assert response.status_code == 200
    data = response.json()
    assert data["trajectories"] == 4
    assert data["distinct_users"] == 3
    assert data["still_running"] == 2
    assert data["traces"][0] == runs["r4"].trace_id
    assert data["signature"]["agents"] == ["refunds", "support"]
    assert data["window"]["since"].startswith("2025-03-09T12:00:00")
    assert not TimelineEntry.objects.filter(kind=TimelineKind.BLAST_RADIUS).exists()


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "signature"),
        ({"tool": "x", "since": "bad"}, "since"),
        ({"tool": "x", "until": "bad"}, "until"),
        ({"tool": "x", "since": "2025-03-10T12:00:00Z", "until": "2025-03-10T12:00:00Z"}, "until"),
        ({"args": "re:[z-a]"}, "args"),
        ({"args": r"re:(a*)*\1!"}, "args"),  # a back-reference: exponential, refused
        ({"args": r"re:\d{4}"}, "args"),  # no literal text for the trigram index: it would read every step
        ({"agent": "ghost"}, "agent"),
    ],
)
def test_api_400_names_the_param(world, make_client, viewer, params, param):
    response = make_client(viewer).get(API, params)
    assert response.status_code == 400
    assert response.json()["detail"]["param"] == param
    assert response.json()["error"].startswith(param)


def test_api_404_401(world, make_client, viewer, client):
    assert make_client(viewer).get("/api/v1/incidents/99/blast-radius", {"tool": "x"}).status_code == 404
    assert client.get(API, {"tool": "x"}).status_code in (401, 403)


def test_api_is_in_the_schema(db, make_client, viewer):
    schema = make_client(viewer).get("/api/schema/", {"format": "json"}).json()
    op = schema["paths"]["/api/v1/incidents/{number}/blast-radius"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"tool", "args", "action_hash", "agent", "since", "until", "model_version"} <= names
