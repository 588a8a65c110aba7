"""Request types for views: a Django request as the middleware leaves it."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """What every view receives: HtmxMiddleware sets ``request.htmx`` (falsy when not an htmx request)."""

    htmx: HtmxDetails
