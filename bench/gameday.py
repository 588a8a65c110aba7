"""The gameday benchmark: runaway-loop drills on make run's demo, from injection to auto-pause, and the clicks
a responder needs for each step of the five-minute runbook.

Usage: .venv/bin/python bench/gameday.py [--drills N] [--no-browser]

Starts Firebreak as ``make run`` does (``python -m firebreak.supervise``: gate server, gunicorn, Celery worker
and beat, PostgreSQL and Redis of its own under a temporary var directory, as bench/faults.py) on the demo
fleet and its history (``manage.py demo_fleet``, as make run loads it). Then, ``--drills`` times (default 5),
one after the other: ``POST /api/v1/gamedays {"scenario": "runaway-loop"}`` with a responder's key, a drill
agent registered, the Celery worker starting the simulated agent process (the real SDK, spans to the real
ingest), the real streaming detection pausing it. The figures are the gameday's own clock (seconds from its
start): the drill process running (its first span starts), detected, contained by the detector's pause.

Then, unless ``--no-browser``, a responder walks the rest of the runbook on the last drill in Chromium (the
system's, headless), each step from the dashboard as a responder finds it after the pause: the clicks and the
fields typed are counted as they happen, and each step must stamp its mark on the gameday's clock, or the
bench fails. A walk the pages cannot do fails the bench; nothing here is asserted about time.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness import django_setup, free_port, machine, say, wait_quiet

SCENARIO = "runaway-loop"
RESPONDER = "bench-responder"
CHROMIUM = "/usr/bin/chromium"


def _setup() -> tuple[str, str]:
    """The demo loaded as make run loads it, and a responder with a password (the browser) and a key (the API)."""
    from django.contrib.auth import get_user_model  # after django_setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from agents.keys.services import api_key_create

    call_command("bootstrap", verbosity=0)
    call_command("demo_fleet", "--if-empty", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username=RESPONDER)
    password = secrets.token_urlsafe(16)
    user.set_password(password)
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name="responder"))
    _, key = api_key_create(user=user, scopes=["api"], name="bench gameday")
    return password, key


@dataclass
class Drill:
    gameday_id: int
    agent: str
    injected: float  # the drill process's run began (its first span), seconds from the start
    detected: float
    contained: float


def drill(api: httpx.Client) -> Drill:
    from django.db.models import Min  # after django_setup()

    from traces.models import Trace

    response = api.post("/api/v1/gamedays", json={"scenario": SCENARIO})
    if response.status_code != 201:
        raise RuntimeError(f"starting the drill answered {response.status_code}: {response.text[:300]}")
    gid, slug = response.json()["id"], response.json()["agent"]
    deadline = time.monotonic() + 90
    while True:
        body = api.get(f"/api/v1/gamedays/{gid}").json()
        if body["timings"]["contained"] is not None:
            break
        if body.get("injection_error") or time.monotonic() > deadline:
            raise RuntimeError(f"GD-{gid}: not contained within 90 s: {body.get('injection_error') or body}")
        time.sleep(0.1)
    from demo.gamedays.models import Gameday

    gameday = Gameday.objects.get(pk=gid)
    if gameday.agent.state != "paused" or not gameday.agent.audit_entries.filter(actor_label__startswith="detector"):
        raise RuntimeError(f"GD-{gid}: {slug} was contained, but not by the detector's pause")
    first = Trace.objects.filter(agent__slug=slug).aggregate(first=Min("started_at"))["first"]
    injected = (first - gameday.started_at).total_seconds() if first else float("nan")
    timings = body["timings"]
    return Drill(gid, slug, injected, timings["detected"], timings["contained"])


class Walk:
    """A responder in Chromium: every click and every field typed is counted against the current step."""

    def __init__(self, page, base: str) -> None:
        self.page, self.base = page, base
        self.clicks = self.typed = 0

    def click(self, locator) -> None:
        locator.click()
        self.clicks += 1

    def type(self, locator, text: str) -> None:
        locator.fill(text)
        self.typed += 1

    def start(self) -> None:
        """Each step starts on the dashboard (not counted): where a responder is when the page goes off."""
        self.clicks = self.typed = 0
        self.page.goto(f"{self.base}/")

    def alert_row(self, agent: str):
        return self.page.locator("#open-alerts tr", has_text=agent).first


def _mark(api: httpx.Client, gameday_id: int, mark: str, timeout: float = 15) -> float:
    """Wait for the step's mark on the gameday's clock (read through the API: the browser's event loop runs
    in this thread, and Django refuses database calls from it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = api.get(f"/api/v1/gamedays/{gameday_id}").json()["timings"][mark]
        if value is not None:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"GD-{gameday_id}: the walk did not stamp {mark!r}")


def walk(api: httpx.Client, base: str, password: str, last: Drill) -> list[tuple[str, int, int, str]]:
    """The runbook after the detector's pause, in Chromium. Returns (step, clicks, fields typed, how)."""
    from playwright.sync_api import sync_playwright

    from agents.models import Agent  # after django_setup()

    name = Agent.objects.get(slug=last.agent).name  # before the browser's event loop starts in this thread
    rows: list[tuple[str, int, int, str]] = [
        ("minute 1: contained (kill or pause)", 0, 0, "the detector paused it; by hand: Kill on its dashboard card")
    ]
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=username]", RESPONDER)
        page.fill("input[name=password]", password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/")
        w = Walk(page, base)
        try:
            _walk_steps(w, api, last, name, rows)
        except Exception:
            shot = Path(tempfile.gettempdir()) / "bench-gameday-failed.png"
            page.screenshot(path=str(shot), full_page=True)
            say(f"the walk failed on {page.url}; screenshot {shot}")
            raise
        browser.close()
    return rows


def _walk_steps(w: Walk, api: httpx.Client, last: Drill, name: str, rows: list) -> None:
    page = w.page
    w.start()
    w.click(page.get_by_role("link", name=name, exact=True))
    w.click(page.get_by_role("button", name="Freeze budget"))
    _mark(api, last.gameday_id, "budget_frozen")
    rows.append(("minute 2: budget frozen", w.clicks, w.typed, "agent card → Freeze budget"))

    w.start()
    w.click(w.alert_row(last.agent).get_by_role("link", name="Trajectory"))
    page.wait_for_url(re.compile(r"/traces/"))
    w.click(page.locator(".is-cursor a.flag-link"))
    w.type(page.locator("#flag-note"), "the same lookup_order call, over and over")
    w.click(page.get_by_role("button", name="Flag step"))
    _mark(api, last.gameday_id, "step_flagged")
    rows.append(("minute 3: off-rails step flagged", w.clicks, w.typed,
                 "alert's Trajectory (opens at the step) → ⚑ flag → note → Flag step"))  # fmt: skip

    w.start()
    w.click(w.alert_row(last.agent).get_by_role("link", name="Declare"))
    page.wait_for_url(re.compile(r"/incidents/new/"))
    w.click(page.locator("main").get_by_role("button", name="Declare incident"))
    page.wait_for_url(re.compile(r"/incidents/\d+/$"))
    incident = "INC-" + page.url.rstrip("/").rsplit("/", 1)[1]
    w.click(page.locator("#blast-radius").get_by_role("button", name="Save to timeline"))
    _mark(api, last.gameday_id, "blast_radius")
    rows.append(("minute 4: blast radius run", w.clicks, w.typed,
                 "alert's Declare (pre-filled) → Declare incident → Save to timeline"))  # fmt: skip

    w.start()  # declaring acknowledged the alert: the drill is now worked from its incident
    w.click(page.locator("#open-incidents, main").get_by_role("link", name=incident, exact=True).first)
    w.click(page.get_by_role("link", name="Capture eval case"))
    w.type(page.locator("textarea[name=expected_behaviour]"), "Look the order up once and answer.")
    w.click(page.get_by_role("button", name="Save eval case"))
    _mark(api, last.gameday_id, "eval_captured")
    rows.append(("minute 5: eval case captured", w.clicks, w.typed,
                 "its incident → Capture eval case (pre-filled from the flag) → expected → Save"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drills", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="fb-gameday-"))
    for name in ("DATABASE_URL", "REDIS_URL", "FIREBREAK_SUPERVISED", "FIREBREAK_BASE_URL"):
        os.environ.pop(name, None)
    os.environ["FIREBREAK_VAR_DIR"] = str(var)
    started = time.monotonic()
    django_setup()
    password, key = _setup()
    say(f"demo loaded in {time.monotonic() - started:.1f} s")
    from faults import Supervised  # make run's supervisord, as the fault benchmark drives it

    run = Supervised(var, free_port())
    wait_quiet()  # the worker's start-up work (the demo's detection, health) done: a drill on a settled app
    drills: list[Drill] = []
    walked: list[tuple[str, int, int, str]] = []
    try:
        with httpx.Client(base_url=run.base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            for i in range(args.drills):
                drills.append(drill(api))
                d = drills[-1]
                say(f"drill {i + 1} GD-{d.gameday_id}: first span {d.injected:.1f} s, detected {d.detected:.1f} s, "
                    f"auto-paused {d.contained:.1f} s from the start")  # fmt: skip
            if not args.no_browser:
                walked = walk(api, run.base, password, drills[-1])
    finally:
        run.stop()
        shutil.rmtree(var, ignore_errors=True)
    say("--- summary ---")
    for label, values in (
        ("start → drill process running (its first span)", [d.injected for d in drills]),
        ("start → detected", [d.detected for d in drills]),
        ("start → auto-paused", [d.contained for d in drills]),
        ("first span → auto-paused", [d.contained - d.injected for d in drills]),
    ):
        say(f"{label}: median {statistics.median(values):.1f} s, max {max(values):.1f} s ({len(values)} drills)")
    for step, clicks, typed, how in walked:
        fields = f"{typed} field{'s' if typed != 1 else ''} typed"
        say(f"{step}: {clicks} click{'s' if clicks != 1 else ''}, {fields} — {how}")
    say(f"machine: {machine()}")


if __name__ == "__main__":
    main()
