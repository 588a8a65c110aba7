import getpass
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent
from agents.services import agent_kill
from core.actors import Actor


class Command(BaseCommand):
    help = "Kill an agent from a terminal: its next gate check raises AgentKilled."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--reason", default="", help="why (goes in the audit history)")
        parser.add_argument("--incident", type=int, default=None, help="incident number this belongs to")

    def handle(self, *args: Any, slug: str, reason: str = "", incident: int | None = None, **options: Any) -> None:
        agent = Agent.objects.filter(slug=slug).first()
        if agent is None:
            raise CommandError(f"no agent {slug!r}")
        try:
            entry = agent_kill(
                agent=agent, actor=Actor.system(f"cli:{getpass.getuser()}"), reason=reason, incident_number=incident
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if entry is None:
            self.stdout.write(f"{slug} was already killed.")
        else:
            self.stdout.write(self.style.SUCCESS(f"{slug} killed (gate version {entry.gate_version})."))
