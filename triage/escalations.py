"""Escalation lifecycle (delivery, acknowledgement, deadlines). Filled in by the escalation issue."""

from __future__ import annotations

from .models import Escalation


def escalation_created_hooks(escalation: Escalation) -> None:
    """Runs inside the creating transaction; notifications go out after commit."""
