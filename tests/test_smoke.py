"""Log in and open every page with the demo fleet loaded: nothing errors, nothing is empty that should not be."""

from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.http import HttpRequest
from django.test import Client

from agents.models import Agent
from incidents.models import FailureClass, Incident, PostMortem, PostMortemTemplate
from traces.models import Trace

ANCHOR = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fleet(django_db_setup, django_db_blocker):
    from demo.fleet import fleet_load

    with django_db_blocker.unblock(), transaction.atomic():
        yield fleet_load(seed=11, anchor=ANCHOR)
        transaction.set_rollback(True)


@pytest.fixture
def logged_in(fleet, make_user):
    user = make_user("viewer", password="a long enough password")
    client = Client()
    # The request is django-axes' to see (it keys the lockout on the client's address).
    assert client.login(request=HttpRequest(), username=user.username, password="a long enough password")
    return client


def pages(fleet) -> list[str]:
    incident = Incident.objects.create(
        number=1,
        title="Refund agent loop",
        severity="SEV1",
        failure_class=FailureClass.objects.get(slug="runaway-loop"),
    )
    PostMortem.objects.create(incident=incident, template=PostMortemTemplate.objects.first())
    urls = [
        "/",
        "/agents/",
        "/traces/",
        "/traces/?status=running",
        "/traces/?flagged=yes",
        "/incidents/",
        "/incidents/new/",
        f"/incidents/{incident.number}/",
        f"/incidents/{incident.number}/postmortem/",
        "/incidents/metrics/",
        "/evals/",
        "/api/docs/",
        "/api/schema/",
    ]
    urls += [f"/agents/{slug}/" for slug in Agent.objects.values_list("slug", flat=True)]
    urls += [f"/traces/?agent={slug}" for slug in Agent.objects.values_list("slug", flat=True)]
    urls += [f"/traces/{trace_id}/" for failure in fleet.failures for trace_id in failure.trace_ids]
    return urls


def test_every_page_opens_with_the_demo_fleet_loaded(fleet, logged_in):
    for url in pages(fleet):
        response = logged_in.get(url)
        assert response.status_code == 200, url


def test_admin_pages_open_for_an_admin(fleet, make_user):
    admin = make_user("admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client = Client()
    client.force_login(admin)
    for model in [
        "agents/agent",
        "agents/auditentry",
        "traces/trace",
        "traces/step",
        "incidents/incident",
        "incidents/failureclass",
        "incidents/postmortemtemplate",
        "evals/evalcase",
    ]:
        response = client.get(f"/admin/{model}/")
        assert response.status_code == 200, model


def test_dashboard_shows_every_demo_agent(fleet, logged_in):
    html = logged_in.get("/").content.decode()
    for slug in Agent.objects.values_list("slug", flat=True):
        assert slug in html


def test_failure_example_pages_show_the_failure(fleet, logged_in):
    loop = next(f for f in fleet.failures if f.key == "runaway-loop")
    trace = Trace.objects.get(trace_id=loop.trace_ids[0])
    tool = trace.steps.exclude(tool_name="").values_list("tool_name", flat=True).first()
    html = logged_in.get(f"/traces/{trace.trace_id}/").content.decode()
    assert html.count(tool) >= 50
    injection = next(f for f in fleet.failures if f.key == "prompt-injection")
    html = logged_in.get(f"/traces/{injection.trace_ids[0]}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
