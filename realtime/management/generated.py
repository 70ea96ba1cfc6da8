"""What the commands that write a file from the schema table share: writing it, or checking it.

Each generated file is committed; a test compares it with what its command writes now, so a
change to `realtime/wire/events.py` that is not regenerated fails the test run.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

# The spec's section of each event category.
SECTIONS = {"portfolio": "2.1", "trading": "2.2", "market": "2.3", "analysis": "2.3", "system": "2.4"}


class GeneratedFileCommand(BaseCommand):
    """Write `target` with the text `render()` returns, or with `--check` fail when it differs."""

    target: Path
    command_name: str

    def render(self) -> str:
        raise NotImplementedError

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="fail if the file in the repository is stale")

    def handle(self, *args, **options):
        text = self.render()
        current = self.target.read_text(encoding="utf-8") if self.target.exists() else None
        if current == text:
            self.stdout.write(f"{self.target} is up to date.")
        elif options["check"]:
            raise CommandError(f"{self.target} is stale: run `python manage.py {self.command_name}`.")
        else:
            self.target.write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote {self.target}.")
