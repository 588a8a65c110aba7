import logging
import sys

import psycopg
import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from core.client_ip import client_ip
from core.middleware import API_PREFIXES
from core.redis import get_redis

logger = logging.getLogger(__name__)

# A store that is down or restarting: the request may succeed if it is sent again shortly.
RETRYABLE = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)
RETRY_AFTER_SECONDS = 5

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · Firebreak</title>
<link rel="stylesheet" href="/static/css/firebreak.css"></head><body><main class="errorpage card">
<h1>{title}</h1><p>{text}</p></main></body></html>"""


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and compose: PostgreSQL and Redis answer."""
    status = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        status["postgres"] = "ok"
    except Exception as exc:
        status["postgres"] = f"error: {exc.__class__.__name__}"
    try:
        get_redis().ping()
        status["redis"] = "ok"
    except Exception as exc:
        status["redis"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in status.values())
    return JsonResponse({"status": "ok" if ok else "degraded", **status}, status=200 if ok else 503)


def login_locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """django-axes' lockout answer (``AXES_LOCKOUT_CALLABLE``): the login page's layout, saying which
    user name is locked from which address and for how long; 429 with ``Retry-After``."""
    cooloff = settings.AXES_COOLOFF_TIME
    minutes = max(1, round(cooloff.total_seconds() / 60))
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        "username": username,
        "address": client_ip(request),
        "minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(int(cooloff.total_seconds()))
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500. A retryable fault (PostgreSQL or Redis down or restarting) is a 503 with
    ``Retry-After`` — exporters, the SDK and browsers try again — never a 500; anything else is a 500.

    APIs answer the API's JSON error shape; pages answer a plain page that needs no database (the
    layout's context would read the session and the user from the store that is down).
    """
    exc = sys.exc_info()[1]
    retryable = isinstance(exc, RETRYABLE) or (isinstance(exc, DatabaseError) and _connection_lost())
    status = 503 if retryable else 500
    if isinstance(getattr(exc, "__cause__", None), psycopg.errors.QueryCanceled):
        seconds = settings.FIREBREAK_WEB_STATEMENT_TIMEOUT_MS / 1000
        logger.warning("%s %s: statement timeout (%g s), answered 503", request.method, request.path, seconds)
        message = f"the query ran longer than the {seconds:g} s statement timeout; narrow it (a shorter window)"
        title = "Too slow to answer"
        text = f"This page's query ran longer than {seconds:g} s and was stopped: narrow it and try again."
    elif retryable:
        logger.warning("%s %s: %s, answered 503", request.method, request.path, type(exc).__name__)
        message = "a store Firebreak depends on is unavailable right now; retry shortly"
        title, text = (
            "Temporarily unavailable",
            "Firebreak cannot reach its database or Redis right now. Retry in a few seconds.",
        )
    else:
        message = "internal error"
        title, text = (
            "Something broke",
            "Firebreak hit an error it did not expect. It is logged; try again, or go back.",
        )
    if request.path.startswith(API_PREFIXES):
        response: HttpResponse = JsonResponse({"error": message}, status=status)
    else:
        response = HttpResponse(_PAGE.format(title=title, text=text), status=status)
    if retryable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _connection_lost() -> bool:
    try:
        return connection.connection is None or bool(connection.connection.closed)
    except Exception:
        return True
