"""Applying the asynchronous model layer to a stored assessment."""

from __future__ import annotations


def assessment_apply_model(*, assessment_id: int) -> None:
    """Placeholder until the model layer is wired (escalation issue)."""
