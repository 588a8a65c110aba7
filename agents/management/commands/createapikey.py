from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from agents.keys.redis_users import RedisUserError, redis_url_for
from agents.keys.services import api_key_create
from agents.models import Agent
from agents.services import agent_register
from agents.signing import public_key_text
from core.actors import Actor


class Command(BaseCommand):
    help = "Create an API key for an agent (registering it if new) or for a user, and print it once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--agent", help="agent slug; registered if it does not exist")
        who.add_argument("--user", help="username the key acts as")
        who.add_argument(
            "--integration",
            help="a monitoring integration's name (e.g. prometheus-prod): the key may only post inbound alerts",
        )
        parser.add_argument("--scopes", default=None, help="comma separated: ingest,gate for agents; api for users")
        parser.add_argument("--name", default="", help="a label for the key")
        parser.add_argument(
            "--redis",
            action="store_true",
            help="agents: also a Redis user of its own (read-only on its gate) and print FIREBREAK_REDIS_URL",
        )

    def handle(
        self,
        *args: Any,
        agent: str | None = None,
        user: str | None = None,
        integration: str | None = None,
        scopes: str | None = None,
        name: str = "",
        redis: bool = False,
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
                key, raw = api_key_create(agent=target, scopes=scope_list, name=name, redis=redis)
            elif integration is not None:
                if redis:
                    raise CommandError("--redis is for agent keys: an integration key only posts alerts")
                key, raw = api_key_create(integration=integration, scopes=["inbound"], name=name)
            else:
                if redis:
                    raise CommandError("--redis is for agent keys: a person's key acts through the API")
                person = get_user_model().objects.filter(username=user).first()
                if person is None:
                    raise CommandError(f"no user named {user!r}")
                key, raw = api_key_create(user=person, scopes=(scopes or "api").split(","), name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except RedisUserError as exc:
            raise CommandError(str(exc)) from exc
        owner = key.agent or key.user or f"integration {key.integration}"
        self.stderr.write(f"key for {owner} with scopes {','.join(key.scopes)} (shown once):")
        self.stdout.write(raw)
        if key.agent is not None:
            # What the agent's SDK verifies gate documents with (Gate.from_env reads it).
            self.stdout.write(f"FIREBREAK_GATE_PUBLIC_KEY={public_key_text()}")
        if key.redis_access:
            self.stdout.write(f"FIREBREAK_REDIS_URL={redis_url_for(key, raw)}")
