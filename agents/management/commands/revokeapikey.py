from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.keys.services import api_key_revoke
from agents.models import ApiKey
from core.actors import Actor
from core.errors import Conflict


class Command(BaseCommand):
    help = "Revoke an API key by its lookup (the 12 characters after fbk_); an agent key's Redis user goes with it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("lookup", help="the key's lookup, or the whole key")
        parser.add_argument("--reason", default="", help="why (kept in the audit row)")

    def handle(self, *args: Any, lookup: str, reason: str = "", **options: Any) -> None:
        lookup = lookup.removeprefix(ApiKey.PREFIX).split("_", 1)[0]
        key = ApiKey.objects.filter(lookup=lookup).first()
        if key is None:
            raise CommandError(f"no key {lookup!r}")
        try:
            api_key_revoke(key=key, actor=Actor.system("revokeapikey"), reason=reason)
        except Conflict as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"revoked {ApiKey.PREFIX}{key.lookup}… ({key.agent or key.user})")
