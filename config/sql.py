"""Hand-written single-row statements for the per-message hot path.

Compiling ORM statements (and save()'s signals and checks) cost more CPU than the
statements themselves on the chat path (docs/benchmarks.md); these build the SQL from
the model's own field definitions and adapt values with the fields' own methods, so
they stay correct when a model changes. Table and column names come from models, never
from input; values are always parameters.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone


def loaded_instance(model: type[models.Model], **values: Any) -> models.Model:
    """An instance as if loaded from the database with only these fields (by attname; the
    rest deferred, so save() writes only these). For rows read by hand-written SQL."""
    return _instance(model, values)


def _instance(model: type[models.Model], values: dict[str, Any]) -> models.Model:
    """What `model.from_db(DEFAULT_DB_ALIAS, list(values), list(values.values()))` builds,
    for attnames of concrete fields, without its per-instance overhead where that changes
    nothing. from_db lists every field (DEFERRED for those not given) and Model.__init__
    sets each through its descriptor and sends pre_init/post_init: ~8.6 µs for a
    Participant of four fields, against ~1.7 µs for this, and the chat path builds six
    such instances a message (docs/benchmarks.md, twenty-first pass). The result is the
    same: Django keeps a loaded field's value in the instance's __dict__ under its attname
    and treats an attname missing there as deferred; a fresh instance has no cached
    related object for a foreign key's setter to clear. Where a model's instances might
    differ — a signal receiver for it, its own __init__ or from_db, a field whose
    descriptor is not Django's plain one, or a name that is not a concrete field's
    attname — this falls back to from_db."""
    plain = _plain_attnames(model)
    if plain is None or not values.keys() <= plain or pre_init.has_listeners(model) or post_init.has_listeners(model):
        names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
        return model.from_db(DEFAULT_DB_ALIAS, names, [values[n] for n in names])
    new = model.__new__(model)
    state = new._state = ModelState()
    state.adding = False
    state.db = DEFAULT_DB_ALIAS
    new.__dict__.update(values)
    return new


@functools.cache
def _plain_attnames(model: type[models.Model]) -> frozenset[str] | None:
    """The concrete fields' attnames, if every one is read through Django's own deferred-
    attribute descriptor (so a value in __dict__ is what reading it returns) and the model
    keeps Model's __init__ and from_db; else None."""
    from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
    from django.db.models.query_utils import DeferredAttribute

    fields = model._meta.concrete_fields
    if any(type(getattr(model, f.attname, None)) not in (DeferredAttribute, ForeignKeyDeferredAttribute)
           for f in fields):
        return None
    if model.__init__ is not models.Model.__init__ or model.from_db.__func__ is not models.Model.from_db.__func__:
        return None  # the model builds its instances its own way
    return frozenset(f.attname for f in fields)


Statement = tuple[str, list[Any]]


def update_statement(model: type[models.Model], pk: int, **columns: Any) -> Statement:
    """UPDATE one row by primary key; `columns` are column names with database values."""
    return _update_sql(model, tuple(columns)), [*columns.values(), pk]


@functools.cache
def _update_sql(model: type[models.Model], names: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(name)} = %s" for name in names)
    return f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE id = %s"  # noqa: S608


def sql_update(model: type[models.Model], pk: int, **columns: Any) -> int:
    """Returns the number of rows updated (0 or 1)."""
    with connection.cursor() as cursor:
        cursor.execute(*update_statement(model, pk, **columns))
        return cursor.rowcount


def _several_per_round_trip(cursor: Any) -> bool:
    """Whether one execute() may carry several statements: psycopg 3's client-side-binding
    cursor (Django's default for PostgreSQL) sends the merged text as one simple query.
    Server-side binding (the OPTIONS setting) and SQLite take one statement per call."""
    if connection.vendor != "postgresql":
        return False
    import psycopg

    return isinstance(getattr(cursor, "cursor", None), psycopg.ClientCursor)


def execute_opening(cursor: Any, sql: str, params: list[Any]) -> None:
    """Execute the first statement of an outermost `transaction.atomic()` block with the
    block's BEGIN in the same round trip, where the driver allows it (else as
    cursor.execute). The cursor is left at this statement's result.

    psycopg 3 opens a transaction by sending BEGIN alone and waiting for its answer before
    the first statement: on the chat path a round trip in every message's latency (~0.05 ms
    on loopback, what the network charges elsewhere; docs/benchmarks.md, twelfth pass) and
    one more wake-up of the handler thread, which must take the GIL back from the event
    loop. Here the driver is told not to open one (its
    autocommit flag, set on an idle connection only) and the server gets "BEGIN; <sql>" as
    one simple query, so this and every later statement of the block run in that
    transaction, as before. Django still holds the block for a transaction (its own flag is
    untouched): it commits or rolls back at the end, and psycopg sends COMMIT or ROLLBACK
    by the server's transaction status, whatever its own flag says. Django resets the flag
    when the block ends; if BEGIN never reached the server it is reset here, at once."""
    raw = _outermost_block_driver(cursor)
    if not (raw is not None and not raw.autocommit and raw.isolation_level is None and raw.read_only is None
            and raw.pgconn.transaction_status == _idle()):
        cursor.execute(sql, params)
        return
    raw.autocommit = True
    try:
        cursor.execute(f"BEGIN; {sql}", params)
    finally:
        if raw.pgconn.transaction_status == _idle():
            raw.autocommit = False
    cursor.nextset()  # past BEGIN's (empty) result


def execute_closing(cursor: Any, sql: str, params: list[Any]) -> None:
    """Execute the last statement of a block that execute_opening began with COMMIT in the
    same round trip (else as cursor.execute): one round trip less again. The cursor is left
    at this statement's result; a failure of the statement or of the COMMIT (a deferred
    constraint) raises here, and nothing of the block is stored.

    Only for a caller that writes nothing more in the block: once this returns the rows are
    committed, so an exception raised later in the block no longer undoes them (Django's
    rollback finds no transaction), though it still drops the block's on_commit callbacks.
    Should a statement follow all the same, the driver opens a new transaction for it,
    which Django commits at the end of the block: never an autocommitted statement."""
    raw = _outermost_block_driver(cursor)
    if not (raw is not None and raw.autocommit and not connection.get_autocommit()):
        cursor.execute(sql, params)  # not begun by execute_opening
        return
    try:
        cursor.execute(f"{sql}; COMMIT", params)
    finally:
        # Committed, or the COMMIT itself failed (the server ended the transaction): the
        # driver opens a transaction again for anything that follows in the block.
        if raw.pgconn.transaction_status == _idle():
            raw.autocommit = False


def _outermost_block_driver(cursor: Any) -> Any:
    """The psycopg connection under `cursor` where BEGIN or COMMIT may share its round trip:
    a client-side-binding cursor in an outermost atomic block (no savepoint); else None."""
    if not (_several_per_round_trip(cursor) and connection.in_atomic_block and not connection.savepoint_ids):
        return None
    return connection.connection


def _idle() -> Any:
    from psycopg.pq import TransactionStatus

    return TransactionStatus.IDLE


Link = tuple[type[models.Model], int, str]


def reserve_id_sql(model: type[models.Model], cursor: Any) -> str | None:
    """A SQL expression that takes the next id of `model`'s table, for a query to return
    (uncorrelated, so evaluated once), where ids can be reserved and several statements
    travel in one round trip (see insert_statement); else None. A reserved id that goes
    unused is a gap in the ids, nothing more."""
    return reserve_id_expression(model) if _several_per_round_trip(cursor) else None


def reserve_id_expression(model: type[models.Model]) -> str:
    """reserve_id_sql's expression (PostgreSQL)."""
    meta = model._meta
    # Names from model metadata only, never from input.
    return f"(SELECT nextval(pg_get_serial_sequence('{meta.db_table}', '{meta.pk.column}')))"


def _insert(model: type[models.Model], values: dict[str, Any]) -> tuple[str, list[Any], dict[str, Any]]:
    """The INSERT (no RETURNING), its parameters and the row by attname, as
    Model.objects.create(**values) would store it (field defaults, auto_now /
    auto_now_add); the primary key only if given."""
    # The wrapper itself, not the `connection` proxy: each attribute read through the proxy
    # is a context-local lookup.
    db = connections[DEFAULT_DB_ALIAS]
    sql, columns = _insert_plan(model, model._meta.pk.attname in values, db.vendor, type(db.ops))
    now = None
    row: dict[str, Any] = {}
    params = []
    for column in columns:
        field, attname = column.field, column.attname
        if attname in values:
            value = values[attname]
        elif column.name in values:  # a related object given by field name
            related = values[column.name]
            value = related.pk if related is not None else None
        elif column.auto_now:
            value = now = now or timezone.now()
        else:
            value = field.get_default()
        row[attname] = value
        kind = type(value)
        if kind not in column.plain or (kind is dt.datetime and value.tzinfo is None):
            value = field.get_db_prep_save(value, db)
        elif column.wrap is not None and value is not None:
            value = column.wrap(value)
        params.append(value)
    return sql, params, row


@dataclass(frozen=True, slots=True)
class _Column:
    field: models.Field
    attname: str
    name: str
    auto_now: bool  # auto_now or auto_now_add
    plain: frozenset[type]  # value types that skip get_db_prep_save (_plain_adapting)
    wrap: Callable[[Any], Any] | None  # what such a value is wrapped in, if anything


@functools.cache
def _insert_plan(model: type[models.Model], with_pk: bool, vendor: str, ops: type) -> tuple[str, tuple[_Column, ...]]:
    """The INSERT's text and how to fill each of its columns, once per model and database
    kind. Cached by these, not by the fields: a Django field's hash is a Python method, and
    hashing the 33 fields of a young person's message and its assessment for every message
    cost as much as adapting their values (twenty-seventh pass)."""
    fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields), ", ".join(["%s"] * len(fields)))
    columns = tuple(
        _Column(f, f.attname, f.name, bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)),
                *_plain_adapting(f, vendor, ops))
        for f in fields)
    return sql, columns


# Django's own field classes (exactly these, not subclasses, which may adapt differently)
# and the value types for which their get_db_prep_save on PostgreSQL only hands the value
# back, or for an integer field wraps it in the driver's type for the column (Int8 for a
# BigIntegerField, as the backend's adapt_integerfield_value does): Python's int, str,
# float, bool, UUID, aware datetime and None, as the chat path's rows hold them. Doing just
# that here skips the calls through the field's methods, 33 fields in a young person's
# message and its assessment: ~2% of the ASGI process under chat load (docs/benchmarks.md,
# twenty-seventh pass).
_AUTO_FIELDS = (models.AutoField, models.BigAutoField, models.SmallAutoField)
_INTEGER_FIELDS = (models.IntegerField, models.BigIntegerField, models.SmallIntegerField, models.PositiveIntegerField,
                   models.PositiveBigIntegerField, models.PositiveSmallIntegerField)
_PLAIN_ON_POSTGRESQL: dict[type[models.Field], frozenset[type]] = {
    **dict.fromkeys(_AUTO_FIELDS + _INTEGER_FIELDS, frozenset({int, type(None)})),
    models.CharField: frozenset({str, type(None)}),
    models.TextField: frozenset({str, type(None)}),
    models.FloatField: frozenset({float, type(None)}),
    models.BooleanField: frozenset({bool, type(None)}),
    models.UUIDField: frozenset({uuid.UUID, type(None)}),
    # An aware one only (checked in _insert): a naive one is made aware, with a warning.
    models.DateTimeField: frozenset({dt.datetime, type(None)}),
}


@functools.cache
def _plain_adapting(field: models.Field, vendor: str, ops: type) -> tuple[frozenset[type], Callable[[Any], Any] | None]:
    """The value types for which `_insert` may skip `field.get_db_prep_save` with a `vendor`
    connection whose operations are of class `ops`, and what to wrap such a value in instead (None:
    nothing). No types where that is not known: every value then goes through
    get_db_prep_save. A foreign key adapts as its target field."""
    if vendor != "postgresql":
        return frozenset(), None  # SQLite, for one, stores datetimes and UUIDs as text
    if type(field) is models.ForeignKey:
        return _plain_adapting(field.target_field, vendor, ops)
    if type(field) is models.JSONField and field.encoder is None:
        return _plain_json(ops)
    types = _PLAIN_ON_POSTGRESQL.get(type(field), frozenset())
    if type(field) in _INTEGER_FIELDS:
        # psycopg 3's backend wraps; with no map (psycopg 2), the value is left as it is.
        return types, getattr(ops, "integerfield_type_map", {}).get(field.get_internal_type())
    return types, None


def _plain_json(ops: type) -> tuple[frozenset[type], Callable[[Any], Any] | None]:
    """A JSONField without an encoder: its get_db_prep_save of a dict or a list is the
    backend's adapt_json_value(value, None), Jsonb(value, dumps=json.dumps), reached through
    get_prep_value, get_db_prep_value and their checks for expressions: ~5.5 µs a value, and
    a young person's message has five in its assessment (twenty-eighth pass). Made here
    directly where the backend's operations are PostgreSQL's own."""
    from django.db.backends.postgresql.operations import DatabaseOperations, get_json_dumps

    if getattr(ops, "adapt_json_value", None) is not DatabaseOperations.adapt_json_value:
        return frozenset(), None
    from django.db.backends.postgresql.psycopg_any import Jsonb

    return frozenset({dict, list, type(None)}), functools.partial(Jsonb, dumps=get_json_dumps(None))


def prep_value(model: type[models.Model], attname: str, value: Any, db: Any) -> Any:
    """`value` as the field `attname` of `model` would pass it to the driver for connection
    wrapper `db` (its get_db_prep_save), without the calls through the field's methods where
    _plain_adapting knows they hand the value back: for the chat path's locking read, whose
    client_msg_id and rate-window time took ~1% of the ASGI process through them
    (twenty-ninth pass)."""
    field, plain, wrap = _attname_adapting(model, attname, db.vendor, type(db.ops))
    kind = type(value)
    if kind not in plain or (kind is dt.datetime and value.tzinfo is None):
        return field.get_db_prep_save(value, db)
    return value if wrap is None or value is None else wrap(value)


@functools.cache
def _attname_adapting(model: type[models.Model], attname: str, vendor: str,
                      ops: type) -> tuple[models.Field, frozenset[type], Callable[[Any], Any] | None]:
    # Cached by the model and the name: hashing the field itself is a Python method.
    field = next(f for f in model._meta.concrete_fields if f.attname == attname)
    return field, *_plain_adapting(field, vendor, ops)


def insert_statement(model: type[models.Model], **values: Any) -> tuple[Statement, models.Model]:
    """sql_insert's INSERT as a statement to hand to a later sql_insert as `before` (so both
    travel in one round trip), and the instance it will store. Its result is never read,
    so the primary key must be given: one reserved with reserve_id_sql."""
    if model._meta.pk.attname not in values:
        raise ValueError(f"insert_statement needs the {model.__name__}'s id (reserve_id_sql)")
    sql, params, row = _insert(model, values)
    return (sql, params), _instance(model, row)


def sql_insert(model: type[models.Model], *, before: list[Statement] | None = None, link: Link | None = None,
               last: bool = False, **values: Any) -> models.Model:
    """INSERT one row, as Model.objects.create(**values) would store it (field defaults,
    auto_now / auto_now_add), without signals; returns the instance with its new id.
    Only for models with no save() override or signal receivers.

    `before`: statements (no result read) to run first, in the same round trip to the
    server where the driver allows it: on the chat path each round trip to PostgreSQL is
    ~0.5 ms of the message's latency, and its seq UPDATE always precedes its INSERT. Run
    as one simple query, all are in the caller's transaction; a failure of any raises as
    it would alone, and the caller's transaction rolls back.

    `link` = (other model, its pk, column): also set that row's column to the new id (a
    back-reference, such as a message's assessment_id). On PostgreSQL the INSERT is a
    data-modifying WITH of that UPDATE, one statement; elsewhere an UPDATE follows it.

    `last`: the caller's transaction writes nothing after this, so its COMMIT may travel
    in the same round trip (execute_closing; not with `link`)."""
    befores = before or []  # statements, each (sql, params)
    sql, params, row = _insert(model, values)
    quote = connection.ops.quote_name
    pk = model._meta.pk
    sql = f"{sql} RETURNING {quote(pk.column)}"
    linked_in_sql = link is not None and connection.vendor == "postgresql"
    if linked_in_sql:
        other, other_pk, column = link
        table = quote(other._meta.db_table)
        sql = (f"WITH new AS ({sql}) UPDATE {table} SET {quote(column)} = new.{quote(pk.column)} "  # noqa: S608
               f"FROM new WHERE {table}.{quote(other._meta.pk.column)} = %s RETURNING new.{quote(pk.column)}")
        params.append(other_pk)
    with connection.cursor() as cursor:
        # With a link, a missing row to link to is found only after the statement (below) and
        # must still roll the INSERT back: no COMMIT in the same round trip then.
        run_last = functools.partial(execute_closing, cursor) if last and link is None else cursor.execute
        if befores and _several_per_round_trip(cursor):
            run_last("; ".join([*(b[0] for b in befores), sql]), [p for b in befores for p in b[1]] + params)
            for _ in befores:
                cursor.nextset()  # past each earlier statement's (unread) result to this RETURNING
        else:
            for b in befores:
                cursor.execute(*b)
            run_last(sql, params)
        fetched = cursor.fetchone()
    new_id = fetched[0] if fetched is not None else None
    # No row to link to: PostgreSQL inserted nothing (no RETURNING row); elsewhere the
    # UPDATE found nothing and the caller's transaction (always open on these paths) is
    # rolled back by the exception.
    if link is not None and (new_id is None or (not linked_in_sql and not sql_update(link[0], link[1], **{link[2]: new_id}))):
        raise link[0].DoesNotExist(f"{link[0].__name__} {link[1]} to link the new {model.__name__} to")
    row.pop(pk.attname, None)
    return _instance(model, {pk.attname: new_id, **row})
