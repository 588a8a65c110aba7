"""Every page on the demo data, at 390 px and 1,400 px, as a new user sees it after `make run`: nothing
scrolls sideways, no raw Markdown mark shows, no "1 trajectories" or "2 step". Screenshots go to
``$FIREBREAK_SWEEP_SHOTS`` when it is set (to look at them; the suite does not need them)."""

import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from evals.models import EvalCase
from incidents.models import Alert, Incident, PostMortem
from traces.models import Trace

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}

# Counted nouns the pages use: "1 <plural>" or "<n ≠ 1> <singular>" is a plural error.
NOUNS = {
    "trajectory": "trajectories",
    "trace": "traces",
    "step": "steps",
    "run": "runs",
    "alert": "alerts",
    "incident": "incidents",
    "user": "users",
    "tool": "tools",
    "session": "sessions",
    "agent": "agents",
    "call": "calls",
    "item": "items",
    "case": "cases",
    "error": "errors",
    "change": "changes",
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "span": "spans",
    "key": "keys",
}
# "#3 error" is step 3 with its error badge, not a count: a number after "#" is a step number.
ONE_PLURAL = re.compile(r"(?<![\w.,#-])1 (?:[a-z]+ )?(" + "|".join(NOUNS.values()) + r")\b")
MANY_SINGULAR = re.compile(
    r"(?<![\w.,#-])(0|[2-9]|\d{2,}) (" + "|".join(NOUNS) + r")\b(?![-_'’])(?! (?:" + "|".join(NOUNS.values()) + r")\b)"
)  # "2 tool calls" is right: a singular noun used as an adjective before a plural one
# Markdown that should have been rendered: bold/code marks, headings, links, list stars at line start.
RAW_MARKDOWN = re.compile(r"\*\*\S|\S\*\*|`[^`\n]+`|^#{1,4} \S|\]\(https?://|^\* \S", re.M)


# The innermost elements that end past the window's right edge, to say what to fix.
WIDEST = """() => {
  const w = window.innerWidth, out = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    const spills = getComputedStyle(el).overflowX === "visible" && r.left + el.scrollWidth > w + 1;
    if ((r.right > w + 1 || spills)
        && ![...el.children].some(c => c.getBoundingClientRect().right > w + 1)) {
      out.push(el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ").join(".") : "")
               + " " + Math.round(Math.max(r.right, r.left + el.scrollWidth)) + "px");
    }
  }
  return out.slice(0, 5).join(", ");
}"""


# The page's prose: what the app wrote, without what is shown verbatim (agent input and output in
# <pre>, ids and code in <code> and .mono, form fields), whose Markdown marks are the data's own.
PROSE = """() => {
  const root = document.querySelector("main") || document.body;
  const hidden = [...root.querySelectorAll("pre, code, .mono, textarea, select")];
  hidden.forEach(e => { e.dataset.sweepDisplay = e.style.display; e.style.display = "none"; });
  const text = root.innerText;
  hidden.forEach(e => { e.style.display = e.dataset.sweepDisplay; delete e.dataset.sweepDisplay; });
  return text;
}"""


@pytest.fixture
def demo(transactional_db):
    with open(os.devnull, "w") as quiet:
        call_command("demo_fleet", stdout=quiet)


def _pages() -> list[str]:
    paths = [
        "/",
        "/agents/",
        "/traces/",
        "/incidents/",
        "/incidents/new/",
        "/incidents/alerts/",
        "/incidents/alerts/settings/",
        "/incidents/metrics/",
        "/evals/",
        "/keys/",
        "/search/?q=refund",
        "/gamedays/",
    ]
    agent_trace = Trace.objects.filter(flagged_span_id="").exclude(status="running").order_by("-step_count").first()
    if agent_trace is not None:
        paths += [
            f"/agents/{agent_trace.agent.slug}/",
            f"/traces/{agent_trace.trace_id}/?agent={agent_trace.agent.slug}",
            f"/traces/sessions/{agent_trace.session_id}/",
            f"/traces/users/{agent_trace.user_id}/",
        ]
        golden = Trace.objects.filter(agent=agent_trace.agent, is_golden=True).first()
        if golden is not None:
            other = Trace.objects.filter(agent=golden.agent, input_class=golden.input_class, is_golden=False).first()
            if other is not None:
                paths.append(f"/traces/{other.trace_id}/diff/?agent={golden.agent.slug}")
    for incident in Incident.objects.order_by("-number")[:2]:
        paths.append(f"/incidents/{incident.number}/")
    published = PostMortem.objects.filter(status="published").select_related("incident").first()
    drafts = PostMortem.objects.exclude(status="published").select_related("incident").first()
    for pm in (published, drafts):
        if pm is not None:
            paths += [
                f"/incidents/{pm.incident.number}/postmortem/",
                f"/incidents/{pm.incident.number}/postmortem/print/",
            ]
    case = EvalCase.objects.first()
    if case is not None:
        paths.append(f"/evals/cases/{case.pk}/")
    if Alert.objects.exists():
        paths.append("/incidents/alerts/?status=open")
    return list(dict.fromkeys(paths))


def _words_problems(text: str) -> list[str]:
    words = " ".join(text.split())
    problems = [m.group(0) for m in ONE_PLURAL.finditer(words)]
    problems += [m.group(0) for m in MANY_SINGULAR.finditer(words)]
    text = "\n".join(line.strip() for line in text.splitlines())
    problems += [f"raw Markdown {m.group(0)!r}" for m in RAW_MARKDOWN.finditer(text)]
    return problems


def test_every_page_of_the_demo_fits_a_phone_and_reads_right(page, live_server, login, demo):
    shots = os.environ.get("FIREBREAK_SWEEP_SHOTS", "")
    user = login(page, role="admin")
    user.is_staff = True
    user.save()
    paths = _pages()
    assert len(paths) >= 20, paths  # the demo has incidents, post-mortems, golden runs and eval cases
    failures: list[str] = []
    for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        for path in paths:
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None and response.status < 400, f"{path}: {response and response.status}"
            page.wait_for_load_state("networkidle")
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > size["width"]:
                failures.append(f"{name} {path}: {width} px wide, past the edge: {page.evaluate(WIDEST)}")
            failures += [f"{name} {path}: {p}" for p in _words_problems(page.evaluate(PROSE))]
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "dashboard"
                page.screenshot(path=f"{shots}/{name}-{slug[:60]}.png", full_page=True)
    assert not failures, "\n".join(failures)
