"""chat_message's indexes (migration 0003): each foreign key column still leads an index,
so lookups and cascades by conversation or sender stay index scans, and no index is a
single-column copy of another's leading column (each one is written for every message)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def _indexes() -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "chat_message")
    return {name: info["columns"] for name, info in found.items() if info["index"] or info["unique"]}


def test_every_foreign_key_leads_an_index():
    leading = {columns[0] for columns in _indexes().values()}
    assert {"conversation_id", "sender_id", "assessment_id"} <= leading


def test_no_single_column_index_repeats_a_composite_ones_lead():
    indexes = list(_indexes().values())
    composite_leads = {columns[0] for columns in indexes if len(columns) > 1}
    singles = [columns[0] for columns in indexes if len(columns) == 1 and columns[0] != "id"]
    assert not set(singles) & composite_leads, singles
