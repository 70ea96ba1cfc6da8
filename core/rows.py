"""Rows of the order path read and written by statements built once.

`Model.save()` compiles its SQL anew on every call. An order writes the same five or six rows
every time (the order, its audit entry, the fill, the position, the portfolio, the order again),
and compiling those statements was the largest single share of the database thread's CPU per
order (docs/benchmarks.md, "place_order"). `row_insert` and `row_update` write exactly what
`save(force_insert=True)` and `save(update_fields=...)` write, with each value prepared by the
same field methods (`pre_save`, which sets `auto_now` fields on the instance, then
`get_db_prep_save`), and keep the SQL per model, field list and database.

`Rows` reads whole rows of one model, or of several joined in one statement, by SQL the caller
writes after the column list (FROM, joins, WHERE), and builds the instances as a queryset would:
every concrete field loaded, each value converted by the database's and the field's converters.

`batched_writes()` sends the inserts and updates made under it in one statement on PostgreSQL
(data-modifying CTEs): an order's audit entry, position, portfolio, fill and order update cost one
round trip instead of five. Each round trip is also a wait for the interpreter lock on a busy
process, so fewer of them shorten the time the portfolio's lock is held. Writes are held until
the block ends or any other statement runs on the connection, whichever is first, so every read
sees them; a write that depends on a held insert's key sends the held writes first.

What the writes leave out, so callers must not need it: the model signals (`pre_save`, `post_save`;
the domain services announce their writes with signals of their own), models with a parent
model, fields the database computes (`db_default`, generated fields), and inserts with a primary
key already set. A model that has any of these is refused with `ImproperlyConfigured` when its
statement is first built.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Any
from weakref import WeakKeyDictionary

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router, transaction
from django.db.transaction import TransactionManagementError
from django.db.models import Field, Model
from django.db.models.fields import NOT_PROVIDED

__all__ = ["Rows", "Values", "batched_writes", "read_together", "row_delete", "row_insert", "row_update"]


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
    it saved; under `batched_writes()` the key and the saved state come when the write is sent.
    Raises `ValueError` for an instance whose primary key is already set.
    """
    model = type(instance)
    if instance.pk is not None:
        raise ValueError(f"{model._meta.label} {instance.pk} has its primary key already; row_insert() adds new rows.")
    alias = router.db_for_write(model, instance=instance)
    connection = connections[alias]
    sql, fields, returning = _insert_statement(model, alias)
    batch = _BATCHES.get(connection)
    if batch is not None:
        batch.make_room(model._meta.db_table, instance)
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    if batch is not None and returning:
        batch.hold(model._meta.db_table, sql, values, _Held.INSERT, instance, alias)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        if returning:
            key = cursor.fetchone()[0]
        else:
            key = connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)
    _inserted(instance, key, alias)


def _inserted(instance: Model, key: Any, alias: str) -> None:
    setattr(instance, instance._meta.pk.attname, key)
    instance._state.adding = False
    instance._state.db = alias


def row_update(instance: Model, fields: Sequence[str]) -> None:
    """Write the named fields of a saved `instance`, as `instance.save(update_fields=fields)` does.

    `auto_now` fields named in `fields` are set to now on the instance first. Raises
    `DatabaseError`, as `save()` does, when no row has the instance's primary key (under
    `batched_writes()`, when the write is sent).
    """
    model = type(instance)
    alias = instance._state.db or router.db_for_write(model, instance=instance)
    connection = connections[alias]
    sql, columns = _update_statement(model, alias, tuple(fields))
    batch = _BATCHES.get(connection)
    if batch is not None:
        batch.make_room(model._meta.db_table, instance)
    values = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in columns]
    values.append(model._meta.pk.get_db_prep_value(instance.pk, connection))
    _change_one_row(connection, batch, sql, values, _Held.UPDATE, instance, alias)


def row_delete(instance: Model) -> None:
    """Delete the row of a saved `instance` and clear its primary key, as `instance.delete()` does.

    Only for a model that no other model refers to and that no model signal is connected to: no
    cascade is looked for. Raises `DatabaseError` when no row has the instance's primary key
    (under `batched_writes()`, when the write is sent).
    """
    model = type(instance)
    alias = instance._state.db or router.db_for_write(model, instance=instance)
    connection = connections[alias]
    opts = model._meta
    quote = connection.ops.quote_name
    sql = f"DELETE FROM {quote(opts.db_table)} WHERE {quote(opts.pk.column)} = %s"
    batch = _BATCHES.get(connection)
    if batch is not None:
        batch.make_room(opts.db_table, instance)
    values = [opts.pk.get_db_prep_value(instance.pk, connection)]
    if _change_one_row(connection, batch, sql, values, _Held.DELETE, instance, alias):
        setattr(instance, opts.pk.attname, None)


def _change_one_row(
    connection: Any, batch: _Batch | None, sql: str, values: list[Any], kind: _Held, instance: Model, alias: str
) -> bool:
    """Run the update or delete of one row now (True), or hold it in `batch` (False, checked when
    sent); raise `DatabaseError` when it finds no row."""
    if batch is not None:
        batch.hold(instance._meta.db_table, f"{sql} RETURNING 1", values, kind, instance, alias)
        return False
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        if cursor.rowcount != 1:
            raise DatabaseError(kind.value)
    return True


class _Held(Enum):
    """What a held write does; its value is what is raised when an update or a delete finds no row."""

    INSERT = ""
    UPDATE = "Save with update_fields did not affect any rows."
    DELETE = "Delete did not affect any rows."


class _Batch:
    """The writes held on one connection under `batched_writes()`, sent as one statement.

    At most one write per table is held: the parts of one statement see the same snapshot and run
    in no set order, so two writes to one table (an update after an insert, an insert after a
    delete with the same unique key) could differ from the same writes sent one after the other.
    A second write to a table sends the held ones first, and so does an insert whose related
    object is itself a held insert, as its key is not known yet.
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.held: list[tuple[str, list[Any], _Held, Model, str]] = []  # SQL, values, kind, instance, alias
        self.tables: set[str] = set()
        self.sending = False

    def make_room(self, table: str, instance: Model) -> None:
        """Send the held writes first if the write of `instance` into `table` depends on them."""
        if self.held and (table in self.tables or any(related.pk is None for related in _related_objects(instance))):
            self.send()
        for field, related in _related_fields(instance):
            # As save() does: a relation set while its object had no key yet takes the key it has now.
            if related.pk is not None and getattr(instance, field.attname) is None:
                setattr(instance, field.attname, related.pk)

    def hold(self, table: str, sql: str, values: list[Any], kind: _Held, instance: Model, alias: str) -> None:
        self.held.append((sql, values, kind, instance, alias))
        self.tables.add(table)

    def send(self) -> None:
        """Send the held writes as one statement; set the keys of the inserted rows."""
        held, self.held, self.tables = self.held, [], set()
        if not held:
            return
        quote = self.connection.ops.quote_name
        parts, outputs, values = [], [], []
        for number, (sql, part_values, kind, instance, _) in enumerate(held):
            parts.append(f"w{number} AS ({sql})")
            key = quote(instance._meta.pk.column)
            outputs.append(
                f"(SELECT {key} FROM w{number})" if kind is _Held.INSERT else f"(SELECT count(*) FROM w{number})"
            )
            values.extend(part_values)
        self.sending = True
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(f"WITH {', '.join(parts)} SELECT {', '.join(outputs)}", values)
                answers = cursor.fetchone()
        finally:
            self.sending = False
        for (_, _, kind, _, _), answer in zip(held, answers, strict=True):
            if kind is not _Held.INSERT and answer != 1:
                raise DatabaseError(kind.value)
        for (_, _, kind, instance, alias), answer in zip(held, answers, strict=True):
            if kind is _Held.INSERT:
                _inserted(instance, answer, alias)
            elif kind is _Held.DELETE:
                setattr(instance, instance._meta.pk.attname, None)

    def send_held_first(self, execute, sql, params, many, context):
        """An execute wrapper: any other statement on the connection sees the held writes."""
        if self.held and not self.sending:
            self.send()
        return execute(sql, params, many, context)


def _related_fields(instance: Model) -> Iterator[tuple[Field, Model]]:
    """The many-to-one fields of `instance` whose related object is set on it, with that object."""
    fields = _RELATIONS.get(type(instance))
    for field in _relations(type(instance)) if fields is None else fields:
        if field.is_cached(instance):
            related = field.get_cached_value(instance)
            if related is not None:
                yield field, related


def _related_objects(instance: Model) -> Iterator[Model]:
    return (related for _, related in _related_fields(instance))


_RELATIONS: dict[type[Model], tuple[Field, ...]] = {}


def _relations(model: type[Model]) -> tuple[Field, ...]:
    found = _RELATIONS[model] = tuple(
        field for field in model._meta.concrete_fields if field.is_relation and field.many_to_one
    )
    return found


# The batch of each connection under `batched_writes()`, held weakly: it never outlives the block.
_BATCHES: WeakKeyDictionary[Any, _Batch] = WeakKeyDictionary()


@contextmanager
def batched_writes(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Hold `row_insert`, `row_update` and `row_delete` on `using` and send them as one statement.

    The held writes go out when the block ends, or before any other statement on the connection
    (a read, a queryset, a savepoint), so everything read meanwhile sees them. A write that fails
    raises then, inside the block. An exception leaving the block drops what is still held and
    marks the transaction for rollback, so no part of the block's writes can commit.

    Only on PostgreSQL; elsewhere each write goes out when it is made. Inside another
    `batched_writes()` on the same connection, the block joins the outer one. Must run inside a
    transaction (`TransactionManagementError` otherwise): the writes are sent before it commits.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or connection in _BATCHES:
        yield
        return
    if not connection.in_atomic_block:
        raise TransactionManagementError(
            "batched_writes() sends its writes before the transaction commits: use it in one."
        )
    batch = _BATCHES[connection] = _Batch(connection)
    try:
        with connection.execute_wrapper(batch.send_held_first):
            yield
            batch.send()
    except BaseException:
        if batch.held:
            batch.held.clear()
            transaction.set_rollback(True, using=using)
        raise
    finally:
        del _BATCHES[connection]


_Converters = list[tuple[int, list, Any]]  # column position, its converters, the column expression


class _Select:
    """A SELECT of columns of models under table aliases, the caller's SQL after them, built once per database."""

    def __init__(self, columns: Sequence[tuple[type[Model], str, Sequence[Field]]], tail: str) -> None:
        self.columns = columns
        self.tail = tail
        self._built: dict[str, tuple[str, _Converters]] = {}

    def _build(self, alias: str) -> tuple[str, _Converters]:
        connection = connections[alias]
        quote = connection.ops.quote_name
        names: list[str] = []
        converters: _Converters = []
        for _, table, fields in self.columns:
            for field in fields:
                col = field.get_col(table)
                found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if found:
                    converters.append((len(names), found, col))
                names.append(f"{quote(table)}.{quote(field.column)}")
        return f"SELECT {', '.join(names)} {self.tail}", converters

    def _statement(self, using: str) -> tuple[str, _Converters]:
        built = self._built.get(using)
        if built is None:
            built = self._built[using] = self._build(using)
        return built

    def _rows(self, params: Sequence[Any], using: str) -> list[list[Any]]:
        """Run the statement; return its rows with every value converted as a queryset converts it."""
        with connections[using].cursor() as cursor:
            cursor.execute(self._statement(using)[0], params)
            return self._converted(cursor.fetchall(), using)

    def _converted(self, fetched: Sequence[Sequence[Any]], using: str) -> list[list[Any]]:
        converters = self._statement(using)[1]
        connection = connections[using]
        rows = []
        for fetched_row in fetched:
            row = list(fetched_row)
            for position, functions, col in converters:
                value = row[position]
                for convert in functions:
                    value = convert(value, col, connection)
                row[position] = value
            rows.append(row)
        return rows

    def _shaped(self, rows: list[list[Any]], using: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def read(self, params: Sequence[Any], *, using: str = "default") -> list[tuple[Any, ...]]:
        return self._shaped(self._rows(params, using), using)


class Rows(_Select):
    """Whole rows of one or more models, joined by the caller's SQL.

    `Rows((Position, "pos"), (Instrument, "ins"), tail="FROM ... WHERE ... = %s")` selects every
    concrete column of each model under its table alias, in that order; `read` runs it and
    returns, per row, a tuple of one instance per model (None for a model whose key column is
    NULL, as of a LEFT JOIN that found nothing).
    """

    def __init__(self, *models: tuple[type[Model], str], tail: str) -> None:
        for model, _ in models:
            _checked(model)
        super().__init__([(model, table, model._meta.concrete_fields) for model, table in models], tail)
        self.spans: list[tuple[type[Model], int, int, int]] = []  # model, first column, end, its key's column
        first = 0
        for model, _ in models:
            fields = list(model._meta.concrete_fields)
            self.spans.append((model, first, first + len(fields), first + fields.index(model._meta.pk)))
            first += len(fields)

    def _shaped(self, rows: list[list[Any]], using: str) -> list[tuple[Model | None, ...]]:
        return [
            tuple(
                None if row[key] is None else model.from_db(using, None, row[first:end])
                for model, first, end, key in self.spans
            )
            for row in rows
        ]


class Values(_Select):
    """Some fields of one model's rows, by the caller's SQL: `Values(Order, "o", ["quantity"], tail=...)`.

    `read` returns a tuple of the fields' values per row, converted as `values_list` converts them.
    """

    def __init__(self, model: type[Model], table: str, fields: Sequence[str], *, tail: str) -> None:
        super().__init__([(model, table, [model._meta.get_field(name) for name in fields])], tail)

    def _shaped(self, rows: list[list[Any]], using: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in rows]


def read_together(reads: Sequence[tuple[_Select, Sequence[Any]]], *, using: str = DEFAULT_DB_ALIAS) -> list[list]:
    """Run `Rows` and `Values` reads, each with its parameters, in one round trip; return each one's result.

    On PostgreSQL the statements go out together in psycopg's pipeline mode, with the BEGIN of a
    transaction that has not sent anything yet, and the server runs them in the order given: a
    read after a `FOR UPDATE` sees the rows as of once the lock is held. Writes held by
    `batched_writes()` are sent first. Elsewhere, and for one read, they run one after another.
    A read that fails raises the error Django raises for it, and the reads after it do not run.
    The pipeline costs about what one round trip saves, so one read runs on its own.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or len(reads) < 2 or not _pipeline_supported():
        return [select.read(params, using=using) for select, params in reads]
    batch = _BATCHES.get(connection)
    if batch is not None:
        batch.send()
    connection.ensure_connection()
    cursors = [connection.cursor() for _ in reads]
    try:
        with connection.wrap_database_errors:
            with connection.connection.pipeline():
                for cursor, (select, params) in zip(cursors, reads):
                    cursor.execute(select._statement(using)[0], params)
            fetched = [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()
    return [select._shaped(select._converted(rows, using), using) for (select, _), rows in zip(reads, fetched)]


@functools.cache
def _pipeline_supported() -> bool:
    from psycopg import Pipeline  # the PostgreSQL backend's driver; its libpq must have pipeline mode

    return Pipeline.is_supported()
