"""Routes: checked at start-up with an error naming the bad route (never its URL: URLs hold tokens)."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from incidents.notifications.routes import Route, routes_configured, routes_matching, routes_parse
from incidents.notifications.tasks import postmortems_overdue_notify_task

GOOD = "json://127.0.0.1:9/hook"


def test_routes_come_from_inline_json_or_a_json_file(tmp_path):
    routes = [{"name": "payments-oncall", "urls": [GOOD], "agents": ["refund-agent"], "severities": ["SEV1", "SEV2"]}]
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(routes))
    inline, from_file = routes_parse(json.dumps(routes)), routes_parse(str(path))
    assert inline == from_file
    [route] = inline
    assert route.name == "payments-oncall" and route.urls == (GOOD,)
    assert route.agents == {"refund-agent"} and route.severities == {"SEV1", "SEV2"} and route.events == frozenset()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"name": "x"}', "must be a JSON list"),
        ("[{]", "not valid JSON"),
        ("/no/such/routes.json", "neither a JSON list nor the path"),
        ('[{"urls": ["json://h/"]}]', 'route 1: "name" is required'),
        ('[{"name": "ops"}]', 'route "ops": "urls" must be a non-empty list'),
        ('[{"name": "ops", "urls": []}]', 'route "ops": "urls" must be a non-empty list'),
        ('[{"name": "ops", "urls": ["json://h/", "nope://secret-token"]}]', 'route "ops": URL 2 is not one Apprise'),
        ('[{"name": "ops", "urls": ["json://h/"], "severities": ["SEV9"]}]', '"severities" has SEV9'),
        ('[{"name": "ops", "urls": ["json://h/"], "events": ["deploy"]}]', '"events" has deploy'),
        ('[{"name": "ops", "urls": ["json://h/"], "agents": "refund"}]', '"agents" must be a list of strings'),
        ('[{"name": "ops", "urls": ["json://h/"], "channel": "x"}]', "unknown key channel"),
        ('[{"name": "ops", "urls": ["json://h/"]}, {"name": "ops", "urls": ["json://h/"]}]', "used twice"),
        ('[{"name": "default", "urls": ["json://h/"]}]', "used twice"),
    ],
)
def test_a_bad_route_is_refused_naming_it(raw, message):
    with pytest.raises(ImproperlyConfigured) as exc:
        routes_parse(raw)
    assert message in str(exc.value)
    assert "secret-token" not in str(exc.value)


def test_a_bad_default_url_is_refused_without_showing_it(settings):
    settings.FIREBREAK_NOTIFY_URLS = ["nope://secret-token"]
    settings.FIREBREAK_NOTIFY_ROUTES = ""
    with pytest.raises(ImproperlyConfigured, match="FIREBREAK_NOTIFY_URLS: URL 1") as exc:
        routes_configured()
    assert "secret-token" not in str(exc.value)


def test_the_default_route_hears_everything_and_filters_narrow_the_others(settings):
    settings.FIREBREAK_NOTIFY_URLS = [GOOD]
    settings.FIREBREAK_NOTIFY_ROUTES = json.dumps(
        [{"name": "payments", "urls": [GOOD], "agents": ["refund-agent"], "severities": ["SEV1"], "events": ["alert"]}]
    )
    names = lambda **kw: [r.name for r in routes_matching(**kw)]  # noqa: E731
    assert names(kind="alert", agents=["refund-agent"], severity="SEV1") == ["default", "payments"]
    assert names(kind="alert", agents=["refund-agent"], severity="SEV2") == ["default"]
    assert names(kind="alert", agents=["search-agent"], severity="SEV1") == ["default"]
    assert names(kind="incident", agents=["refund-agent"], severity="SEV1") == ["default"]
    assert names(kind="incident", agents=[], severity="SEV1") == ["default"]


def test_an_event_without_a_severity_passes_a_severity_filter():
    # A gate change outside any incident has no severity: an on-call route for SEV1/SEV2 still hears a kill.
    route = Route(name="oncall", urls=(GOOD,), severities=frozenset({"SEV1"}))
    assert route.matches(kind="gate", agents=["refund-agent"], severity="")
    assert not route.matches(kind="alert", agents=["refund-agent"], severity="SEV3")


def test_checking_a_bad_url_never_logs_it(caplog):
    with pytest.raises(ImproperlyConfigured):
        routes_parse('[{"name": "ops", "urls": ["json://user:secret-token@"]}]')
    assert "secret-token" not in caplog.text


def test_beat_checks_overdue_postmortems_hourly_with_a_registered_task(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["postmortems-overdue-notify"]
    assert entry["task"] == postmortems_overdue_notify_task.name
    assert entry["schedule"] == 3600.0
