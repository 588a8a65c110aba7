"""The project's URLs plus one page with a text field to type in, under base.html, which carries the new-alert
toast (``{% include "partials/alert_toast.html" %}``) on every page."""

from django.http import HttpResponse
from django.template import engines
from django.urls import path

from firebreak.urls import urlpatterns as project_urlpatterns

PAGE = """{% extends "base.html" %}{% block content %}
<h1>Somewhere else</h1><label>Notes <input id="typing"></label>{% endblock %}"""


def toast_page(request):
    return HttpResponse(engines["django"].from_string(PAGE).render({}, request))


urlpatterns = [path("e2e/toast/", toast_page), *project_urlpatterns]
handler500 = "core.views.server_error"
