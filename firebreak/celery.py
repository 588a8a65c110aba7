import os

from celery import Celery
from celery.signals import task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firebreak.settings")

app = Celery("firebreak")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect(weak=False)
def _connections_checked(**kwargs: object) -> None:
    """Before each task, what Django does before each request: drop a connection past CONN_MAX_AGE, or one an
    error left unusable (PostgreSQL restarted), so the task reconnects; a sound one is kept (CELERY_DB_REUSE_MAX)."""
    close_old_connections()
