"""One-click kill in Chromium: a real agent process stops, the card updates in place, the audit row exists."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.models import Agent, AuditEntry
from core.redis import gate_redis_url

AGENT_SCRIPT = Path(__file__).with_name("agent_process.py")


@pytest.fixture
def agent_process(make_agent):
    make_agent("looping-bot")  # registration publishes its gate on commit
    proc = subprocess.Popen(
        [sys.executable, str(AGENT_SCRIPT), "looping-bot", gate_redis_url()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_responder_kills_a_running_agent_in_one_click(page, live_server, login, agent_process):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, role="responder")
    card = page.locator("#card-looping-bot")
    assert card.get_attribute("data-state") == "active"
    page.evaluate("window.__sameDocument = true")

    card.get_by_role("button", name="Kill").click()
    clicked = time.monotonic()
    agent_process.wait(timeout=5)
    stopped_after = time.monotonic() - clicked
    assert agent_process.returncode == 3
    assert agent_process.stdout.read().startswith("AgentKilled")
    assert stopped_after < 1.0

    page.locator("#card-looping-bot[data-state=killed]").wait_for(timeout=3000)
    assert card.locator(".badge").first.inner_text().strip().lower() == "killed"
    assert page.evaluate("window.__sameDocument") is True  # no reload
    entry = AuditEntry.objects.get(agent__slug="looping-bot", action="kill")
    assert entry.reason == ""

    hostile = "<script>alert('pwned')</script> loop on search"
    card.locator("input[name=reason]").fill(hostile)
    card.get_by_role("button", name="Add reason").click()
    card.locator(".reason-form").wait_for(state="detached", timeout=3000)
    assert AuditEntry.objects.get(amends=entry).reason == hostile
    assert Agent.objects.get(slug="looping-bot").state_reason == hostile

    page.goto(f"{live_server.url}/agents/looping-bot/")
    assert page.get_by_text(hostile).first.is_visible()  # shown as text
    assert dialogs == []


def test_viewer_sees_the_fleet_without_kill_buttons(page, live_server, login, make_agent):
    make_agent("quiet-bot")
    login(page, role="viewer")
    card = page.locator("#card-quiet-bot")
    assert card.is_visible()
    assert card.get_by_role("button", name="Kill").count() == 0
