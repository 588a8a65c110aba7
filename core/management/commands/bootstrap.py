import secrets
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first admin user if there is none, and print its login once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str = "admin", **options: Any) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                "Admin user exists; its password was printed on the first run "
                f"(reset it with: .venv/bin/python manage.py changepassword {username})."
            )
            return
        password = secrets.token_urlsafe(12)  # 16 characters
        validate_password(password, users(username=username))  # the validators every password must pass
        user = users.objects.create_superuser(username=username, email="", password=password)
        user.groups.add(Group.objects.get(name="admin"))
        bar = "=" * 60
        self.stdout.write(
            f"{bar}\n  Firebreak admin login (shown once)\n  user:     {username}\n  password: {password}\n{bar}"
        )
