"""The ingest spool: batches taken while PostgreSQL is down, kept on local disk, ingested in order when it is back.

An OTLP exporter with default settings gives up after 10 s of 503s, so answering 503 while the
database restarts still loses spans. Instead ingest validates the batch (a bad one is still a 4xx),
writes it here — one file per batch, fsynced before the 200 goes out — and a drainer thread in the
same process ingests the files oldest first once PostgreSQL answers again. Only when the spool
cannot take a batch (full, or the disk refuses) does ingest answer 503 with ``Retry-After``.

The directory may be shared by the web processes of several containers on one host (compose mounts one
volume in every ``web``): file names carry the host, and one drainer at a time takes the files (a lock file),
so whichever process looks first drains what any of them spooled, and a container removed with batches
waiting loses none.

The files hold the batch's spans as parsed and scrubbed (no secret reaches the disk) and the agent of
the key; draining runs the same ``trace_ingest`` as a live request, so a span spooled and a span sent
live end up the same (and a batch drained twice is stored once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from agents.models import Agent
from traces.ingest.parse.native import parse_native
from traces.ingest.parse.otlp import parse_json, parse_protobuf
from traces.ingest.spans import IngestError, Span
from traces.services import trace_ingest

logger = logging.getLogger(__name__)

NATIVE, OTLP_PROTOBUF, OTLP_JSON = "native", "otlp-protobuf", "otlp-json"
# What ingest spools: the batch's spans as parsed and scrubbed (no secret reaches the disk). The request
# formats stay readable for files an earlier version left.
SPANS = "spans"
FORMATS = (SPANS, NATIVE, OTLP_PROTOBUF, OTLP_JSON)
SUFFIX = ".batch"
_HOST = "".join(c for c in socket.gethostname() if c.isalnum() or c in ".-")[:63] or "host"
DRAIN_EVERY_SECONDS = 1.0
# Store faults that mean "try again later"; anything else about a spooled batch is its own fault.
RETRYABLE = (OperationalError, InterfaceError)


class SpoolFull(Exception):
    """The spool cannot take the batch (over its size limit, or the disk refused): answer 503."""


@dataclass(frozen=True)
class SpooledBatch:
    format: str
    body: bytes
    agent_slug: str | None  # the key's agent; None for a person's key (spans name their agents)
    agent_pk: int | None


def spool_dir() -> Path:
    return Path(settings.FIREBREAK_SPOOL_DIR)


def spool_parse(batch: SpooledBatch) -> list[Span]:
    """The spans of a batch, by the same parsers as a live request (the body passed them once already)."""
    max_spans = settings.FIREBREAK_INGEST_MAX_SPANS
    if batch.format == SPANS:
        return spans_decode(batch.body)
    if batch.format == NATIVE:
        return parse_native(json.loads(batch.body), max_spans=max_spans)
    parse = parse_protobuf if batch.format == OTLP_PROTOBUF else parse_json
    return parse(batch.body, max_spans=max_spans, service_name_is_agent=batch.agent_slug is None)


def spans_encode(spans: list[Span]) -> bytes:
    """A batch's (scrubbed) spans as JSON, every field kept: what ``spans_decode`` reads back."""
    rows = []
    for span in spans:
        row = dataclasses.asdict(span)
        row["start"] = span.start.isoformat()
        row["end"] = span.end.isoformat() if span.end else None
        row["cost"] = str(span.cost)
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False).encode()


def spans_decode(body: bytes) -> list[Span]:
    spans = []
    for row in json.loads(body):
        row["start"] = datetime.fromisoformat(row["start"])
        row["end"] = datetime.fromisoformat(row["end"]) if row["end"] else None
        row["cost"] = Decimal(row["cost"])
        spans.append(Span(**row))
    return spans


def spool_put(batch: SpooledBatch) -> Path:
    """Write the batch durably (fsync, then an atomic rename) and make sure a drainer runs. Raises SpoolFull."""
    directory = spool_dir()
    header = json.dumps(
        {"format": batch.format, "agent": batch.agent_slug, "agent_pk": batch.agent_pk, "size": len(batch.body)}
    ).encode()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if spool_size(directory) + len(batch.body) > settings.FIREBREAK_SPOOL_MAX_BYTES:
            raise SpoolFull(f"the ingest spool is full ({settings.FIREBREAK_SPOOL_MAX_BYTES:,} bytes)")
        # The host in the name too: web containers that share one spool volume all run as the same few pids.
        name = f"{time.time_ns():020d}-{_HOST}-{os.getpid()}-{threading.get_ident() % 100000:05d}"
        tmp = directory / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(header + b"\n" + batch.body)
            fh.flush()
            os.fsync(fh.fileno())
        final = directory / f"{name}{SUFFIX}"
        os.rename(tmp, final)
        _fsync_dir(directory)
    except OSError as exc:
        raise SpoolFull(f"the ingest spool cannot write ({exc.strerror or exc})") from exc
    drainer_ensure(force=True)
    return final


def spool_size(directory: Path | None = None) -> int:
    directory = directory or spool_dir()
    try:
        return sum(e.stat().st_size for e in os.scandir(directory) if e.name.endswith(SUFFIX))
    except FileNotFoundError:
        return 0


def spool_pending(directory: Path | None = None) -> list[Path]:
    """The spooled batches, oldest first."""
    directory = directory or spool_dir()
    try:
        return sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
    except FileNotFoundError:
        return []


def _read(path: Path) -> SpooledBatch:
    data = path.read_bytes()
    head, _, body = data.partition(b"\n")
    meta = json.loads(head)
    if meta.get("format") not in FORMATS or meta.get("size") != len(body):
        raise ValueError(f"{path.name} is not a whole spooled batch")
    return SpooledBatch(meta["format"], body, meta.get("agent"), meta.get("agent_pk"))


def spool_drain() -> int:
    """Ingest the spooled batches oldest first; stop at the first retryable fault. Returns how many were stored.

    One drainer at a time across processes (a lock file), so batches go in in order. A batch that can
    never be stored (its agent is gone, the file is damaged) moves to ``rejected/`` with the reason, and
    is logged: never retried forever, never silently dropped.
    """
    directory = spool_dir()
    if not spool_pending(directory):
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    stored = 0
    with open(directory / ".drain.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another process is draining
        for path in spool_pending(directory):
            try:
                batch = _read(path)
                spans = spool_parse(batch)
                key_agent = (
                    Agent(pk=batch.agent_pk, slug=batch.agent_slug)
                    if batch.agent_slug is not None and batch.agent_pk is not None
                    else None
                )
                if spans:
                    trace_ingest(spans=spans, key_agent=key_agent)
            except RETRYABLE:
                close_old_connections()
                break
            except (IngestError, ValueError) as exc:
                _reject(path, str(exc))
                continue
            path.unlink(missing_ok=True)
            stored += 1
        fcntl.flock(lock, fcntl.LOCK_UN)
    if stored:
        logger.info("ingest spool: %d batch(es) stored now that PostgreSQL answers", stored)
    return stored


def _reject(path: Path, reason: str) -> None:
    rejected = path.parent / "rejected"
    rejected.mkdir(exist_ok=True)
    os.rename(path, rejected / path.name)
    (rejected / f"{path.name}.why").write_text(reason + "\n")
    logger.error("ingest spool: %s could not be stored and was set aside: %s", path.name, reason)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- the drainer thread -----------------------------------------------------------------------------------

_drainer: threading.Thread | None = None
_drainer_lock = threading.Lock()
_last_look = 0.0


def drainer_ensure(*, force: bool = False) -> None:
    """Start this process's drainer thread if batches wait and none runs.

    Ingest calls it on every request: without ``force`` it looks at the spool directory at most every
    10 s (so a process restarted with batches waiting picks them up), never on the hot path.
    """
    global _drainer, _last_look
    if _drainer is not None and _drainer.is_alive():
        return
    now = time.monotonic()
    if not force and now - _last_look < 10:
        return
    with _drainer_lock:
        _last_look = now
        if (_drainer is not None and _drainer.is_alive()) or not spool_pending():
            return
        _drainer = threading.Thread(target=_drain_loop, name="firebreak-spool-drainer", daemon=True)
        _drainer.start()


def _drain_loop() -> None:
    """Drain until the spool is empty; PostgreSQL down meanwhile just means waiting another second."""
    try:
        while spool_pending():
            try:
                spool_drain()
            except Exception:
                logger.exception("ingest spool: the drainer failed; trying again")
            if spool_pending():
                time.sleep(DRAIN_EVERY_SECONDS)
    finally:
        close_old_connections()
