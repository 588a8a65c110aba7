import os

from celery import Celery, Task
from celery.signals import task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firebreak.settings")

app = Celery("firebreak")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect(weak=False)
def _connections_checked(task: Task | None = None, **kwargs: object) -> None:
    """Before each task, what Django does before each request: drop a connection past CONN_MAX_AGE, or one an
    error left unusable (PostgreSQL restarted), so the task reconnects; a sound one is kept (CELERY_DB_REUSE_MAX).
    Not for a task run eagerly, inside its caller (a test's transaction, say): that connection is the caller's."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
