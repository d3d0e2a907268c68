#!/usr/bin/env python
"""Django's command-line utility for R1 Lab."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lab.settings")
    from django.core.management import execute_from_command_line

    from lab.env import EnvError

    try:
        execute_from_command_line(sys.argv)
    except EnvError as exc:
        # One clear line naming the variable, no traceback (README "Configuration").
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
