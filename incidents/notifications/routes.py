"""Notification routes: which Apprise URLs hear which events.

``FIREBREAK_NOTIFY_URLS`` is the route named "default" (every event). ``FIREBREAK_NOTIFY_ROUTES`` adds
named routes: a JSON list, inline or in a .json file whose path is given, of
``{"name", "urls", "agents", "severities", "events"}``; an empty or missing filter matches everything.
Routes are checked when the app starts (``routes_configured`` from ``IncidentsConfig.ready``): a bad one
stops start-up with an error naming it, before anything is sent. The URLs hold tokens: only a
route's name ever reaches the delivery log or the logs.
"""

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apprise
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from incidents.models import Severity

DEFAULT_ROUTE = "default"
KINDS = ("alert", "gate", "incident", "postmortem")
NAME_MAX = 100
ROUTE_KEYS = {"name", "urls", "agents", "severities", "events"}


@dataclass(frozen=True)
class Route:
    name: str
    urls: tuple[str, ...]
    agents: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()

    def matches(self, *, kind: str, agents: Iterable[str] = (), severity: str = "") -> bool:
        """True when the event passes every filter the route sets. An event without agents (an incident
        not yet linked to one) fails an agent filter. An event without a severity (a gate change outside
        any incident) passes a severity filter: an on-call route for SEV1 still hears a kill."""
        if self.events and kind not in self.events:
            return False
        if self.agents and not self.agents.intersection(agents):
            return False
        return not (self.severities and severity and severity not in self.severities)


def _bad(where: str, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"FIREBREAK_NOTIFY_ROUTES: {where}: {why}")


def _strings(value: Any, *, where: str, key: str, allowed: Iterable[str] | None = None) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _bad(where, f'"{key}" must be a list of strings')
    values = frozenset(v.strip() for v in value)
    if allowed is not None:
        unknown = sorted(values - set(allowed))
        if unknown:
            raise _bad(where, f'"{key}" has {", ".join(unknown)}; choose from {", ".join(allowed)}')
    return values


def url_check(url: str) -> bool:
    """True when Apprise understands ``url`` (a known scheme with what it needs).

    Apprise's own complaint quotes the URL, token and all: it is kept out of the logs."""
    apprise_logger = logging.getLogger("apprise")
    was = apprise_logger.disabled
    apprise_logger.disabled = True
    try:
        return apprise.Apprise.instantiate(url) is not None
    finally:
        apprise_logger.disabled = was


def _urls(value: Any, *, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise _bad(where, '"urls" must be a non-empty list of Apprise URLs')
    for n, url in enumerate(value, 1):
        if not url_check(url.strip()):
            # Never the URL itself in the message: it holds the token.
            raise _bad(where, f"URL {n} is not one Apprise understands (check its scheme and parts)")
    return tuple(v.strip() for v in value)


def routes_parse(raw: str) -> list[Route]:
    """Named routes from ``raw``: a JSON list, or the path of a .json file holding one.

    Raises ImproperlyConfigured naming the bad route (by name, else by position) and what is wrong.
    """
    raw = (raw or "").strip()
    if not raw:
        return []
    if not raw.startswith(("[", "{")):
        path = Path(raw)
        if not path.is_file():
            raise ImproperlyConfigured(
                "FIREBREAK_NOTIFY_ROUTES is neither a JSON list nor the path of a readable .json file"
            )
        raw = path.read_text(encoding="utf-8")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(
            f"FIREBREAK_NOTIFY_ROUTES is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    if not isinstance(data, list):
        raise ImproperlyConfigured("FIREBREAK_NOTIFY_ROUTES must be a JSON list of routes")
    routes: list[Route] = []
    seen = {DEFAULT_ROUTE}
    for n, item in enumerate(data, 1):
        where = f"route {n}"
        if not isinstance(item, dict):
            raise _bad(where, "must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _bad(where, '"name" is required')
        name = name.strip()
        where = f'route "{name[:NAME_MAX]}"'
        if len(name) > NAME_MAX:
            raise _bad(where, f'"name" is longer than {NAME_MAX} characters')
        if name in seen:
            raise _bad(where, '"name" is used twice (or is "default", the name of FIREBREAK_NOTIFY_URLS)')
        seen.add(name)
        unknown = sorted(set(item) - ROUTE_KEYS)
        if unknown:
            raise _bad(where, f"unknown key {', '.join(unknown)}; use {', '.join(sorted(ROUTE_KEYS))}")
        routes.append(
            Route(
                name=name,
                urls=_urls(item.get("urls"), where=where),
                agents=_strings(item.get("agents"), where=where, key="agents"),
                severities=_strings(item.get("severities"), where=where, key="severities", allowed=Severity.values),
                events=_strings(item.get("events"), where=where, key="events", allowed=KINDS),
            )
        )
    return routes


_cache: dict[tuple[tuple[str, ...], str], list[Route]] = {}


def routes_configured() -> list[Route]:
    """The default route (when FIREBREAK_NOTIFY_URLS is set) and the named routes, checked.

    Parsed once per configuration. Raises ImproperlyConfigured for a bad route.
    """
    urls = tuple(settings.FIREBREAK_NOTIFY_URLS or ())
    raw = settings.FIREBREAK_NOTIFY_ROUTES or ""
    key = (urls, raw)
    if key not in _cache:
        routes: list[Route] = []
        if urls:
            for n, url in enumerate(urls, 1):
                if not url_check(url):
                    raise ImproperlyConfigured(
                        f"FIREBREAK_NOTIFY_URLS: URL {n} is not one Apprise understands (check its scheme and parts)"
                    )
            routes.append(Route(name=DEFAULT_ROUTE, urls=urls))
        routes += routes_parse(raw)
        _cache.clear()
        _cache[key] = routes
    return _cache[key]


def route_get(name: str) -> Route | None:
    return next((r for r in routes_configured() if r.name == name), None)


def routes_matching(*, kind: str, agents: Iterable[str] = (), severity: str = "") -> list[Route]:
    agents = list(agents)
    return [r for r in routes_configured() if r.matches(kind=kind, agents=agents, severity=severity)]
