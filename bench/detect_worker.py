"""A Celery worker as ``make run`` starts it, that also writes down when each streaming detection batch ran.

Run by bench/ingest_detect.py, never by hand: ``python bench/detect_worker.py FILE``. The worker is the
project's (``celery -A firebreak worker --concurrency 2 --without-gossip --without-mingle``, prefork); each
``detect_batch_task`` that finishes appends one line to FILE: ``<time.time()> <trace pk> <trace pk> ...``.
The project's code is not changed: the line is written from Celery's ``task_postrun`` signal.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DETECT_TASK = "incidents.tasks.detect_batch_task"


def main() -> None:
    log = sys.argv[1]
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firebreak.settings")
    from celery.signals import task_postrun  # imported here: the settings module is chosen just above

    from firebreak.celery import app

    def record(task=None, args=None, **_kwargs) -> None:
        if task is not None and task.name == DETECT_TASK and args:
            line = f"{time.time():.6f} {' '.join(str(pk) for pk in args[0])}\n"
            with open(log, "a") as fh:  # one short write per line, O_APPEND: the two children never interleave
                fh.write(line)

    task_postrun.connect(record, weak=False)
    app.worker_main(["worker", "--loglevel", "WARNING", "--concurrency", "2", "--without-gossip", "--without-mingle"])


if __name__ == "__main__":
    main()
