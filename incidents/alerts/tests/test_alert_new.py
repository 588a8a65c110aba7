"""/incidents/alerts/new/?since=: the new-alert toast's poll."""

import pytest

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def test_first_poll_returns_the_cursor_and_no_alert(viewer, make_client, make_alert):
    old = make_alert(title="before the page opened")
    response = make_client(viewer).get("/incidents/alerts/new/")
    assert response.status_code == 204
    assert response["X-Alert-Since"] == str(old.pk)


def test_only_alerts_newer_than_since_are_returned(viewer, make_client, make_alert):
    old = make_alert(title="old news")
    new = make_alert(title="fresh trouble")
    response = make_client(viewer).get("/incidents/alerts/new/", {"since": old.pk})
    body = response.content.decode()
    assert response.status_code == 200
    assert "fresh trouble" in body and "old news" not in body
    assert "New alert:" in body
    assert response["X-Alert-Since"] == str(new.pk)


def test_nothing_new_is_204_and_keeps_the_cursor(viewer, make_client, make_alert):
    last = make_alert()
    response = make_client(viewer).get("/incidents/alerts/new/", {"since": last.pk})
    assert response.status_code == 204
    assert response["X-Alert-Since"] == str(last.pk)


def test_titles_are_escaped(viewer, make_client, make_alert):
    first = make_alert()
    make_alert(title=XSS)
    body = make_client(viewer).get("/incidents/alerts/new/", {"since": first.pk}).content.decode()
    assert XSS not in body and "&lt;script&gt;" in body


def test_bad_since_is_treated_as_a_first_poll(viewer, make_client, make_alert):
    make_alert()
    for since in ("abc", "-1", "9" * 40):
        assert make_client(viewer).get("/incidents/alerts/new/", {"since": since}).status_code == 204


def test_anonymous_poll_is_refused(client):
    assert client.get("/incidents/alerts/new/").status_code in (302, 401, 403)
