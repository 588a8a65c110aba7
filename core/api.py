"""API error plumbing shared by every app's DRF views: one error shape, one mapping of service errors."""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import Conflict, error_detail

# The largest value of a PostgreSQL integer column (PositiveIntegerField, IntegerField): serializer fields
# that feed one take max_value=INT_MAX, so a bigger number is a 400 naming the field, not a DataError.
INT_MAX = 2**31 - 1

ERROR = inline_serializer("Error", {"error": serializers.CharField(), "detail": serializers.JSONField(required=False)})
ERRORS = {
    400: OpenApiResponse(ERROR, description="invalid input; nothing written"),
    401: OpenApiResponse(ERROR, description="no or unknown key"),
    403: OpenApiResponse(ERROR, description="not allowed (agent keys never act on a gate); nothing written"),
    404: OpenApiResponse(ERROR, description="unknown agent"),
    409: OpenApiResponse(ERROR, description="does not apply to the gate as it is; nothing written"),
}


def error(message: str, code: int, detail: Any = None) -> Response:
    """The API's one error shape: ``{"error": "...", "detail": ...}``."""
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return Response(body, status=code)


def service_error(exc: Exception) -> Response:
    """A service's refusal as a response: Conflict 409, ValidationError 400, PermissionDenied 403.

    Anything else is re-raised: it is a bug, not an answer.
    """
    if isinstance(exc, Conflict):
        return error("; ".join(exc.messages), status.HTTP_409_CONFLICT)
    if isinstance(exc, ValidationError):
        return error("invalid input", status.HTTP_400_BAD_REQUEST, error_detail(exc))
    if isinstance(exc, PermissionDenied):
        return error(str(exc) or "not allowed", status.HTTP_403_FORBIDDEN)
    raise exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF errors as ``{"error": "...", "detail": ...}`` so clients read one field."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"error": str(data["detail"])}
    else:
        response.data = {"error": "invalid input", "detail": data}
    return response


class _JsonRefusals:
    """A view whose refusals (401, 403) answer the API's JSON error shape, whatever it renders otherwise."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed | exceptions.PermissionDenied):
            request = self.request  # type: ignore[attr-defined]
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        response: Response = super().handle_exception(exc)  # type: ignore[misc]
        return response


class SchemaView(_JsonRefusals, SpectacularAPIView):
    """The OpenAPI schema, for people only (``SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]``)."""


class DocsView(_JsonRefusals, SpectacularSwaggerSplitView):
    """Swagger UI for people only; its start-up script is a file of its own (no inline script: CSP).
    Its template adds a bar with a way back to the app."""

    template_name = "api_docs.html"


# --- keyset pages ----------------------------------------------------------------------------------
# Lists that can grow long answer in pages walked by an opaque cursor (the last row's key), never by
# OFFSET: a page costs the same at the end of the list as at its start, and rows added meanwhile do
# not shift it.

PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 200


class PageQuerySerializer(serializers.Serializer):
    """``?cursor=`` (from the previous page's ``next_cursor``) and ``?limit=`` (1 to 200)."""

    cursor = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="next_cursor of the page before"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=PAGE_LIMIT_MAX, default=PAGE_LIMIT_DEFAULT)


def cursor_int(raw: str) -> int | None:
    """A cursor made by :func:`keyset_page`: a positive integer key, or None for the first page.

    Raises ``serializers.ValidationError`` naming ``cursor`` when it is not one.
    """
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise serializers.ValidationError({"cursor": ["Not a cursor of this list; start without one."]})
    return int(raw)


def page_response(results: Any, next_cursor: str | None) -> Response:
    return Response({"results": results, "next_cursor": next_cursor})


def paginated(item: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The schema of a page of ``item``: ``{"results": [...], "next_cursor": "..." | null}``."""
    return inline_serializer(
        name,
        {
            "results": item(many=True),
            "next_cursor": serializers.CharField(
                allow_null=True, help_text="pass as ?cursor= for the next page; null: last page"
            ),
        },
    )
