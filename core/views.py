from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse

from core.redis import get_redis


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
