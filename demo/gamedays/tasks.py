"""The drill's injection: a Celery task (taking the gameday's id) that starts the simulated agent process."""

import logging
import os
import subprocess
import sys
import threading

from celery import shared_task
from django.conf import settings
from django.db import connection

from agents.models import ApiKey
from demo.gamedays import selectors
from demo.gamedays.services import gameday_agent_key_create, gameday_agent_key_revoke, gameday_injection_failed

logger = logging.getLogger(__name__)
PROCESS_SECONDS = 120.0


def agent_environment(*, base_url: str, api_key: str) -> dict[str, str]:
    """The simulated agent's environment: its key, the server's URL and the gate's public key, nothing else
    of ours (no database or Redis URL: it reaches Firebreak as a real agent does, over HTTP)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "FIREBREAK_"))}
    env.update(FIREBREAK_URL=base_url, FIREBREAK_API_KEY=api_key, FIREBREAK_GATE_PUBLIC_KEY=selectors.gate_public_key())
    return env


def _reap(process: subprocess.Popen[str], gameday_id: int, key: ApiKey) -> None:
    """Wait for the agent process, record why it ended if not stopped by its gate, revoke its key."""
    try:
        try:
            out, _ = process.communicate(timeout=PROCESS_SECONDS + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        if process.returncode != 0:
            gameday_injection_failed(
                gameday_id=gameday_id, error=f"agent process exited {process.returncode}: {out[-1500:]}"
            )
        gameday_agent_key_revoke(key=key)
    except Exception:
        logger.exception("gameday %s: reaping the drill agent failed", gameday_id)
    finally:
        connection.close()


@shared_task(name="demo.gamedays.inject", ignore_result=True)
def gameday_inject_task(gameday_id: int) -> int:
    """Start the drill's agent process with a key made for it; it runs until its gate stops it (or times out).
    Returns its pid. A thread waits for it and revokes the key when it ends."""
    gameday = selectors.gameday_get(pk=gameday_id)
    key, api_key = gameday_agent_key_create(gameday=gameday)
    cmd = [sys.executable, "-m", "demo.gamedays.agent", "--scenario", gameday.scenario, "--agent", gameday.agent.slug,
           "--seconds", str(PROCESS_SECONDS)]  # fmt: skip
    process = subprocess.Popen(
        cmd,
        env=agent_environment(base_url=settings.FIREBREAK_BASE_URL, api_key=api_key),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=settings.BASE_DIR,
    )
    threading.Thread(target=_reap, args=(process, gameday_id, key), daemon=True).start()
    return process.pid
