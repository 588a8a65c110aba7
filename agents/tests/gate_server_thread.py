"""The gate server (uvicorn) in a thread of the test process, so it reads the test database, and a
reader of its event stream: shared by the gate server's tests and the SDK's stream tests."""

import json
import threading
import time

import httpx
import uvicorn
from django.db import connection

from agents.gate_server import GateServer


class RunningServer:
    """uvicorn in a thread of the test process, so it reads the test database; its own event loop."""

    def __init__(self, app: GateServer) -> None:
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "RunningServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not (self.server.started and self.app.listening.is_set()):
            if time.monotonic() > deadline:
                raise RuntimeError("the gate server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        # The server's worker threads keep their database connections; end them so the test
        # database can be dropped (a server process would keep them, CONN_MAX_AGE).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


class Events:
    """The ``event: gate`` documents of one open stream, read in a thread."""

    def __init__(self, url: str, key: str) -> None:
        self.docs: list[dict] = []
        self.closed = threading.Event()
        self.status: int | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, key), daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "the stream did not answer"

    def _read(self, url: str, key: str) -> None:
        try:
            with httpx.stream("GET", url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as response:
                self.status = response.status_code
                self._ready.set()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.docs.append(json.loads(line[6:]))
        except httpx.HTTPError:
            pass
        finally:
            self._ready.set()
            self.closed.set()

    def wait_for(self, predicate, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for doc in self.docs:
                if predicate(doc):
                    return doc
            time.sleep(0.01)
        raise AssertionError(f"no such document in {self.docs}")
