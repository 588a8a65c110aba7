#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "firebreak.settings")
    from django.core.management import execute_from_command_line

    from firebreak.embedded import EmbeddedServiceError

    try:
        execute_from_command_line(sys.argv)
    except EmbeddedServiceError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
