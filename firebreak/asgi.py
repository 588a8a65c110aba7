"""The front of ``make run`` and compose: the gate server, with everything else handed to the web app.

``FIREBREAK_WEB_UPSTREAM`` (``unix:/path/web.sock`` or ``http://web:8000``) names the gunicorn
processes the rest goes to; without it the rest is served in this process by Django's ASGI handler
(development, tests).
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firebreak.settings")
# A web process: its queries get the web statement timeout (see settings).
os.environ.setdefault("FIREBREAK_PROCESS", "web")
django_application = get_asgi_application()

# Imported once Django is set up: the gate server reads models (an import above would run first).
from agents.gate_server import ASGIApp, GateServer  # noqa: E402
from core.proxy import UpstreamProxy  # noqa: E402

web: ASGIApp = UpstreamProxy(settings.FIREBREAK_WEB_UPSTREAM) if settings.FIREBREAK_WEB_UPSTREAM else django_application
application = GateServer(web)
