import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from incidents.blast_radius import (
    BlastParamError,
    BlastSignature,
    blast_radius,
    blast_radius_record,
    csv_safe,
    signature_parse,
)
from incidents.models import FailureClass, Incident, TimelineEntry, TimelineKind
from traces.models import Step, Trace

DECLARED = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = {"since": DECLARED - timedelta(hours=24), "until": DECLARED + timedelta(hours=2)}


def refund(amount, order="A-1", note=""):
    return {"kind": "tool", "tool": "issue_refund", "args": {"order_id": order, "amount": amount, "note": note}}


@pytest.fixture
def world(db, make_agent, make_spans, ingest):
    """Two agents, several users, runs inside and outside the default window."""
    refunds = make_agent("refunds")
    make_agent("support")
    make_agent("idle")
    runs = {}

    def run(key, agent, user, start, steps, **kw):
        spans = make_spans(agent=agent, user_id=user, start=start, steps=steps, **kw)
        ingest(spans)
        runs[key] = Trace.objects.get(trace_id=spans[0].trace_id)

    t = DECLARED - timedelta(hours=1)
    run("r1", "refunds", "u-alice", t, [{"kind": "llm"}, refund(900, note="VIP override")], model_version="m-2")
    run("r2", "refunds", "u-bob", t + timedelta(minutes=5), [refund(15)], model_version="m-2", prompt_version="p-7")
    run("r3", "refunds", "u-alice", t + timedelta(minutes=10), [refund(900, note="vip OVERRIDE")], status="running")
    run(
        "r4",
        "support",
        '=HYPERLINK("x")',
        t + timedelta(minutes=20),
        [refund(42, order="B-9")],
        status="running",
        input_class="refund_request",
    )
    run(
        "s1",
        "support",
        "u-carol",
        t + timedelta(minutes=30),
        [{"kind": "tool", "tool": "search", "args": {"q": "refund"}}],
        input_class="refund_request",
        prompt_version="p-7",
    )
    # Outside the default window: two days before the declaration.
    run("old", "refunds", "u-dave", DECLARED - timedelta(days=2), [refund(900, note="VIP override")])
    incident = Incident.objects.create(
        number=1,
        title="Refund agent issues large refunds",
        severity="SEV1",
        failure_class=FailureClass.objects.first(),
        declared_at=DECLARED,
    )
    incident.agents.add(refunds)
    incident.traces.add(runs["r1"])
    return incident, runs


def compute(**kw):
    window = {**WINDOW, **{k: kw.pop(k) for k in ("since", "until") if k in kw}}
    return blast_radius(signature=BlastSignature(**kw), **window)


def test_by_tool_name_counts_trajectories_users_and_running(world):
    _incident, runs = world
    result = compute(tool="issue_refund")
    assert result.trajectories == 4
    assert result.distinct_users == 3  # alice twice, bob, the formula-looking id
    assert result.still_running == 2
    assert result.user_ids == sorted(["u-alice", "u-bob", '=HYPERLINK("x")'])
    assert [t.trace_id for t in result.traces] == [runs[k].trace_id for k in ("r4", "r3", "r2", "r1")]
    assert {a["slug"]: a["running"] for a in result.running_agents} == {"refunds": 1, "support": 1}


def test_by_argument_substring_is_case_insensitive_and_regex(world):
    assert compute(args="vip override").trajectories == 2
    assert compute(args="B-9").trajectories == 1
    assert compute(args=r're:"amount": 9\d\d').trajectories == 2
    assert compute(args="re:^nothing$").trajectories == 0
    # A literal % is not a wildcard.
    assert compute(args="%").trajectories == 0


def test_step_criteria_must_hold_on_the_same_step(world):
    assert compute(tool="search", args="refund").trajectories == 1
    assert compute(tool="issue_refund", args='"q": "refund"').trajectories == 0


def test_by_action_hash_of_a_flagged_step(world):
    incident, runs = world
    step = Step.objects.get(trace=runs["r1"], tool_name="issue_refund")
    Trace.objects.filter(pk=runs["r1"].pk).update(flagged_span_id=step.span_id)
    signature, since, until = signature_parse({"trace": runs["r1"].trace_id}, incident=incident, now=WINDOW["until"])
    assert signature.action_hash == step.action_hash
    result = blast_radius(signature=signature, since=since, until=until)
    # Same tool and canonical arguments: r1 only (r3's note differs in case).
    assert [t.trace_id for t in result.traces] == [runs["r1"].trace_id]
    assert compute(action_hash=step.action_hash, since=DECLARED - timedelta(days=3)).trajectories == 2


def test_by_versions_input_class_and_agents(world):
    assert compute(model_version="m-2").trajectories == 2
    assert compute(prompt_version="p-7").trajectories == 2
    assert compute(prompt_version="p-7", tool="issue_refund").trajectories == 1
    assert compute(input_class="refund_request").trajectories == 2
    assert compute(agents=("support",)).trajectories == 2
    assert compute(agents=("support", "refunds"), tool="issue_refund").trajectories == 4
    assert compute(agents=("idle",)).trajectories == 0


def test_window_bounds(world):
    assert compute(tool="issue_refund", since=DECLARED - timedelta(days=3)).trajectories == 5
    start = DECLARED - timedelta(hours=1)
    # since is inclusive, until exclusive.
    assert compute(tool="issue_refund", since=start, until=start + timedelta(minutes=5)).trajectories == 1
    assert (
        compute(
            tool="issue_refund", since=start + timedelta(minutes=5), until=start + timedelta(minutes=6)
        ).trajectories
        == 1
    )


def test_default_window_is_24h_before_declaration_until_now(world):
    incident, _ = world
    now = DECLARED + timedelta(hours=3)
    _sig, since, until = signature_parse({"tool": "x"}, incident=incident, now=now)
    assert since == DECLARED - timedelta(hours=24)
    assert until == now


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "signature"),
        ({"tool": "x", "since": "yesterday"}, "since"),
        ({"tool": "x", "until": "2025-13-45T00:00"}, "until"),
        ({"tool": "x", "since": "2025-03-10T12:00:00Z", "until": "2025-03-10T11:00:00Z"}, "until"),
        ({"args": "re:(unclosed"}, "args"),
        ({"agent": "nobody"}, "agent"),
        ({"action_hash": "not-hex!"}, "action_hash"),
        ({"trace": "f" * 32}, "trace"),
    ],
)
def test_bad_parameters_are_named(world, params, param):
    incident, _ = world
    with pytest.raises(BlastParamError) as exc:
        signature_parse(params, incident=incident)
    assert exc.value.param == param


def test_trace_without_a_flag_is_rejected(world):
    incident, runs = world
    with pytest.raises(BlastParamError, match="no flagged step"):
        signature_parse({"trace": runs["r2"].trace_id}, incident=incident)


def test_record_saves_one_timeline_entry(world, responder):
    incident, _ = world
    _result, entry = blast_radius_record(
        incident=incident, signature=BlastSignature(tool="issue_refund"), actor=Actor.person(responder), **WINDOW
    )
    assert TimelineEntry.objects.filter(incident=incident, kind=TimelineKind.BLAST_RADIUS).count() == 1
    assert entry.body.startswith("Blast radius: 4 trajectories, 3 users, 2 still running — signature tool issue_refund")
    assert entry.data["trajectories"] == 4
    assert entry.data["users"] == 3
    assert entry.data["still_running"] == 2
    assert entry.data["signature"]["tool"] == "issue_refund"
    assert entry.data["window"] == {"since": WINDOW["since"].isoformat(), "until": WINDOW["until"].isoformat()}
    assert len(entry.data["user_ids"]) == 3
    assert entry.data["computed_at"]
    assert entry.actor == responder


def test_csv_safe():
    assert csv_safe("=1+1") == "'=1+1"
    assert csv_safe("+x") == "'+x"
    assert csv_safe("-x") == "'-x"
    assert csv_safe("@x") == "'@x"
    assert csv_safe("u-1") == "u-1"


# --- pages ---------------------------------------------------------------------------------------

URL = "/incidents/1/blast-radius/"
PARAMS = {"tool": "issue_refund", "since": "2025-03-09T12:00:00Z", "until": "2025-03-10T14:00:00Z"}


def test_full_page_without_htmx_and_fragment_with_htmx(world, make_client, viewer):
    client = make_client(viewer)
    page = client.get(URL, PARAMS)
    assert page.status_code == 200
    assert b"<html" in page.content and b'id="blast-radius"' in page.content
    fragment = client.get(URL, PARAMS, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert "<html" not in body
    assert 'class="stats-big blast-trajectories">4<' in body
    assert "/traces/" in body
    assert "HX-Request" in fragment["Vary"]


def test_panel_prefills_from_the_incident(world, make_client, viewer):
    _incident, runs = world
    step = Step.objects.get(trace=runs["r1"], tool_name="issue_refund")
    Trace.objects.filter(pk=runs["r1"].pk).update(flagged_span_id=step.span_id)
    body = make_client(viewer).get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert f'value="{step.action_hash}"' in body
    assert 'name="tool" value="issue_refund"' in body
    assert 'name="agent" value="refunds"' in body
    assert 'value="2025-03-09T12:00:00"' in body


def test_untrusted_values_are_escaped(world, make_client, viewer):
    body = make_client(viewer).get(URL, PARAMS, HTTP_HX_REQUEST="true").content.decode()
    assert '=HYPERLINK("x")' not in body
    assert "=HYPERLINK(&quot;x&quot;)" in body


def test_containment_banner_with_kill_forms_for_responders(world, make_client, responder):
    body = make_client(responder).get(URL, PARAMS, HTTP_HX_REQUEST="true").content.decode()
    assert "Containment did not take: 2 matching runs are still running" in body
    assert 'action="/agents/refunds/kill"' in body
    assert 'action="/agents/support/kill"' in body
    assert 'name="next" value="/incidents/1/"' in body
    assert "Save to timeline" in body


def test_containment_banner_without_forms_for_viewers(world, make_client, viewer):
    body = make_client(viewer).get(URL, PARAMS, HTTP_HX_REQUEST="true").content.decode()
    assert "Containment did not take: 2 matching runs are still running" in body
    assert "/kill" not in body
    assert "Save to timeline" not in body


def test_no_banner_when_nothing_runs(world, make_client, responder):
    body = make_client(responder).get(URL, {**PARAMS, "model_version": "m-2"}).content.decode()
    assert "Containment did not take" not in body


def test_get_with_params_does_not_save(world, make_client, viewer):
    make_client(viewer).get(URL, PARAMS)
    assert not TimelineEntry.objects.filter(kind=TimelineKind.BLAST_RADIUS).exists()


def test_post_saves_the_run_for_responders_only(world, make_client, responder, viewer):
    assert make_client(viewer).post(URL, PARAMS).status_code == 403
    response = make_client(responder).post(URL, PARAMS)
    assert response.status_code == 302
    assert response["Location"].startswith(URL + "?")
    entries = TimelineEntry.objects.filter(kind=TimelineKind.BLAST_RADIUS)
    assert entries.count() == 1
    assert entries[0].data["trajectories"] == 4
    htmx = make_client(responder).post(URL, PARAMS, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 200
    assert "Saved to the timeline" in htmx.content.decode()
    assert "fb:timeline-changed" in htmx["HX-Trigger"]
    assert entries.count() == 2


def test_page_shows_bad_params(world, make_client, viewer):
    client = make_client(viewer)
    assert client.get(URL, {"args": "re:(x"}).status_code == 400
    fragment = client.get(URL, {"args": "re:(x"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert "args: invalid regular expression" in fragment.content.decode()


def test_unknown_incident_page_is_404(world, make_client, viewer):
    assert make_client(viewer).get("/incidents/99/blast-radius/").status_code == 404


def test_csv_export(world, make_client, viewer):
    response = make_client(viewer).get("/incidents/1/blast-radius.csv", PARAMS)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["user_id", "trajectories", "first_seen", "last_seen", "still_running"]
    by_user = {r[0]: r for r in rows[1:]}
    assert set(by_user) == {'\'=HYPERLINK("x")', "u-alice", "u-bob"}
    assert by_user["u-alice"][1] == "2"
    assert by_user["u-alice"][4] == "1"
    assert by_user["u-alice"][2] < by_user["u-alice"][3]


def test_csv_bad_param_is_400(world, make_client, viewer):
    assert make_client(viewer).get("/incidents/1/blast-radius.csv", {"since": "nope", "tool": "x"}).status_code == 400


# --- API -----------------------------------------------------------------------------------------

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


def test_naive_times_are_utc(world):
    incident, _ = world
    _sig, since, _until = signature_parse({"tool": "x", "since": "2025-03-09T12:00"}, incident=incident)
    assert since == datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    assert since.tzinfo is not None and timezone.is_aware(since)


def test_an_unencoded_plus_in_a_time_is_read_as_an_offset(world):
    incident, _ = world
    _sig, since, _until = signature_parse({"tool": "x", "since": "2025-03-09T12:00:00 01:00"}, incident=incident)
    assert since == datetime(2025, 3, 9, 11, 0, tzinfo=UTC)
