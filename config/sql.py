"""Hand-written single-row statements for the per-message hot path.

Compiling ORM statements (and save()'s signals and checks) cost more CPU than the
statements themselves on the chat path (docs/benchmarks.md); these build the SQL from
the model's own field definitions and adapt values with the fields' own methods, so
they stay correct when a model changes. Table and column names come from models, never
from input; values are always parameters.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from django.utils import timezone


def loaded_instance(model: type[models.Model], **values: Any) -> models.Model:
    """An instance as if loaded from the database with only these fields (by attname; the
    rest deferred, so save() writes only these). For rows read by hand-written SQL."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, names, [values[n] for n in names])


Statement = tuple[str, list[Any]]


def update_statement(model: type[models.Model], pk: int, **columns: Any) -> Statement:
    """UPDATE one row by primary key; `columns` are column names with database values."""
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(name)} = %s" for name in columns)
    return (f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE id = %s",  # noqa: S608
            [*columns.values(), pk])


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


Link = tuple[type[models.Model], int, str]


def sql_insert(model: type[models.Model], *, before: Statement | None = None, link: Link | None = None,
               **values: Any) -> models.Model:
    """INSERT one row, as Model.objects.create(**values) would store it (field defaults,
    auto_now / auto_now_add), without signals; returns the instance with its new id.
    Only for models with no save() override or signal receivers.

    `before`: a statement (no result) to run first, in the same round trip to the server
    where the driver allows it: on the chat path each round trip to PostgreSQL is ~0.5 ms
    of the message's latency, and its seq UPDATE always precedes its INSERT. Run as one
    simple query, both statements are in the caller's transaction; a failure of either
    raises as it would alone.

    `link` = (other model, its pk, column): also set that row's column to the new id (a
    back-reference, such as a message's assessment_id). On PostgreSQL the INSERT is a
    data-modifying WITH of that UPDATE, one statement; elsewhere an UPDATE follows it."""
    now = timezone.now()
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    row: dict[str, Any] = {}
    for f in fields:
        if f.attname in values:
            row[f.attname] = values[f.attname]
        elif f.name in values:  # a related object given by field name
            related = values[f.name]
            row[f.attname] = related.pk if related is not None else None
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            row[f.attname] = now
        else:
            row[f.attname] = f.get_default()
    quote = connection.ops.quote_name
    pk = model._meta.pk
    sql = "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(  # noqa: S608
        quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields), ", ".join(["%s"] * len(fields)),
        quote(pk.column),
    )
    params = [f.get_db_prep_save(row[f.attname], connection) for f in fields]
    linked_in_sql = link is not None and connection.vendor == "postgresql"
    if linked_in_sql:
        other, other_pk, column = link
        table = quote(other._meta.db_table)
        sql = (f"WITH new AS ({sql}) UPDATE {table} SET {quote(column)} = new.{quote(pk.column)} "  # noqa: S608
               f"FROM new WHERE {table}.{quote(other._meta.pk.column)} = %s RETURNING new.{quote(pk.column)}")
        params.append(other_pk)
    with connection.cursor() as cursor:
        if before is not None and _several_per_round_trip(cursor):
            cursor.execute(f"{before[0]}; {sql}", [*before[1], *params])
            cursor.nextset()  # past the UPDATE's (empty) result to the INSERT's RETURNING
        else:
            if before is not None:
                cursor.execute(*before)
            cursor.execute(sql, params)
        fetched = cursor.fetchone()
    new_id = fetched[0] if fetched is not None else None
    # No row to link to: PostgreSQL inserted nothing (no RETURNING row); elsewhere the
    # UPDATE found nothing and the caller's transaction (always open on these paths) is
    # rolled back by the exception.
    if link is not None and (new_id is None or (not linked_in_sql and not sql_update(link[0], link[1], **{link[2]: new_id}))):
        raise link[0].DoesNotExist(f"{link[0].__name__} {link[1]} to link the new {model.__name__} to")
    return model.from_db(connection.alias, [pk.attname, *row], [new_id, *row.values()])
