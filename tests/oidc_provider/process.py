"""Start and stop the test provider as its own process (used by the SSO tests' fixtures)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "firebreak-test"
CLIENT_SECRET = "firebreak-test-secret-0123456789"
PASSWORD = "provider-pass-1"
CALLBACK_PATH = "/accounts/sso/callback/"
USERS = [
    {"username": "olivia", "email": "olivia@example.test", "groups": ["oncall", "staff"]},
    {"username": "vik", "email": "vik@example.test", "groups": ["staff"]},
    {"username": "nora", "email": "nora@example.test", "groups": ["contractors"]},
]


@dataclass
class OidcProvider:
    port: int
    process: subprocess.Popen
    directory: tempfile.TemporaryDirectory
    users: list[dict] = field(default_factory=list)
    database: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    @staticmethod
    def _server_connection(database: dict) -> psycopg.Connection:
        return psycopg.connect(
            host=database["HOST"] or None,
            port=database["PORT"] or None,
            user=database["USER"] or None,
            password=database["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        )

    @classmethod
    def start(cls) -> OidcProvider:
        """The provider keeps its accounts in a database of its own on the tests' PostgreSQL server
        (made here, dropped by ``stop``): the same real engine as everything else, never Firebreak's tables."""
        directory = tempfile.TemporaryDirectory(prefix="oidc-provider-")
        ours = settings.DATABASES["default"]
        database = {key: ours.get(key, "") for key in ("HOST", "PORT", "USER", "PASSWORD")}
        database["NAME"] = f"fb_oidc_provider_{os.getpid()}_{secrets.token_hex(3)}"
        with cls._server_connection(database) as conn:
            conn.execute(f'CREATE DATABASE "{database["NAME"]}"')
        users = [{**user, "password": PASSWORD} for user in USERS]
        seed = {
            "users": users,
            "client": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"http://127.0.0.1{CALLBACK_PATH}", f"http://localhost{CALLBACK_PATH}"],
                "post_logout_redirect_uris": ["http://127.0.0.1/accounts/login/", "http://localhost/accounts/login/"],
            },
        }
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(
            {
                "OP_DIR": directory.name,
                "OP_SEED": json.dumps(seed),
                "OP_DATABASE": json.dumps(database),
                "PYTHONPATH": str(ROOT),
            }
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.oidc_provider.serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("ready "):
            process.kill()
            errors = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"the test provider did not start: {line!r} {errors}")
        return cls(port=int(line.split()[1]), process=process, directory=directory, users=users, database=database)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        if self.database:
            with self._server_connection(self.database) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database["NAME"]}" WITH (FORCE)')
        self.directory.cleanup()
