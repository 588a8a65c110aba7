"""The blast radius panel (full page and htmx fragment), its save and the CSV download."""

import csv
import io
from datetime import timedelta

from django.utils import timezone

from incidents.blast_radius.tests.conftest import DECLARED, PARAMS, refund
from incidents.models import TimelineEntry, TimelineKind
from traces.models import Step, Trace

URL = "/incidents/1/blast-radius/"


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


def test_runs_that_went_quiet_are_not_a_failed_containment(world, make_client, responder):
    """Runs marked running that sent nothing for FIREBREAK_RUN_QUIET_MINUTES stopped without ending."""
    Trace.objects.filter(status="running").update(updated_at=timezone.now() - timedelta(hours=1))
    body = make_client(responder).get(URL, PARAMS, HTTP_HX_REQUEST="true").content.decode()
    assert "Containment did not take" not in body
    assert "2 more runs marked running sent nothing for 10 minutes or more" in body


def test_hundreds_of_users_fold_after_the_first_sixty(world, make_client, viewer, make_spans, ingest):
    for i in range(70):
        ingest(
            make_spans(agent="support", user_id=f"u-{i:03d}", start=DECLARED - timedelta(minutes=5), steps=[refund(1)])
        )
    body = make_client(viewer).get(URL, {**PARAMS, "agent": "support"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Show " in body and " more</summary>" in body
