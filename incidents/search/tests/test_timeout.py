"""A search PostgreSQL gives up on is a clear message, not a 500."""

import pytest
from django.db import connection

from incidents.search import selectors

pytestmark = pytest.mark.django_db


def test_search_over_the_statement_timeout_is_a_clear_400(viewer, make_client, monkeypatch):
    def slow(query, limit):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")
        return [], False

    monkeypatch.setattr(selectors, "STATEMENT_TIMEOUT_MS", 50)
    monkeypatch.setattr(selectors, "_alerts", slow)
    response = make_client(viewer).get("/search/", {"q": "anything"})
    assert response.status_code == 400
    assert "took too long" in response.content.decode()
    # The connection is usable afterwards (the timeout was local to the search's transaction).
    assert make_client(viewer).get("/search/").status_code == 200
