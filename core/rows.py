"""Single-row inserts and updates with statements built once, for the writes of the order path.

`Model.save()` compiles its SQL anew on every call. An order writes the same five or six rows
every time (the order, its audit entry, the fill, the position, the portfolio, the order again),
and compiling those statements was the largest single share of the database thread's CPU per
order (docs/benchmarks.md, "place_order"). `row_insert` and `row_update` write exactly what
`save(force_insert=True)` and `save(update_fields=...)` write, with each value prepared by the
same field methods (`pre_save`, which sets `auto_now` fields on the instance, then
`get_db_prep_save`), and keep the SQL per model, field list and database.

What they leave out, so callers must not need it: the model signals (`pre_save`, `post_save`;
the domain services announce their writes with signals of their own), models with a parent
model, fields the database computes (`db_default`, generated fields), and inserts with a primary
key already set. A model that has any of these is refused with `ImproperlyConfigured` when its
statement is first built.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router
from django.db.models import Field, Model
from django.db.models.fields import NOT_PROVIDED

__all__ = ["row_insert", "row_update"]


def _checked(model: type[Model]) -> None:
    opts = model._meta
    if opts.parents:
        raise ImproperlyConfigured(f"{opts.label} has a parent model; write it with save().")
    for field in opts.concrete_fields:
        if getattr(field, "generated", False) or field.db_default is not NOT_PROVIDED:
            raise ImproperlyConfigured(f"{opts.label}.{field.name} is computed by the database; write it with save().")


# Statements by model and database alias (and field names): built once, as the models do not change.
_INSERTS: dict[tuple[type[Model], str], tuple[str, tuple[Field, ...], bool]] = {}
_UPDATES: dict[tuple[type[Model], str, tuple[str, ...]], tuple[str, tuple[Field, ...]]] = {}


def _insert_statement(model: type[Model], alias: str) -> tuple[str, tuple[Field, ...], bool]:
    """The INSERT of every concrete field but the automatic key; whether it returns the key."""
    statement = _INSERTS.get((model, alias))
    if statement is None:
        statement = _INSERTS[model, alias] = _build_insert(model, alias)
    return statement


def _build_insert(model: type[Model], alias: str) -> tuple[str, tuple[Field, ...], bool]:
    _checked(model)
    connection = connections[alias]
    opts = model._meta
    # The key is left to the database when it assigns it (an auto field), as save() does.
    fields = tuple(field for field in opts.concrete_fields if not (field.primary_key and field.db_returning))
    quote = connection.ops.quote_name
    returning = connection.features.can_return_columns_from_insert
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if returning:
        sql += f" RETURNING {quote(opts.db_table)}.{quote(opts.pk.column)}"
    return sql, fields, returning


def _update_statement(model: type[Model], alias: str, names: tuple[str, ...]) -> tuple[str, tuple[Field, ...]]:
    """The UPDATE of the fields `names` of one row, found by its primary key."""
    statement = _UPDATES.get((model, alias, names))
    if statement is None:
        statement = _UPDATES[model, alias, names] = _build_update(model, alias, names)
    return statement


def _build_update(model: type[Model], alias: str, names: tuple[str, ...]) -> tuple[str, tuple[Field, ...]]:
    _checked(model)
    connection = connections[alias]
    opts = model._meta
    fields = tuple(opts.get_field(name) for name in names)
    for field in fields:
        if not field.concrete or field.primary_key or field.many_to_many:
            raise ImproperlyConfigured(f"{opts.label}.{field.name} is not a column row_update() can set.")
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {quote(opts.pk.column)} = %s"
    return sql, fields


def row_insert(instance: Model) -> None:
    """Insert `instance` as `instance.save(force_insert=True)` does, without model signals.

    Sets the instance's primary key and the fields `pre_save` fills in (`auto_now_add`), and marks
    it saved. Raises `ValueError` for an instance whose primary key is already set.
    """
    model = type(instance)
    if instance.pk is not None:
        raise ValueError(f"{model._meta.label} {instance.pk} has its primary key already; row_insert() adds new rows.")
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    sql, fields, returning = _insert_statement(model, alias)
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        if returning:
            key = cursor.fetchone()[0]
        else:
            key = connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)
    setattr(instance, model._meta.pk.attname, key)
    instance._state.adding = False
    instance._state.db = alias


def row_update(instance: Model, fields: Sequence[str]) -> None:
    """Write the named fields of a saved `instance`, as `instance.save(update_fields=fields)` does.

    `auto_now` fields named in `fields` are set to now on the instance first. Raises
    `DatabaseError`, as `save()` does, when no row has the instance's primary key.
    """
    model = type(instance)
    alias = instance._state.db or router.db_for_write(model, instance=instance)
    connection = connections[alias]
    sql, columns = _update_statement(model, alias, tuple(fields))
    values = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in columns]
    values.append(model._meta.pk.get_db_prep_value(instance.pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")
