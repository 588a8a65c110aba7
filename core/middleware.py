from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponseBase

# Machine endpoints authenticate with API keys through DRF and answer 401/403
# in JSON; a browser redirect to the login page would be wrong for them.
API_PREFIXES = ("/api/", "/v1/")


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every page needs login; the API and OTLP endpoints do their own auth."""

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        if request.path.startswith(API_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
