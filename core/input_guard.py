"""Bad input at the door: a NUL byte or invalid UTF-8 in the path, the query string, a header or a form is
a 400 naming the field, before any view (or PostgreSQL, which cannot hold NUL in text) sees it.

Span content from agents is not refused here: it arrives as a JSON or protobuf body, and ingest keeps it
(``core.redaction`` turns NUL into U+FFFD). API answers use the API's one error shape
(``{"error": ..., "detail": {field: [message]}}``); pages a readable 400 page.
"""

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.template.loader import render_to_string

from core.middleware import API_PREFIXES

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FIELD_NAME = 64  # characters of a bad field's name quoted back


def _decode(raw: str) -> str:
    """A query-string or urlencoded-form part, percent-decoded as UTF-8; raises UnicodeDecodeError."""
    return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")


def _urlencoded_problem(data: str, where: str) -> tuple[str, str] | None:
    """(field, message) for the first parameter of ``data`` that is not UTF-8 or holds a NUL."""
    for part in data.split("&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition("=")
        try:
            name = _decode(raw_name)
        except UnicodeDecodeError:
            return f"{where} parameter", "a parameter name is not valid UTF-8"
        field = name.replace("\x00", "\\x00")[:MAX_FIELD_NAME] or where
        if "\x00" in name:
            return field, "a parameter name holds a NUL byte"
        try:
            value = _decode(raw_value)
        except UnicodeDecodeError:
            return field, "not valid UTF-8"
        if "\x00" in value:
            return field, "holds a NUL byte, which is not allowed"
    return None


def find_problem(request: HttpRequest) -> tuple[str, str] | None:
    """(field, message) for the first bad part of ``request``, or None when it is clean."""
    if "\x00" in request.path:
        return "path", "holds a NUL byte"
    problem = _urlencoded_problem(request.META.get("QUERY_STRING", ""), "query")
    if problem:
        return problem
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            return key[5:].replace("_", "-").title(), "header holds a NUL byte"
    for name, value in request.COOKIES.items():  # a quoted cookie can spell NUL as \000
        if "\x00" in name or "\x00" in value:
            return "Cookie", "a cookie holds a NUL byte"
    if request.method in ("POST", "PUT", "PATCH"):
        content_type = (request.content_type or "").lower()
        if content_type == FORM_TYPES[0]:
            try:
                body = request.body.decode("latin-1")  # percent-decoding is per part, below
            except (RequestDataTooBig, RawPostDataException):  # Django's own checks answer these later
                return None
            return _urlencoded_problem(body, "form")
        if content_type == FORM_TYPES[1]:
            for name, values in request.POST.lists():
                if "\x00" in name or any("\x00" in v for v in values):
                    return name.replace("\x00", "\\x00")[:MAX_FIELD_NAME], "holds a NUL byte, which is not allowed"
    return None


def bad_input_response(request: HttpRequest, field: str, message: str) -> HttpResponse:
    """400: JSON in the API's shape for /api/ and /v1/, a readable page otherwise."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"error": f"{field}: {message}", "detail": {field: [message]}}, status=400)
    html = render_to_string("400.html", {"field": field, "message": message})
    return HttpResponse(html, status=400)


class BadInputMiddleware:
    """Refuse NUL bytes and invalid UTF-8 in the path, query string, headers and forms with a 400."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = find_problem(request)
        if problem is not None:
            return bad_input_response(request, *problem)
        return self.get_response(request)
