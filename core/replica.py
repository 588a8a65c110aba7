"""Reads of the viewer and the lists from a read replica (``DATABASE_REPLICA_URL``), never anything else.

The replica is the database alias ``replica`` (settings add it only when ``DATABASE_REPLICA_URL`` is set).
Nothing reads it unless a view says so: ``replica_reads`` wraps a page that only reads (the trace list, the
trajectory viewer, the session and user pages, the incident and alert lists, the dashboard), and while it
runs ``ReplicaRouter`` sends the reads of the apps in ``FIREBREAK_REPLICA_APPS`` there. Everything else —
ingest, the gate, kills, every write, a read inside a transaction on the primary, sessions and users — is
on the primary, always.

A replica that cannot be reached never fails a page: the view runs again on the primary (it only reads, so
running it twice changes nothing), and the replica is left alone for ``REPLICA_BACKOFF_SECONDS`` before it
is tried again, so a replica that is down costs one failed connection per process per back-off, not one
per request.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

REPLICA = "replica"
REPLICA_BACKOFF_SECONDS = 10.0

_reading: contextvars.ContextVar[bool] = contextvars.ContextVar("firebreak_replica_reads", default=False)
_lock = threading.Lock()
_down_until = 0.0


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def replica_reset() -> None:
    """Forget a replica marked down (tests, or after pointing settings at another replica)."""
    global _down_until
    with _lock:
        _down_until = 0.0


def _mark_down(reason: BaseException) -> None:
    global _down_until
    with _lock:
        _down_until = time.monotonic() + REPLICA_BACKOFF_SECONDS
    connections[REPLICA].close()
    logger.warning("read replica unavailable, reading the primary for %.0f s: %s", REPLICA_BACKOFF_SECONDS, reason)


def _replica_up() -> bool:
    """The replica answers (a kept connection, or a new one); marked down for the back-off when it does not."""
    if time.monotonic() < _down_until:
        return False
    try:
        connections[REPLICA].ensure_connection()
    except (OperationalError, InterfaceError) as exc:
        _mark_down(exc)
        return False
    return True


def _usable() -> bool:
    replica = connections[REPLICA]
    try:
        return replica.connection is not None and replica.is_usable()
    except Exception:
        return False


View = Callable[..., HttpResponse]


def replica_reads(view: View) -> View:
    """Let a page that only reads take its reads from the replica, falling back to the primary.

        Only GET and HEAD are routed; with no replica configured the view runs as it always did. A database
        error while reading the replica (it went away mid-page, a query cancelled by recovery) runs the view
        again on the primary; an error on the primary is the primary's (the usual 503), and a statement timeout is
    not run again.
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD") or not replica_configured() or not _replica_up():
            return view(request, *args, **kwargs)
        token = _reading.set(True)
        try:
            return view(request, *args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
                raise  # the statement timeout: the same read would time out on the primary too
            if _usable():  # the replica answers: a query cancelled by recovery, say; not a reason to skip it
                logger.warning("a read on the replica failed, reading the primary: %s", exc)
                connections[REPLICA].close()
            else:
                _mark_down(exc)
        finally:
            _reading.reset(token)
        return view(request, *args, **kwargs)

    return wrapped


class ReplicaRouter:
    """Reads of the replica apps go to the replica inside ``replica_reads``; every write to the primary.

    Writes are named explicitly (never left to Django, which would send an object back to the database
    it was read from), and a read inside a transaction on the primary stays there.
    """

    def _app_on_replica(self, model: type[Model]) -> bool:
        return model._meta.app_label in getattr(settings, "FIREBREAK_REPLICA_APPS", ())

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        if (
            _reading.get()
            and self._app_on_replica(model)
            and replica_configured()
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        aliases = {DEFAULT_DB_ALIAS, REPLICA}
        return True if {obj1._state.db, obj2._state.db} <= aliases else None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db != REPLICA
