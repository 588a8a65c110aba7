import logging
import sys

import redis
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse

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


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500. A retryable fault (PostgreSQL or Redis down or restarting) is a 503 with
    ``Retry-After`` — exporters, the SDK and browsers try again — never a 500; anything else is a 500.

    APIs answer the API's JSON error shape; pages answer a plain page that needs no database (the
    layout's context would read the session and the user from the store that is down).
    """
    exc = sys.exc_info()[1]
    retryable = isinstance(exc, RETRYABLE) or (isinstance(exc, DatabaseError) and _connection_lost())
    status = 503 if retryable else 500
    if retryable:
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
