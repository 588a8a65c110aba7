"""The evals pages: capture (from a trace, from an incident), the suite, a case's page."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from evals.models import EvalCase, EvalRun
from evals.tests.conftest import TRACE_ID
from incidents.models import TimelineEntry
from traces.services import trace_golden_set

pytestmark = pytest.mark.django_db

CAPTURE = "/evals/capture/"


def form(**overrides):
    data = {
        "trace": TRACE_ID,
        "incident": "",
        "title": "Refunds twice",
        "input": "Refund order A-17",
        "expected_behaviour": "Refund once, then stop.",
        "forbidden_actions": '[{"tool": "issue_refund", "arguments_pattern": "\\"amount\\": 900"}]',
        "failure_class": "",
        "severity": "",
    }
    data.update(overrides)
    return data


def test_the_trace_page_offers_capture_to_responders_only(refund_trace, responder, viewer, make_client):
    assert f"{CAPTURE}?trace={TRACE_ID}" in make_client(responder).get(f"/traces/{TRACE_ID}/").content.decode()
    assert "Capture eval case" not in make_client(viewer).get(f"/traces/{TRACE_ID}/").content.decode()


def test_the_incident_page_offers_capture_for_each_trace(refund_trace, responder, make_client, make_incident):
    incident = make_incident(traces=[TRACE_ID])
    page = make_client(responder).get(f"/incidents/{incident.number}/").content.decode()
    assert f"{CAPTURE}?trace={TRACE_ID}&amp;agent=refund-bot&amp;incident={incident.number}" in page


def test_capture_form_is_prefilled_from_the_trace(refund_trace, responder, make_client):
    response = make_client(responder).get(f"{CAPTURE}?trace={TRACE_ID}")
    assert response.status_code == 200
    initial = response.context["form"].initial
    assert initial["input"] == refund_trace.root_input and initial["title"] == refund_trace.flag_note
    assert json.loads(initial["forbidden_actions"])[0]["tool"] == "issue_refund"
    assert initial["incident"] is None and initial["severity"] == ""
    page = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert refund_trace.flagged_span_id in page


def test_capture_form_from_an_incident_takes_its_title_severity_and_class(
    refund_trace, responder, make_client, make_incident
):
    incident = make_incident(severity="SEV2", failure_class="runaway-loop", traces=[TRACE_ID])
    response = make_client(responder).get(f"{CAPTURE}?trace={TRACE_ID}&incident={incident.number}")
    initial = response.context["form"].initial
    assert initial["title"] == incident.title and initial["incident"] == incident.number
    assert initial["severity"] == "SEV2" and initial["failure_class"] == "runaway-loop"


def test_capture_from_the_trace_page_defaults_to_its_open_incident(refund_trace, responder, make_client, make_incident):
    incident = make_incident(traces=[TRACE_ID])
    response = make_client(responder).get(f"{CAPTURE}?trace={TRACE_ID}")
    assert response.context["form"].initial["incident"] == incident.number


def test_saving_redirects_to_the_case_page(refund_trace, responder, make_client, make_incident):
    incident = make_incident(severity="SEV3", traces=[TRACE_ID])
    c = make_client(responder)
    response = c.post(CAPTURE, form(incident=incident.number, severity="SEV3", failure_class="runaway-loop"))
    case = EvalCase.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/evals/cases/{case.pk}/"
    assert case.incident == incident and case.trace == refund_trace and case.title == "Refunds twice"
    assert case.forbidden_actions == [{"tool": "issue_refund", "arguments_pattern": '"amount": 900'}]
    assert case.flagged_span_id == refund_trace.flagged_span_id
    assert TimelineEntry.objects.filter(incident=incident, kind="eval").count() == 1
    page = c.get(response["Location"]).content.decode()
    assert "Refund order A-17" in page and "issue_refund" in page and "never run" in page.lower()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"expected_behaviour": ""}, "expected_behaviour"),
        ({"forbidden_actions": "[{"}, "forbidden_actions"),
        ({"forbidden_actions": '[{"arguments_pattern": "x"}]'}, "forbidden_actions"),
        ({"input": ""}, "input"),
        ({"incident": "999"}, "incident"),
        ({"severity": "SEV9"}, "severity"),
    ],
)
def test_a_bad_capture_shows_the_error_and_writes_nothing(refund_trace, responder, make_client, overrides, field):
    response = make_client(responder).post(CAPTURE, form(**overrides))
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert EvalCase.objects.count() == 0


def test_a_viewer_cannot_capture(refund_trace, viewer, make_client):
    c = make_client(viewer)
    assert c.get(f"{CAPTURE}?trace={TRACE_ID}").status_code == 403
    assert c.post(CAPTURE, form()).status_code == 403
    assert EvalCase.objects.count() == 0


def test_an_unknown_trace_is_404(responder, make_client):
    assert make_client(responder).get(f"{CAPTURE}?trace={'f' * 32}").status_code == 404


def test_the_suite_lists_failing_first_with_sources_and_goldens(refund_trace, viewer, make_client, make_incident):
    incident = make_incident(traces=[TRACE_ID])
    agent = refund_trace.agent
    passing = EvalCase.objects.create(agent=agent, title="passing case", input="i", expected_behaviour="e")
    failing = EvalCase.objects.create(
        agent=agent, incident=incident, trace=refund_trace, title="failing case", input="i", expected_behaviour="e"
    )
    EvalRun.objects.create(case=passing, passed=True, ran_at=timezone.now())
    EvalRun.objects.create(case=failing, passed=False, ran_at=timezone.now())
    trace_golden_set(trace=refund_trace, actor=Actor.person(viewer))
    page = make_client(viewer).get("/evals/").content.decode()
    assert page.index("failing case") < page.index("passing case")
    assert f"/incidents/{incident.number}/" in page and f"/traces/{TRACE_ID}/" in page
    assert f"/evals/cases/{failing.pk}/" in page
    goldens = page[page.index('id="goldens"') :]
    assert "refund-request" in goldens and TRACE_ID[:10] in goldens


def test_the_case_page_shows_runs_chart_and_escaped_input(refund_trace, viewer, make_client):
    case = EvalCase.objects.create(
        agent=refund_trace.agent,
        trace=refund_trace,
        flagged_span_id=refund_trace.flagged_span_id,
        title="t",
        input="<img src=x onerror=alert(1)>",
        expected_behaviour="e",
        forbidden_actions=[{"tool": "issue_refund"}],
    )
    now = timezone.now()
    EvalRun.objects.create(case=case, passed=True, ran_at=now - timedelta(hours=1), version="v10")
    EvalRun.objects.create(case=case, passed=False, ran_at=now, version="v11", output="<b>boom</b>")
    response = make_client(viewer).get(f"/evals/cases/{case.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert "&lt;b&gt;boom&lt;/b&gt;" in page
    assert "plotly.min.js" in page and 'id="runs-data"' in page
    assert response.context["chart"]["y"] == [1, 0]
    assert "issue_refund" in page and "execute_tool issue_refund" in page  # the flagged step's excerpt


def test_an_unknown_case_page_is_404(viewer, make_client):
    assert make_client(viewer).get("/evals/cases/999/").status_code == 404


def test_the_suite_page_lists_canaries(viewer, make_client, make_agent):
    from evals.models import CanaryPrompt

    agent = make_agent("canary-bot")
    CanaryPrompt.objects.create(agent=agent, name="refund policy", input="<b>hi</b>", expected="policy")
    html = make_client(viewer).get("/evals/").content.decode()
    assert "Canary prompts" in html
    assert "refund policy" in html
