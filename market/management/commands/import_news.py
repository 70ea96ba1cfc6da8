"""Import news headlines from a CSV or JSON file (format: docs/market.md)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ValidationFailed
from market.records import records_clean, records_read
from market.sentiment.news import news_record_clean, news_store

from .import_fundamentals import refuse


class Command(BaseCommand):
    help = (
        "Import news items (time, source, headline, summary, language de/en, URL) from FILE.csv or FILE.json. "
        "Every record is checked first; one bad record imports nothing. Items already stored are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="a .csv file with a header line, or a .json list of objects")

    def handle(self, *args, file: Path, **options):
        try:
            records = records_read(file)
        except ValueError as error:
            raise CommandError(str(error)) from None
        cleaned, errors = records_clean(records, news_record_clean)
        if errors:
            raise refuse(errors, len(records))
        if not cleaned:
            raise CommandError(f"{file} holds no records.")
        try:
            added, known = news_store(records=cleaned)
        except ValidationFailed as error:
            raise CommandError(f"{error.message} Nothing imported.") from None
        self.stdout.write(f"Imported news: {added} new items, {known} already stored.")
