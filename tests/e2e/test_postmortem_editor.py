"""The post-mortem editor in Chromium: typing autosaves, the publishing banner follows without a reload,
leaving with unsaved edits is guarded, and the editor fits a 390 px phone."""

import re

import pytest

from core.actors import Actor
from incidents.models import FailureClass, Incident, PostMortemTemplate
from incidents.postmortems import services

TEXT = "A per-agent refund circuit breaker at 3 refunds a minute."
SAVED = re.compile(r"^Saved \d\d:\d\d:\d\d UTC$")


@pytest.fixture
def postmortem_in_review(make_user):
    author = Actor.person(make_user("responder"))
    incident = Incident.objects.create(
        number=43,
        title="Refund agent refunded every order",
        severity="SEV1",
        failure_class=FailureClass.objects.get(slug="tool-misuse"),
    )
    pm = services.postmortem_start(
        incident=incident, template=PostMortemTemplate.objects.get(slug="sev1-agent"), actor=author
    )
    # Every section but the last is written already; the last is what publishing still needs.
    bodies = {s["key"]: f"About {s['key']}." for s in pm.sections[:-1]}
    services.postmortem_sections_save(postmortem=pm, bodies=bodies, actor=author)
    services.postmortem_status_set(postmortem=pm, status="in_review", actor=author)
    return pm


def test_typing_autosaves_and_the_banner_follows_without_a_reload(page, live_server, login, postmortem_in_review):
    login(page, role="responder")
    page.goto(f"{live_server.url}/incidents/43/postmortem/")
    last = postmortem_in_review.sections[-1]
    banner = page.locator("#pm-needs")
    assert "Empty: " + last["title"] in banner.inner_text()
    publish = page.get_by_role("button", name="Publish")
    assert publish.is_disabled()
    assert page.evaluate("window.fbPostmortemDirty") is False

    page.locator(f"#body-{last['key']}").press_sequentially(TEXT, delay=5)
    # edited and not yet saved: leaving the page would ask first
    assert page.evaluate("window.fbPostmortemDirty") is True

    # no button pressed: the autosave saves a couple of seconds after typing stops
    page.locator("#pm-save-status", has_text=SAVED).wait_for(timeout=10_000)
    assert page.evaluate("window.fbPostmortemDirty") is False
    page.locator("#pm-needs", has_text="it can be published").wait_for()
    assert "Empty" not in banner.inner_text()
    assert publish.is_enabled()

    page.reload()
    assert page.locator(f"#body-{last['key']}").input_value() == TEXT
    assert page.get_by_role("button", name="Publish").is_enabled()


def test_the_editor_fits_a_phone_and_keeps_save_in_reach(page, live_server, login, postmortem_in_review):
    login(page, role="responder")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/incidents/43/postmortem/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator(f"#body-{postmortem_in_review.sections[1]['key']}").scroll_into_view_if_needed()
    save = page.get_by_role("button", name="Save post-mortem")
    box = save.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844  # sticky: on screen mid-editor
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390

    page.locator(f"#body-{postmortem_in_review.sections[0]['key']}").fill("Changed on the phone.")
    assert page.evaluate("window.fbPostmortemDirty") is True
    save.click()
    page.locator("#pm-save-status", has_text=SAVED).wait_for()
    assert page.evaluate("window.fbPostmortemDirty") is False
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_leaving_with_unsaved_edits_asks_first(page, live_server, login, postmortem_in_review):
    login(page, role="responder")
    page.goto(f"{live_server.url}/incidents/43/postmortem/")
    dialogs = []

    def answer(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", answer)
    page.locator(f"#body-{postmortem_in_review.sections[-1]['key']}").press_sequentially("Unsaved", delay=5)
    assert page.evaluate("window.fbPostmortemDirty") is True
    page.close(run_before_unload=True)
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]
