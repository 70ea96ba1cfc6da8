"""Import company fundamentals from a CSV or JSON file (format: docs/market.md)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ValidationFailed
from market.figures import fundamentals_record_clean, fundamentals_store
from market.records import records_clean, records_read

# Refusals listed before the rest are summed up.
ERRORS_SHOWN = 20


def refuse(errors: list[str], total: int) -> CommandError:
    """Return the error that lists the refused records; nothing of the file is stored."""
    shown = "\n".join(errors[:ERRORS_SHOWN])
    more = f"\n… and {len(errors) - ERRORS_SHOWN} more" if len(errors) > ERRORS_SHOWN else ""
    return CommandError(f"{len(errors)} of {total} records refused; nothing imported.\n{shown}{more}")


def duplicates(records: list[tuple[str, object]], cleaned: list[dict]) -> list[str]:
    """Return an error for each record of an instrument and date that an earlier record has already."""
    seen: dict[tuple[str, object], str] = {}
    errors = []
    for (where, _), record in zip(records, cleaned):
        key = (record["symbol"], record["as_of"])
        if key in seen:
            errors.append(f"{where}: {record['symbol']} {record['as_of']} appears already at {seen[key]}")
        seen.setdefault(key, where)
    return errors


class Command(BaseCommand):
    help = (
        "Import company fundamentals (P/E, P/B, dividend yield, ROE, debt/equity, EPS, growth, market cap) "
        "from FILE.csv or FILE.json. Every record is checked first; one bad record imports nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="a .csv file with a header line, or a .json list of objects")

    def handle(self, *args, file: Path, **options):
        try:
            records = records_read(file)
        except ValueError as error:
            raise CommandError(str(error)) from None
        cleaned, errors = records_clean(records, fundamentals_record_clean)
        if not errors:
            errors = duplicates(records, cleaned)
        if errors:
            raise refuse(errors, len(records))
        if not cleaned:
            raise CommandError(f"{file} holds no records.")
        try:
            stored = fundamentals_store(records=cleaned)
        except ValidationFailed as error:
            raise CommandError(f"{error.message} Nothing imported.") from None
        self.stdout.write(
            f"Imported fundamentals: {len(stored)} records of {len({r['symbol'] for r in cleaned})} instruments."
        )
