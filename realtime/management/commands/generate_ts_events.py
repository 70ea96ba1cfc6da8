"""Write the TypeScript types of every event's `data` from the gateway's one schema table.

The desk, the monitoring pages and the npm package (`clients/typescript`) compile against
`static/ts/events.generated.ts`; a test fails when the file in the repository differs from what
this writes, so the types cannot drift from `realtime/wire/events.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.schema import CATEGORIES, EventSchema, Field, Kind
from realtime.management.generated import SECTIONS, GeneratedFileCommand

TARGET = Path(settings.BASE_DIR) / "static" / "ts" / "events.generated.ts"

_TYPES = {
    Kind.STRING: "string",
    Kind.TIMESTAMP: "Timestamp",
    Kind.DECIMAL: "DecimalNumber",
    Kind.MEASURE: "number",
    Kind.INTEGER: "number",
    Kind.BOOLEAN: "boolean",
    Kind.LIST: "Record<string, unknown>[]",
    Kind.STRINGS: "string[]",
    Kind.OBJECT: "Record<string, unknown>",
}

HEADER = """/**
 * The `data` of every event type, generated from the gateway's schema table
 * (realtime/wire/events.py) by `python manage.py generate_ts_events`; do not edit.
 *
 * Field names are those on the wire. Decimals (money, prices, quantities) arrive as exact JSON
 * numbers, which JSON.parse reads as `number`; a handler's second argument has the frame's text
 * when every digit matters. A choice also admits the value the spec's dataclass defaults it to
 * (mostly ""), which the gateway accepts from services on the Redis bus.
 */

/** A decimal of the server (money, price, quantity), received as a JSON number. */
export type DecimalNumber = number;
/** An ISO-8601 timestamp string. */
export type Timestamp = string;
"""


def _quote(text: str) -> str:
    return json.dumps(text)


def _choices(schema: EventSchema, field: Field) -> list[str]:
    """Return the values a choice field may carry on the wire, the bus services' default included."""
    values = list(field.choices or ())
    default = field.spec_default
    # A nullable field defaults to None, which `| null` already admits.
    if schema.spec_class is not None and isinstance(default, str) and default not in values:
        values.append(default)
    return values


def _type(schema: EventSchema, field: Field) -> str:
    text = " | ".join(_quote(v) for v in _choices(schema, field)) if field.choices else _TYPES[field.kind]
    return f"{text} | null" if field.nullable else text


def interface_name(schema: EventSchema) -> str:
    """Return the interface of an event's data: the spec's class name with `Data` for `Event`."""
    if schema.spec_class is not None:
        return schema.spec_class.removesuffix("Event") + "Data"
    # A type outside the spec's categories (`user.command`) keeps its prefix: `UserCommandData`.
    name = schema.name.split(".", 1)[1] if schema.category in CATEGORIES else schema.name.replace(".", "_")
    return "".join(part.capitalize() for part in name.split("_")) + "Data"


def _describe(schema: EventSchema) -> str:
    if schema.category not in CATEGORIES:
        return f"`{schema.name}`: written by the gateway; the spec names the type and no fields."
    if schema.spec_class is None:
        return f"`{schema.name}`: the gateway's own event (not in the spec)."
    return f"`{schema.name}` (spec section {SECTIONS[schema.category]}, `{schema.spec_class}`)."


def _render_interface(schema: EventSchema) -> str:
    lines = ["", f"/** {_describe(schema)} */", f"export interface {interface_name(schema)} {{"]
    lines += [f"  {field.name}: {_type(schema, field)};" for field in schema.fields]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _const_list(name: str, doc: str, values: list[str]) -> str:
    lines = ["", f"/** {doc} */", f"export const {name} = ["]
    lines += [f"  {_quote(value)}," for value in values]
    lines.append("] as const;")
    return "\n".join(lines) + "\n"


def render() -> str:
    """Return the text of `events.generated.ts` for the current schema table."""
    schemas = list(EVENT_SCHEMAS.values())
    parts = [HEADER]
    parts.append("\n/** The `type` of an event message: its event type's prefix. */\n")
    categories = list(CATEGORIES) + sorted({schema.category for schema in schemas} - set(CATEGORIES))
    parts.append("export type EventCategory = " + " | ".join(_quote(c) for c in categories) + ";\n")
    parts += [_render_interface(schema) for schema in schemas]
    parts.append("\n/** Every event type of the schema table and the `data` it carries. */\n")
    parts.append("export interface SchemaEventDataMap {\n")
    parts += [f"  {_quote(schema.name)}: {interface_name(schema)};\n" for schema in schemas]
    parts.append("}\n")
    parts.append(
        _const_list(
            "EVENT_TYPES",
            "Every event type a client may subscribe to (each still needs its permission).",
            [schema.name for schema in schemas],
        )
    )
    parts.append(
        _const_list(
            "SYMBOL_FILTERED_EVENT_TYPES",
            "The event types a subscription can narrow to some symbols (`subscribe(types, {symbols})`).",
            [schema.name for schema in schemas if schema.symbol_field],
        )
    )
    parts.append(
        _const_list(
            "PERSONAL_EVENT_TYPES",
            "The event types whose events may be meant for some users only (a gap in `seq` is no loss).",
            [schema.name for schema in schemas if schema.personal],
        )
    )
    return "".join(parts)


class Command(GeneratedFileCommand):
    help = "Write the TypeScript event types (static/ts/events.generated.ts) from the schema table."
    target = TARGET
    command_name = "generate_ts_events"

    def render(self) -> str:
        return render()
