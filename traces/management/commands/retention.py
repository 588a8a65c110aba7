"""``python manage.py retention [--dry-run] [--days N]``: make the next days' step partitions and drop what is
older than FIREBREAK_RETENTION_DAYS now, saying what went (beat does the same every hour)."""

from django.core.management.base import BaseCommand, CommandParser

from traces.retention.partitions import partitions_ensure
from traces.retention.services import retention_run


class Command(BaseCommand):
    help = "Drop steps and traces older than FIREBREAK_RETENTION_DAYS (whole day partitions); keep kept traces."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
        parser.add_argument("--days", type=int, help="keep this many days instead of FIREBREAK_RETENTION_DAYS")

    def handle(self, *args, dry_run: bool, days: int | None, **options) -> None:
        if not dry_run:
            for name in partitions_ensure():
                self.stdout.write(f"Made partition {name}")
        report = retention_run(days=days, dry_run=dry_run)
        if report.cutoff is None:
            self.stdout.write("Retention is off (FIREBREAK_RETENTION_DAYS=0): nothing dropped.")
            return
        verb = "Would drop" if dry_run else "Dropped"
        when = f"{report.cutoff:%Y-%m-%d %H:%M} UTC"
        for day in report.dropped:
            kept = f"; {day.kept_steps:,} steps of kept traces copied out" if day.kept_steps else ""
            self.stdout.write(f"{verb} partition {day.name} ({day.steps:,} steps{kept})")
        for name in report.busy:
            self.stdout.write(f"Left {name} for the next run: a long query held the steps table")
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {report.steps:,} steps, {report.traces:,} traces and {report.payloads:,} stored payloads "
            f"older than {when} ({report.days} days); {report.kept_traces:,} kept traces with older steps stay."
        )
