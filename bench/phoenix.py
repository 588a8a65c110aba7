"""The same spans into Arize Phoenix: its own virtualenv (bench/.phoenix-venv, installed when missing), in a
loopback-only network namespace with its sender, counted in Phoenix's SQLite database until all are there."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from harness import ROOT, cpu_line, cpu_snapshot, descendants, say, wait_quiet, wait_stored
from payloads import Payloads
from sender import Sender, sender_command
from throughput import IngestRun

NETNS = "fb_phx"
PHOENIX_VENV = ROOT / "bench" / ".phoenix-venv"
PHOENIX_PORT = 6006


def ensure_phoenix() -> Path:
    phoenix = PHOENIX_VENV / "bin" / "phoenix"
    if phoenix.exists():
        return phoenix
    say(f"installing arize-phoenix into {PHOENIX_VENV.relative_to(ROOT)} (~45 s, ~855 MB) …")
    subprocess.run(["python3", "-m", "venv", str(PHOENIX_VENV)], check=True)
    subprocess.run([str(PHOENIX_VENV / "bin" / "pip"), "install", "-q", "arize-phoenix"], check=True)
    return phoenix


def phoenix_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [str(PHOENIX_VENV / "bin" / "python"), "-c", "import phoenix; print(phoenix.__version__)"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout.strip()
    return "?"


def phoenix_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    except sqlite3.Error:
        return 0


def phoenix_run(args, payloads: Payloads) -> IngestRun:
    phoenix = ensure_phoenix()
    subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL, check=False)  # an interrupted run's
    workdir = Path(tempfile.mkdtemp(prefix="fb-phoenix-"))
    db = workdir / "phoenix.db"
    log = open(workdir.with_suffix(".log"), "w+b")  # noqa: SIM115 - closed in finally
    proc = sender = None
    try:
        subprocess.run(["ip", "netns", "add", NETNS], check=True)
        subprocess.run(["ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up"], check=True)
        env = [
            f"PHOENIX_WORKING_DIR={workdir}",
            "PHOENIX_HOST=127.0.0.1",
            f"PHOENIX_PORT={PHOENIX_PORT}",
            "PHOENIX_TELEMETRY_ENABLED=false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES=false",
            "PHOENIX_DISABLE_AGENT_ASSISTANT=true",
            "PHOENIX_ENABLE_MCP_SERVER=false",
        ]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", NETNS, "env", *env, str(phoenix), "serve"],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{PHOENIX_PORT}"
        command = sender_command(
            f"{base}/v1/traces", payloads.phoenix, payloads.phoenix_warmup, args.phoenix_connections, f"{base}/healthz"
        )
        sender = Sender(["ip", "netns", "exec", NETNS, *command], {**os.environ})
        sender.expect("ready", timeout=200)
        warm = sender.expect("warmed", timeout=300)
        if warm["failed"]:
            raise RuntimeError(f"warm-up requests to Phoenix failed: {warm['errors']}")
        baseline, _ = wait_stored(lambda: phoenix_count(db), warm["acked"], 60, 0.25)
        if baseline < warm["acked"]:
            raise RuntimeError(f"Phoenix stored {baseline} of {warm['acked']} warm-up spans")
        wait_quiet()
        before = cpu_snapshot()
        sender.go()
        done = sender.expect("done", timeout=3600)
        stored, end = wait_stored(lambda: phoenix_count(db), baseline + payloads.phoenix_spans, 120, 0.25)
        after = cpu_snapshot()
        groups = {"phoenix": descendants(after.procs, proc.pid), "sender": descendants(after.procs, sender.proc.pid)}
        seconds = end - done["t0"]
        return IngestRun(
            label=f"{args.phoenix_connections} connections, SQLite",
            spans=payloads.phoenix_spans,
            acked=done["acked"],
            stored=stored - baseline,
            seconds=seconds,
            acked_seconds=done["t_end"] - done["t0"],
            retries=done["retries"],
            errors=done["errors"],
            cpu=cpu_line(before, after, seconds, groups, payloads.phoenix_spans),
        )
    except Exception:
        log.seek(0)
        say("Phoenix log (tail):", log.read().decode(errors="replace")[-3000:])
        raise
    finally:
        if sender is not None:
            sender.close()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL, check=False)
        log.close()
        workdir.with_suffix(".log").unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
