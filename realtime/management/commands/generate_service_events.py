"""Write the service library's event classes from the gateway's one schema table.

The library (`clients/python`) cannot import Django, so it carries a generated copy of the
spec's dataclasses; a test fails when the copy in the repository differs from what this writes.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.schema import CATEGORIES, EventSchema, Field, Kind
from realtime.management.generated import SECTIONS, GeneratedFileCommand

TARGET = Path(settings.BASE_DIR) / "clients" / "python" / "src" / "aktienanalyse_events" / "events.py"

_ANNOTATIONS = {
    Kind.STRING: "str",
    Kind.TIMESTAMP: "str",
    Kind.DECIMAL: "Decimal",
    Kind.MEASURE: "float",
    Kind.INTEGER: "int",
    Kind.BOOLEAN: "bool",
    Kind.LIST: "list[dict[str, Any]] | None",
    Kind.STRINGS: "list[str] | None",
    Kind.OBJECT: "dict[str, Any] | None",
}

HEADER = '''"""The event classes of the spec's section 2, one per event type, with exact decimals on the wire.

Generated from the gateway's schema table (`realtime/wire/events.py`) by
`python manage.py generate_service_events`; do not edit. Every class is the spec's dataclass:
the same name, fields, order and defaults, and a `to_websocket_data()` returning the same keys,
except that money and quantities stay `Decimal` instead of becoming `float`.

One file however long it grows (the 400-line rule for modules does not apply to it): it is the
schema table written out class by class, no one reads or edits it by hand, and `--check` and the
tests compare it whole with what the table gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .codec import exact, exact_or_none
'''


def _literal(value: Any) -> str:
    if isinstance(value, Decimal):
        return f'Decimal("{value}")'
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _annotation(field: Field) -> str:
    text = _ANNOTATIONS[field.kind]
    return f"{text} | None" if field.nullable else text


def _wire_value(field: Field) -> str:
    attribute = f"self.{field.name}"
    if field.kind is Kind.DECIMAL:
        return f"exact_or_none({attribute})" if field.nullable else f"exact({attribute})"
    if field.kind in (Kind.LIST, Kind.STRINGS):
        return f"{attribute} or []"
    if field.kind is Kind.OBJECT:
        return f"{attribute} or {{}}"
    return attribute


def _attributes(schema: EventSchema) -> list[Field]:
    """Return the dataclass's attributes in the spec's order: the sent fields, the unsent ones after theirs."""
    after: dict[str, list[Field]] = {}
    for previous, field in schema.unsent:
        after.setdefault(previous, []).append(field)
    ordered = []
    for field in schema.fields:
        ordered += [field, *after.get(field.name, [])]
    return ordered


def _render_class(schema: EventSchema) -> str:
    lines = [
        "",
        "",
        "@dataclass",
        f"class {schema.spec_class}:",
        f'    """The `{schema.name}` event (spec section {SECTIONS[schema.category]})."""',
        "",
        f'    event_type: str = "{schema.name}"',
    ]
    lines += [
        f"    {field.name}: {_annotation(field)} = {_literal(field.spec_default)}" for field in _attributes(schema)
    ]
    lines += [
        "",
        "    def to_websocket_data(self) -> dict[str, Any]:",
        '        """Return the event\'s `data` as the spec writes it, money and quantities as exact decimals."""',
        "        return {",
    ]
    lines += [f'            "{field.name}": {_wire_value(field)},' for field in schema.fields]
    lines.append("        }")
    return "\n".join(lines) + "\n"


def render() -> str:
    """Return the text of the library's `events.py` for the current schema table."""
    schemas = [schema for schema in EVENT_SCHEMAS.values() if schema.spec_class]
    names = ["CATEGORIES", "EVENT_CLASSES", *(schema.spec_class for schema in schemas)]
    parts = [HEADER, "\n__all__ = [\n" + "".join(f'    "{name}",\n' for name in names) + "]\n"]
    parts.append("\nCATEGORIES = (" + ", ".join(f'"{c}"' for c in CATEGORIES) + ")\n")
    parts += [_render_class(schema) for schema in schemas]
    parts.append("\n\n# The class of every event type a service may send.\nEVENT_CLASSES: dict[str, type] = {\n")
    parts += [f'    "{schema.name}": {schema.spec_class},\n' for schema in schemas]
    parts.append("}\n")
    return "".join(parts)


class Command(GeneratedFileCommand):
    help = "Write the service library's event classes (clients/python) from the schema table."
    target = TARGET
    command_name = "generate_service_events"

    def render(self) -> str:
        return render()
