"""The evals API: GET /api/v1/evals/cases (JSON, JSON Lines) and POST /api/v1/evals/runs."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents.keys.services import api_key_create
from core.actors import Actor
from evals.models import EvalCase, EvalRun
from incidents.models import Alert, TimelineEntry
from incidents.services import incident_close

pytestmark = pytest.mark.django_db

CASES, RUNS = "/api/v1/evals/cases", "/api/v1/evals/runs"
KEYS = [
    "id",
    "case_id",
    "agent",
    "title",
    "input",
    "expected_behaviour",
    "forbidden_actions",
    "failure_class",
    "severity",
    "incident",
    "trace_id",
    "created_at",
]


def api(method, url, *, key=None, user=None, body=None, **headers):
    client = Client()
    if user is not None:
        client.force_login(user)
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if method == "get":
        return client.get(url, **headers)
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def incident(make_incident, refund_trace):
    return make_incident(severity="SEV3", failure_class="runaway-loop", traces=[refund_trace.trace_id])


@pytest.fixture
def case(refund_trace, incident, responder):
    from evals.services import eval_case_capture

    return eval_case_capture(
        trace=refund_trace, incident=incident, expected_behaviour="Refund once.", actor=Actor.person(responder)
    )


def run(case, passed, **extra):
    return {"case": f"EC-{case.pk}", "passed": passed, **extra}


# --- export ----------------------------------------------------------------------------------------


def test_export_is_json_by_default_with_stable_keys(case, make_agent, viewer, refund_trace, incident):
    EvalCase.objects.create(agent=make_agent("other-bot"), title="other", input="x", expected_behaviour="y")
    response = api("get", CASES, user=viewer)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert [doc["case_id"] for doc in body] == sorted(doc["case_id"] for doc in body)  # oldest first
    doc = body[0]
    assert list(doc) == KEYS
    assert doc["id"] == f"EC-{case.pk}" and doc["case_id"] == case.pk and doc["agent"] == "refund-bot"
    assert doc["input"] == refund_trace.root_input and doc["expected_behaviour"] == "Refund once."
    assert doc["forbidden_actions"][0]["tool"] == "issue_refund"
    assert doc["failure_class"] == "runaway-loop" and doc["severity"] == "SEV3"
    assert doc["incident"] == incident.number and doc["trace_id"] == refund_trace.trace_id
    assert body[1]["incident"] is None and body[1]["trace_id"] is None and body[1]["severity"] is None


@pytest.mark.parametrize(("query", "headers"), [("?format=jsonl", {}), ("", {"HTTP_ACCEPT": "application/x-ndjson"})])
def test_export_as_json_lines_is_one_object_per_line(case, make_agent, viewer, query, headers):
    EvalCase.objects.create(agent=make_agent("other-bot"), title="two\nlines", input="x", expected_behaviour="y")
    response = api("get", CASES + query, user=viewer, **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    text = response.content.decode()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 2
    docs = [json.loads(line) for line in lines]
    assert [list(doc) for doc in docs] == [KEYS, KEYS]
    assert docs[0]["id"] == f"EC-{case.pk}" and docs[1]["title"] == "two\nlines"


def test_export_filters_by_agent_and_unknown_agent_is_404(case, make_agent, viewer):
    EvalCase.objects.create(agent=make_agent("other-bot"), title="other", input="x", expected_behaviour="y")
    body = api("get", f"{CASES}?agent=refund-bot", user=viewer).json()
    assert [doc["agent"] for doc in body] == ["refund-bot"]
    response = api("get", f"{CASES}?agent=ghost", user=viewer)
    assert response.status_code == 404 and "ghost" in response.json()["error"]


def test_export_for_person_keys_not_agent_keys(case, viewer):
    person = api_key_create(user=viewer, scopes=["api"])[1]
    assert api("get", CASES, key=person).status_code == 200
    agent_key = api_key_create(agent=case.agent, scopes=["ingest", "gate"])[1]
    assert api("get", CASES, key=agent_key).status_code == 403


# --- runs ------------------------------------------------------------------------------------------


def test_ci_posts_a_batch_of_results(case, responder):
    ran_at = (timezone.now() - timedelta(minutes=5)).replace(microsecond=0)
    body = {
        "source": "github-actions #123",
        "results": [
            run(case, False, output="refunded twice", version="refund-agent@v9", ran_at=ran_at.isoformat()),
            {"case": case.pk, "passed": True, "version": "refund-agent@v10 / gpt-4.1", "details": {"calls": 1}},
        ],
    }
    response = api("post", RUNS, user=responder, body=body)
    assert response.status_code == 201, response.content
    assert response.json()["recorded"] == 2
    latest, first = case.runs.all()
    assert latest.passed and latest.version == "refund-agent@v10 / gpt-4.1" and latest.details == {"calls": 1}
    assert latest.source == first.source == "github-actions #123"
    assert not first.passed and first.ran_at == ran_at and first.output == "refunded twice"


OK = object()  # stands for a valid result of the case, so the bad one is second


@pytest.mark.parametrize(
    ("results", "field"),
    [
        ([{"case": "EC-1"}], "results[0].passed"),
        ([OK, {}], "results[1].passed"),
        ([OK, {"passed": True}], "results[1].case"),
        ([OK, {"case": "X-1", "passed": True}], "results[1].case"),
        ([OK, {"case": True, "passed": True}], "results[1].case"),
        ([OK, {"case": 1, "passed": "yes"}], "results[1].passed"),
        ([OK, {"case": 1, "passed": True, "ran_at": "yesterday"}], "results[1].ran_at"),
        ([OK, {"case": 1, "passed": True, "details": [1]}], "results[1].details"),
        ([OK, {"case": 1, "passed": True, "version": "v" * 201}], "results[1].version"),
        ([], "results"),
        ("nope", "results"),
    ],
)
def test_a_bad_batch_is_400_naming_the_field_and_writes_nothing(case, responder, results, field):
    if isinstance(results, list):
        results = [run(case, True) if r is OK else r for r in results]
    response = api("post", RUNS, user=responder, body={"results": results})
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["detail"] and field in body["error"]
    assert EvalRun.objects.count() == 0


def test_a_body_that_is_not_an_object_is_400(case, responder):
    response = api("post", RUNS, user=responder, body=[run(case, True)])
    assert response.status_code == 400
    assert EvalRun.objects.count() == 0


def test_an_unknown_case_is_404_naming_it_and_writes_nothing(case, responder):
    response = api(
        "post", RUNS, user=responder, body={"results": [run(case, True), {"case": "EC-999", "passed": True}]}
    )
    assert response.status_code == 404
    assert "EC-999" in response.json()["error"] and "results[1].case" in response.json()["detail"]
    assert EvalRun.objects.count() == 0


def test_agent_keys_and_viewers_cannot_post_runs(case, viewer, responder):
    agent_key = api_key_create(agent=case.agent, scopes=["ingest", "gate"])[1]
    assert api("post", RUNS, key=agent_key, body={"results": [run(case, True)]}).status_code == 403
    assert api("post", RUNS, user=viewer, body={"results": [run(case, True)]}).status_code == 403
    no_api_scope = api_key_create(user=responder, scopes=["ingest"])[1]
    assert api("post", RUNS, key=no_api_scope, body={"results": [run(case, True)]}).status_code == 403
    assert EvalRun.objects.count() == 0
    person = api_key_create(user=responder, scopes=["api"])[1]
    assert api("post", RUNS, key=person, body={"results": [run(case, True)]}).status_code == 201


def test_green_to_red_raises_exactly_one_alert(case, responder, incident):
    assert api("post", RUNS, user=responder, body={"results": [run(case, False)]}).status_code == 201
    assert Alert.objects.count() == 0  # never green before: no regression
    api("post", RUNS, user=responder, body={"results": [run(case, True, version="v10")]})
    assert Alert.objects.count() == 0
    api("post", RUNS, user=responder, body={"results": [run(case, False, version="v11", output="refunded twice")]})
    alert = Alert.objects.get()
    assert alert.detector == "eval_regression" and alert.fingerprint == f"eval:{case.pk}"
    assert alert.title == f"Eval EC-{case.pk} went red: {case.title}"
    assert alert.agent == case.agent and alert.trace == case.trace and alert.suggested_severity == "SEV3"
    assert alert.failure_class.slug == "runaway-loop" and alert.details["version"] == "v11"
    assert alert.count == 1
    api("post", RUNS, user=responder, body={"results": [run(case, False, version="v12")]})  # stays red
    alert.refresh_from_db()
    assert Alert.objects.count() == 1 and alert.count == 1


def test_the_latest_run_in_a_batch_decides_the_flip(case, responder):
    EvalRun.objects.create(case=case, passed=True, ran_at=timezone.now() - timedelta(hours=1))
    earlier = (timezone.now() - timedelta(minutes=30)).isoformat()
    results = [run(case, False, ran_at=earlier), run(case, True)]
    api("post", RUNS, user=responder, body={"results": results})
    assert Alert.objects.count() == 0


def test_a_green_run_posted_lets_the_incident_close_and_a_red_one_does_not(case, incident, responder):
    api("post", RUNS, user=responder, body={"results": [run(case, False)]})
    with pytest.raises(Exception, match="eval case"):
        incident_close(incident=incident, actor=Actor.person(responder))
    incident.refresh_from_db()
    assert incident.status != "closed"
    api("post", RUNS, user=responder, body={"results": [run(case, True)]})
    incident_close(incident=incident, actor=Actor.person(responder), confirm=True)
    incident.refresh_from_db()
    assert incident.status == "closed"
    assert TimelineEntry.objects.filter(incident=incident, kind="eval").count() == 1
