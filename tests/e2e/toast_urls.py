"""The project's URLs plus one page that includes the new-alert toast the way base.html will
(``{% include "partials/alert_toast.html" %}``), until the header's owner adds that line."""

from django.http import HttpResponse
from django.template import engines
from django.urls import path

from firebreak.urls import urlpatterns as project_urlpatterns

PAGE = """{% extends "base.html" %}{% block content %}
<h1>Somewhere else</h1><label>Notes <input id="typing"></label>
{% include "partials/alert_toast.html" %}{% endblock %}"""


def toast_page(request):
    return HttpResponse(engines["django"].from_string(PAGE).render({}, request))


urlpatterns = [path("e2e/toast/", toast_page), *project_urlpatterns]
handler500 = "core.views.server_error"
