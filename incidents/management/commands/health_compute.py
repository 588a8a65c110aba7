from typing import Any

from django.core.management.base import BaseCommand

from incidents.detection.health import health_scores_compute


class Command(BaseCommand):
    help = (
        "Score every agent's health now (beat does it every few minutes): `make run` calls it at start, "
        "so the dashboard never opens on 'Health not computed yet'."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        scores = health_scores_compute()
        self.stdout.write(f"Health scored for {len(scores)} agent(s).")
