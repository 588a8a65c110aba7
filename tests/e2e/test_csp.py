"""The Content Security Policy in Chromium: the main pages raise no violation, and htmx and the plotly
charts still work under it (scripts only from files or with the request's nonce, no inline handlers)."""

import time

import pytest
from playwright.sync_api import expect

from traces.models import Trace

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  var where = (e.sourceFile || "") + ":" + e.lineNumber;
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + where);
});
"""


def script_src(policy):
    return next(part for part in policy.split(";") if part.strip().startswith("script-src"))


@pytest.fixture
def watched(page):
    """The page, recording every CSP violation: DOM events and console reports."""
    console = []
    page.add_init_script(WATCH)
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)

    def violations():
        return page.evaluate("window.__csp || []") + console

    page.violations = violations
    return page


@pytest.fixture
def long_trace(make_agent, make_spans, ingest):
    make_agent("support-triage")
    steps = [{"kind": "tool", "name": "lookup_order", "tool": "lookup_order"}, {"kind": "llm", "output": "x" * 5000}]
    ingest(make_spans(agent="support-triage", trace_id="c" * 32, steps=steps))
    return Trace.objects.get(trace_id="c" * 32)


def test_main_pages_raise_no_csp_violation_and_htmx_and_charts_work(
    watched, live_server, login, long_trace, make_incident
):
    page = watched
    incident = make_incident(title="Refund agent looping")
    login(page, role="responder")

    response = page.goto(f"{live_server.url}/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in script_src(policy)
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy and "base-uri 'self'" in policy
    page.wait_for_load_state("networkidle")

    # The trajectory viewer, and htmx loading the rest of a long output in place.
    page.goto(f"{live_server.url}/traces/{long_trace.trace_id}/")
    page.locator("li.step.kind-llm a.more-text").click()
    expect(page.locator("li.step.kind-llm pre[data-full-text]")).to_be_visible()
    assert page.evaluate("typeof window.htmx") == "object"

    page.goto(f"{live_server.url}/incidents/{incident.number}/")
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/incidents/alerts/")
    page.wait_for_load_state("networkidle")

    # The metrics page draws its plotly charts.
    response = page.goto(f"{live_server.url}/incidents/metrics/")
    assert "'nonce-" in script_src(response.headers["content-security-policy"])  # its inline script carries it
    expect(page.locator("#chart-by-class .main-svg").first).to_be_attached()

    page.goto(f"{live_server.url}/incidents/{incident.number}/postmortem/print/")
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator("#swagger-ui .information-container")).to_be_visible()

    assert page.violations() == []


def test_an_inline_script_without_the_nonce_is_blocked(watched, live_server, login):
    page = watched
    login(page, role="viewer")
    page.wait_for_load_state("networkidle")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("window.__ran") is None
    deadline = time.monotonic() + 5  # polled from here: wait_for_function needs eval, which the CSP forbids
    while not page.violations() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("script-src" in v for v in page.violations())
