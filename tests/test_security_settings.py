"""Password rules, HTTPS settings (`check --deploy`), and the API schema and docs for people only."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from agents.keys.services import api_key_create

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("password", ["password", "12345678", "123456789012", "password1234", "short-1"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password)


def test_a_long_uncommon_password_passes():
    validate_password("correct horse battery staple")


@pytest.mark.parametrize("password", ["password", "12345678"])
def test_the_password_change_form_refuses_weak_passwords(make_user, password):
    user = make_user("viewer")
    form = PasswordChangeForm(
        user, {"old_password": "pw-for-tests-1", "new_password1": password, "new_password2": password}
    )
    assert not form.is_valid()
    assert "new_password2" in form.errors


@pytest.mark.parametrize("password", ["password", "12345678"])
def test_the_admin_refuses_to_create_a_user_with_a_weak_password(make_user, make_client, password):
    admin = make_user("admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    response = make_client(admin).post(
        "/admin/auth/user/add/",
        {"username": "newcomer", "password1": password, "password2": password, "usable_password": "true"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert not get_user_model().objects.filter(username="newcomer").exists()


def test_bootstrap_makes_an_admin_whose_password_passes_the_validators(db, capsys):
    call_command("bootstrap", username="firstadmin")
    out = capsys.readouterr().out
    password = next(line.split()[-1] for line in out.splitlines() if "password:" in line)
    user = get_user_model().objects.get(username="firstadmin")
    validate_password(password, user)
    assert user.check_password(password)


def test_check_deploy_is_clean_with_https_on():
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},  # set by the test run only
        "FIREBREAK_HTTPS": "true",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "firebreak.example.com",
        # Nothing connects during checks: unreachable URLs keep the embedded servers from starting.
        "DATABASE_URL": "postgres://check@127.0.0.1:1/check",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_https_settings_are_off_by_default(settings):
    assert not settings.FIREBREAK_HTTPS
    assert not getattr(settings, "SECURE_SSL_REDIRECT", False)


# --- the API schema and docs -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_login(db, url):
    response = Client().get(url)
    assert response.status_code in (401, 403)
    assert "error" in response.json()


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/", "/api/docs/?script="])
def test_a_logged_in_person_reads_the_schema_and_docs(make_user, make_client, url):
    assert make_client(make_user("viewer")).get(url).status_code == 200


def test_a_persons_key_reads_the_schema(make_user):
    key = api_key_create(user=make_user("viewer"), scopes=["api"])[1]
    assert Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_an_agent_key_gets_a_clear_403_in_json(make_agent, url):
    key = api_key_create(agent=make_agent("support"), scopes=["ingest", "gate"])[1]
    response = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert "agent" in response.json()["error"]


# --- CSP: what the templates may contain ----------------------------------------------------------------------

TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates"), *ROOT.glob("*/*/templates")]
HANDLER = re.compile(r"""\s(on[a-z]+|hx-on[:\w-]*)\s*=""", re.IGNORECASE)
SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def templates():
    return sorted({path for directory in TEMPLATE_DIRS for path in directory.rglob("*.html")})


def test_no_template_has_an_inline_event_handler():
    found = [
        f"{path.relative_to(ROOT)}: {m.group(0).strip()}"
        for path in templates()
        for m in HANDLER.finditer(path.read_text())
    ]
    assert found == []


def test_every_inline_script_carries_the_nonce():
    found = []
    for path in templates():
        for match in SCRIPT.finditer(path.read_text()):
            attributes = match.group(1)
            if not any(allowed in attributes for allowed in ("src=", "request.csp_nonce", "application/json")):
                found.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert templates() and found == []
