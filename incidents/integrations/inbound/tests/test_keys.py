"""Integration keys made on /keys/ (admins only): they post inbound alerts and nothing else."""

import json
import re

import pytest
from django.test import Client

from agents.models import ApiKey
from incidents.integrations.inbound.tests.samples import sample
from incidents.models import Alert

pytestmark = pytest.mark.django_db


def test_an_admin_makes_an_integration_key_on_the_keys_page_and_it_posts_alerts(admin_user, make_client):
    response = make_client(admin_user).post("/keys/new", {"kind": "integration", "integration": "am-prod"})
    assert response.status_code == 201
    body = response.content.decode()
    assert "Key made for integration am-prod" in body
    raw = re.search(r"Authorization: Bearer (fbk_[A-Za-z0-9_-]+)", body).group(1)
    key = ApiKey.objects.get()
    assert (key.integration, key.scopes, key.agent, key.user) == ("am-prod", ["inbound"], None, None)
    listing = make_client(admin_user).get("/keys/").content.decode()
    assert "integration <strong>am-prod</strong>" in listing
    posted = Client().post(
        "/api/v1/integrations/alertmanager",
        json.dumps(sample("alertmanager")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert posted.status_code == 200
    assert Alert.objects.get().integration == "am-prod"


def test_only_an_admin_makes_an_integration_key(responder, make_client):
    response = make_client(responder).post("/keys/new", {"kind": "integration", "integration": "am-prod"})
    assert response.status_code == 403
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("name", ["", "has space", "-leading-dash", "x" * 101, "<script>"])
def test_a_bad_integration_name_makes_no_key(admin_user, make_client, name):
    response = make_client(admin_user).post("/keys/new", {"kind": "integration", "integration": name})
    assert response.status_code == 400
    assert "<script>" not in response.content.decode()
    assert not ApiKey.objects.exists()
