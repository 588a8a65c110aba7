"""Start a gameday and queue a drill's injection: what the page and the API both call."""

import logging

from django.db import transaction

from agents.models import Agent
from core.actors import Actor
from demo.gamedays.models import Gameday, GamedayMode
from demo.gamedays.services import gameday_injection_failed, gameday_start
from demo.gamedays.tasks import gameday_inject_task

logger = logging.getLogger(__name__)


def gameday_launch(
    *, scenario: str, actor: Actor, agent: Agent | None = None, mode: str = GamedayMode.DRILL
) -> Gameday:
    """``gameday_start`` in one transaction; a drill's injection is queued once it has committed. With the
    broker down the drill stays on the clock (a tabletop, in effect) and says why nothing was injected."""
    with transaction.atomic():
        gameday = gameday_start(scenario=scenario, actor=actor, agent=agent, mode=mode)
    if gameday.mode == GamedayMode.DRILL:
        try:
            gameday_inject_task.delay(gameday.pk)
        except Exception:
            logger.warning("broker unreachable: gameday %s starts without injection", gameday.pk)
            gameday_injection_failed(gameday_id=gameday.pk, error="the task queue was unreachable: nothing injected")
    return gameday
