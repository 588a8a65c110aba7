"""Canary prompts against a real local HTTP server whose answers each test controls."""

import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import timezone

from core.actors import Actor
from evals.canaries import canaries_due, canaries_run_due, canary_create, canary_list, canary_run
from evals.models import CanaryPrompt, CanaryRun
from evals.tasks import canary_run_task
from incidents.models import Alert

SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "total": {"type": "number"}},
        "required": ["order_id", "total"],
    }
)


class _Handler(BaseHTTPRequestHandler):
    # path -> (status, content_type, body bytes, delay seconds); set by the fixture
    routes: dict = {}
    received: list = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append((self.path, json.loads(self.rfile.read(length) or b"null")))
        status, content_type, body, delay = self.routes.get(self.path, (404, "text/plain", b"no route", 0))
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout tests)
            pass

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def webhook():
    """A local webhook server: ``webhook.route(path, status=..., body=..., delay=...)`` returns its URL."""
    routes: dict = {}
    received: list = []
    handler = type("Handler", (_Handler,), {"routes": routes, "received": received})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    class Hook:
        def route(self, path, *, status=200, body="", content_type=None, delay=0.0):
            if isinstance(body, dict | list):
                body, content_type = json.dumps(body), content_type or "application/json"
            data = body.encode() if isinstance(body, str) else body
            routes[path] = (status, content_type or "text/plain; charset=utf-8", data, delay)
            return base + path

    Hook.received = received
    Hook.base = base
    yield Hook()
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_canary(make_agent):
    def make(url, *, expectation="contains", expected="refund", agent=None, name="refund policy", **kwargs):
        if agent is None:
            agent = make_agent()
        agent.canary_webhook_url = url
        agent.save(update_fields=["canary_webhook_url"])
        kwargs.setdefault("input", "What is the refund policy?")
        return canary_create(
            agent=agent, name=name, expectation=expectation, expected=expected, actor=Actor.system("tests"), **kwargs
        )

    return make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- passing ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_contains_passes_on_json_output_and_posts_the_canary(webhook, make_canary):
    url = webhook.route("/canary", body={"output": "Our refund window is 30 days."})
    canary = make_canary(url, interval_minutes=20)
    before = timezone.now()

    run = canary_run(canary=canary)

    assert run.outcome == CanaryRun.Outcome.PASS
    assert run.output == "Our refund window is 30 days."
    assert run.detail == ""
    assert run.duration_ms is not None
    assert before <= run.ran_at <= timezone.now()
    assert webhook.received == [("/canary", {"canary": "refund policy", "input": "What is the refund policy?"})]
    canary.refresh_from_db()
    assert canary.next_run_at >= before + timedelta(minutes=20)
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_contains_is_case_sensitive(webhook, make_canary):
    canary = make_canary(webhook.route("/c", body="REFUND window"), expected="refund")
    assert canary_run(canary=canary).outcome == CanaryRun.Outcome.FAIL


@pytest.mark.django_db
def test_regex_passes_on_plain_text(webhook, make_canary):
    canary = make_canary(webhook.route("/r", body="refund within 30 days"), expectation="regex", expected=r"\d+ days")
    run = canary_run(canary=canary)
    assert run.outcome == CanaryRun.Outcome.PASS
    assert run.output == "refund within 30 days"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"output": '{"order_id": "A-1", "total": 12.5}'},  # the envelope carrying JSON text
        {"output": {"order_id": "A-1", "total": 12.5}},  # the envelope carrying JSON itself
        {"order_id": "A-1", "total": 12.5},  # the body is the answer
    ],
)
def test_json_schema_passes(webhook, make_canary, body):
    canary = make_canary(webhook.route("/j", body=body), expectation="json_schema", expected=SCHEMA)
    assert canary_run(canary=canary).outcome == CanaryRun.Outcome.PASS


# --- failing ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_failure_records_a_run_and_one_alert_and_a_second_failure_counts_it(webhook, make_canary):
    url = webhook.route("/f", body={"output": "I cannot help with that."})
    canary = make_canary(url, expected="refund")

    run = canary_run(canary=canary)

    assert run.outcome == CanaryRun.Outcome.FAIL
    assert "does not contain 'refund'" in run.detail
    alert = Alert.objects.get()
    assert alert.detector == "canary"
    assert alert.agent == canary.agent
    assert alert.fingerprint == f"canary:{canary.pk}"
    assert alert.title == f"Canary refund policy failed: {run.detail}"
    assert alert.suggested_severity == "SEV2"
    assert alert.failure_class.slug == "output-quality"
    assert alert.details["run"] == run.pk
    assert alert.details["outcome"] == "fail"
    assert alert.count == 1

    second = canary_run(canary=canary)

    assert CanaryRun.objects.filter(canary=canary).count() == 2
    alert = Alert.objects.get()
    assert alert.count == 2
    assert alert.details["run"] == second.pk


@pytest.mark.django_db
def test_json_schema_violation_fails_with_where(webhook, make_canary):
    url = webhook.route("/j", body={"output": {"order_id": "A-1", "total": "lots"}})
    canary = make_canary(url, expectation="json_schema", expected=SCHEMA)
    run = canary_run(canary=canary)
    assert run.outcome == CanaryRun.Outcome.FAIL
    assert "total" in run.detail
    assert Alert.objects.count() == 1


@pytest.mark.django_db
def test_timeout(webhook, make_canary):
    canary = make_canary(webhook.route("/slow", body="refund", delay=1.0), timeout_seconds=0.3)
    started = time.monotonic()
    run = canary_run(canary=canary)
    assert time.monotonic() - started < 0.9
    assert run.outcome == CanaryRun.Outcome.TIMEOUT
    assert "0.3s" in run.detail
    assert Alert.objects.get().details["outcome"] == "timeout"


@pytest.mark.django_db
def test_http_500_is_an_error(webhook, make_canary):
    canary = make_canary(webhook.route("/boom", status=500, body="refund? internal error"))
    run = canary_run(canary=canary)
    assert run.outcome == CanaryRun.Outcome.ERROR
    assert "HTTP 500" in run.detail
    assert Alert.objects.get().title.startswith("Canary refund policy failed: HTTP 500")


@pytest.mark.django_db
def test_non_json_for_a_json_schema_canary_is_an_error(webhook, make_canary):
    canary = make_canary(webhook.route("/t", body="order A-1, total 12.5"), expectation="json_schema", expected=SCHEMA)
    run = canary_run(canary=canary)
    assert run.outcome == CanaryRun.Outcome.ERROR
    assert "not JSON" in run.detail
    assert Alert.objects.count() == 1


@pytest.mark.django_db
def test_json_content_type_with_a_broken_body_is_an_error(webhook, make_canary):
    canary = make_canary(webhook.route("/b", body='{"output": "refund', content_type="application/json"))
    run = canary_run(canary=canary)
    assert run.outcome == CanaryRun.Outcome.ERROR
    assert "unreadable body" in run.detail


@pytest.mark.django_db
def test_connection_refused_is_an_error(make_canary):
    canary = make_canary(f"http://127.0.0.1:{_free_port()}/canary")
    run = canary_run(canary=canary)
    assert run.outcome == CanaryRun.Outcome.ERROR
    assert "ConnectError" in run.detail
    assert Alert.objects.count() == 1
    canary.refresh_from_db()
    assert canary.next_run_at > timezone.now()


@pytest.mark.django_db
def test_webhook_removed_after_creation_is_an_error(webhook, make_canary):
    canary = make_canary(webhook.route("/c", body="refund"))
    canary.agent.canary_webhook_url = ""
    canary.agent.save(update_fields=["canary_webhook_url"])
    run = canary_run(canary=canary)
    assert run.outcome == CanaryRun.Outcome.ERROR
    assert "no canary webhook" in run.detail
    assert webhook.received == []


# --- canary_create validation ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("expectation", "expected", "field"),
    [
        ("regex", "refund(", "expected"),
        ("json_schema", "{not json", "expected"),
        ("json_schema", '{"type": "no-such-type"}', "expected"),
        ("json_schema", "[1, 2]", "expected"),
        ("contains", "", "expected"),
        ("telepathy", "x", "expectation"),
    ],
)
def test_create_refuses_bad_expectations_and_writes_nothing(make_canary, expectation, expected, field):
    with pytest.raises(ValidationError) as exc:
        make_canary("http://127.0.0.1:9/canary", expectation=expectation, expected=expected)
    assert field in exc.value.message_dict
    assert not CanaryPrompt.objects.exists()


@pytest.mark.django_db
def test_create_refuses_an_agent_without_a_webhook(make_agent):
    agent = make_agent()
    with pytest.raises(ValidationError) as exc:
        canary_create(
            agent=agent, name="c", input="hi", expectation="contains", expected="hi", actor=Actor.system("tests")
        )
    assert "agent" in exc.value.message_dict
    assert not CanaryPrompt.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("kwargs", "field"), [({"interval_minutes": 0}, "interval_minutes"),
                                               ({"timeout_seconds": 0}, "timeout_seconds"),
                                               ({"name": "  "}, "name")])  # fmt: skip
def test_create_refuses_bad_schedule_and_name(make_canary, kwargs, field):
    with pytest.raises(ValidationError) as exc:
        make_canary("http://127.0.0.1:9/canary", **kwargs)
    assert field in exc.value.message_dict
    assert not CanaryPrompt.objects.exists()


@pytest.mark.django_db
def test_create_refuses_a_duplicate_name(make_canary):
    canary = make_canary("http://127.0.0.1:9/canary")
    with pytest.raises(ValidationError) as exc:
        make_canary("http://127.0.0.1:9/canary", agent=canary.agent)
    assert "name" in exc.value.message_dict
    assert CanaryPrompt.objects.count() == 1


@pytest.mark.django_db
def test_create_makes_a_canary_due_at_once(make_canary):
    canary = make_canary("http://127.0.0.1:9/canary", expectation="json_schema", expected=SCHEMA)
    assert canary.next_run_at is None
    assert canary.enabled
    assert canaries_due(timezone.now()) == [canary]


# --- scheduling ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_canaries_due_selection(make_agent, make_canary):
    now = timezone.now()
    agent = make_agent()
    never = make_canary("http://127.0.0.1:9/a", agent=agent, name="never run")
    past = make_canary("http://127.0.0.1:9/a", agent=agent, name="past")
    exactly = make_canary("http://127.0.0.1:9/a", agent=agent, name="exactly now")
    future = make_canary("http://127.0.0.1:9/a", agent=agent, name="future")
    disabled = make_canary("http://127.0.0.1:9/a", agent=agent, name="disabled")
    CanaryPrompt.objects.filter(pk=past.pk).update(next_run_at=now - timedelta(minutes=1))
    CanaryPrompt.objects.filter(pk=exactly.pk).update(next_run_at=now)
    CanaryPrompt.objects.filter(pk=future.pk).update(next_run_at=now + timedelta(seconds=1))
    CanaryPrompt.objects.filter(pk=disabled.pk).update(enabled=False)

    assert {c.pk for c in canaries_due(now)} == {never.pk, past.pk, exactly.pk}


@pytest.mark.django_db
def test_run_due_queues_each_due_canary_once_and_claims_it(make_agent, make_canary, django_capture_on_commit_callbacks):
    now = timezone.now()
    agent = make_agent()
    due = make_canary("http://127.0.0.1:9/a", agent=agent, name="due", interval_minutes=5)
    later = make_canary("http://127.0.0.1:9/a", agent=agent, name="later")
    CanaryPrompt.objects.filter(pk=later.pk).update(next_run_at=now + timedelta(minutes=3))
    queued = []

    with django_capture_on_commit_callbacks(execute=True):
        ids = canaries_run_due(now=now, enqueue=queued.append)

    assert ids == [due.pk]
    assert queued == [due.pk]
    due.refresh_from_db()
    assert due.next_run_at == now + timedelta(minutes=5)
    # the next beat does not queue it again while its run waits
    with django_capture_on_commit_callbacks(execute=True):
        assert canaries_run_due(now=now + timedelta(seconds=60), enqueue=queued.append) == []
    assert queued == [due.pk]


@pytest.mark.django_db
def test_run_due_queues_nothing_until_commit(make_canary, django_capture_on_commit_callbacks):
    make_canary("http://127.0.0.1:9/a")
    queued = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ids = canaries_run_due(enqueue=queued.append)
    assert len(ids) == 1
    assert queued == []
    callbacks[0]()
    assert queued == ids


@pytest.mark.django_db
def test_run_task_runs_an_enabled_canary_and_skips_a_disabled_one(webhook, make_canary):
    canary = make_canary(webhook.route("/c", body="refund ok"))
    assert canary_run_task.run(canary.pk) == "pass"
    CanaryPrompt.objects.filter(pk=canary.pk).update(enabled=False)
    assert canary_run_task.run(canary.pk) is None
    assert canary_run_task.run(canary.pk + 1000) is None
    assert CanaryRun.objects.count() == 1


# --- selector and fragment -------------------------------------------------------------------------


@pytest.mark.django_db
def test_canary_list_annotates_the_last_run_and_the_fragment_escapes_it(make_agent, make_canary):
    agent = make_agent()
    canary = make_canary("http://127.0.0.1:9/a", agent=agent, name="c1")
    other = make_canary("http://127.0.0.1:9/a", name="other agent's")
    now = timezone.now()
    CanaryRun.objects.create(canary=canary, outcome="pass", output="old", ran_at=now - timedelta(hours=1))
    CanaryRun.objects.create(
        canary=canary, outcome="fail", output="<script>alert(1)</script>", detail="<b>nope</b>", ran_at=now
    )

    listed = list(canary_list(agent=agent))
    assert [c.pk for c in listed] == [canary.pk]
    assert listed[0].last_outcome == "fail"
    assert listed[0].last_ran_at == now
    assert {c.pk: c.last_outcome for c in canary_list()} == {canary.pk: "fail", other.pk: None}

    html = render_to_string("evals/_canaries.html", {"canaries": canary_list()})
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;nope&lt;/b&gt;" in html
    assert "never run" in html
    assert render_to_string("evals/_canaries.html", {"canaries": []}).count("No canary prompts yet") == 1


# --- admin -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_canaries_shows_runs_and_validates_the_regex(client, django_user_model, make_canary):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-1"))
    canary = make_canary("http://127.0.0.1:9/a")
    CanaryRun.objects.create(canary=canary, outcome="fail", detail="went wrong", ran_at=timezone.now())

    assert client.get("/admin/evals/canaryprompt/").status_code == 200
    page = client.get(f"/admin/evals/canaryprompt/{canary.pk}/change/")
    assert page.status_code == 200
    assert "went wrong" in page.content.decode()
    assert client.get("/admin/evals/canaryrun/").status_code == 200
    assert client.get("/admin/evals/canaryrun/add/").status_code == 403

    response = client.post(
        "/admin/evals/canaryprompt/add/",
        {
            "agent": canary.agent.pk, "name": "bad", "input": "hi", "expectation": "regex", "expected": "a(",
            "interval_minutes": 5, "timeout_seconds": 2, "enabled": "on",
            "runs-TOTAL_FORMS": 0, "runs-INITIAL_FORMS": 0, "runs-MIN_NUM_FORMS": 0, "runs-MAX_NUM_FORMS": 0,
        },
    )  # fmt: skip
    assert response.status_code == 200
    assert "The regex does not compile" in response.content.decode()
    assert CanaryPrompt.objects.count() == 1


@pytest.mark.django_db
def test_nul_bytes_in_the_answer_are_stored_replaced(webhook, make_canary):
    canary = make_canary(webhook.route("/nul", body=b"no r\x00efund here"))
    run = canary_run(canary=canary)
    assert run.outcome == CanaryRun.Outcome.FAIL
    assert run.output == "no r\ufffdefund here"


def test_canaries_of_a_stopped_agent_are_not_due(db, make_agent, responder):
    from agents.services import agent_pause
    from evals.canaries import canaries_due
    from evals.models import CanaryPrompt

    agent = make_agent("paused-bot")
    agent.canary_webhook_url = "http://127.0.0.1:9/canary"
    agent.save()
    CanaryPrompt.objects.create(agent=agent, name="hello", input="hi", expected="hi")
    assert [c.name for c in canaries_due()] == ["hello"]
    agent_pause(agent=agent, actor=Actor.person(responder))
    assert canaries_due() == []
