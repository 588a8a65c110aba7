import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firebreak.settings")
# A web process: its queries get the web statement timeout (see settings).
os.environ.setdefault("FIREBREAK_PROCESS", "web")
application = get_wsgi_application()
