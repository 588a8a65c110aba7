from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from agents.keys.services import api_key_create
from agents.models import Agent
from agents.services import agent_register
from core.actors import Actor


class Command(BaseCommand):
    help = "Create an API key for an agent (registering it if new) or for a user, and print it once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--agent", help="agent slug; registered if it does not exist")
        who.add_argument("--user", help="username the key acts as")
        parser.add_argument("--scopes", default=None, help="comma separated: ingest,gate for agents; api for users")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(
        self,
        *args: Any,
        agent: str | None = None,
        user: str | None = None,
        scopes: str | None = None,
        name: str = "",
        **options: Any,
    ) -> None:
        try:
            if agent:
                scope_list = (scopes or "ingest,gate").split(",")
                target = Agent.objects.filter(slug=agent).first()
                if target is None:
                    target = agent_register(
                        slug=agent, name=agent.replace("-", " ").title(), actor=Actor.system("createapikey")
                    )
                    self.stderr.write(f"registered agent {agent}")
                key, raw = api_key_create(agent=target, scopes=scope_list, name=name)
            else:
                person = get_user_model().objects.filter(username=user).first()
                if person is None:
                    raise CommandError(f"no user named {user!r}")
                key, raw = api_key_create(user=person, scopes=(scopes or "api").split(","), name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stderr.write(f"key for {key.agent or key.user} with scopes {','.join(key.scopes)} (shown once):")
        self.stdout.write(raw)
