"""Fixtures shared by the chat tests."""

from __future__ import annotations

import pytest

from chat import services


@pytest.fixture
def thread_sends(monkeypatch):
    """Calls of message_send in a worker thread (the hand-over), counted."""
    calls: list[dict] = []
    original = services.message_send

    def counted(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(services, "message_send", counted)
    return calls
