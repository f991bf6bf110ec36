"""Duty rota: shifts, who is on duty, coverage gaps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from config.exceptions import ValidationFailed

from .models import Role, Shift, Tier, User

DUTY_ROLES = (Role.CLINICIAN, Role.SUPERVISOR)


def shift_add(*, clinician: User, start: dt.datetime, end: dt.datetime, tier: str) -> Shift:
    if clinician.role not in DUTY_ROLES:
        raise ValidationFailed(f"{clinician.handle} is a {clinician.role}; only clinicians and supervisors go on the rota.")
    if tier not in Tier.values:
        raise ValidationFailed(f"tier must be one of {', '.join(Tier.values)}")
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise ValidationFailed("start and end need a time zone offset (ISO 8601, e.g. 2026-11-23T20:00:00+00:00)")
    if end <= start:
        raise ValidationFailed("end must be after start")
    if Shift.objects.filter(clinician=clinician, start__lt=end, end__gt=start).exists():
        raise ValidationFailed(f"{clinician.handle} already has a shift overlapping that time")
    return Shift.objects.create(clinician=clinician, start=start, end=end, tier=tier)


def shift_delete(*, shift: Shift) -> None:
    shift.delete()


def on_duty(*, at: dt.datetime | None = None, tiers: tuple[str, ...] | None = None) -> list[tuple[User, str]]:
    """(clinician, tier) pairs on duty at `at`, active users only, primary first."""
    at = at or timezone.now()
    shifts = Shift.objects.select_related("clinician").filter(start__lte=at, end__gt=at, clinician__is_active=True)
    if tiers:
        shifts = shifts.filter(tier__in=tiers)
    order = {t: i for i, t in enumerate(Tier.values)}
    pairs = sorted(((s.clinician, s.tier) for s in shifts), key=lambda p: (order[p[1]], p[0].id))
    seen: set[int] = set()
    result = []
    for user, tier in pairs:
        if user.id not in seen:
            seen.add(user.id)
            result.append((user, tier))
    return result


def on_duty_ids(*, tiers: tuple[str, ...], at: dt.datetime | None = None) -> list[int]:
    return [user.id for user, _tier in on_duty(at=at, tiers=tiers)]


@dataclass(frozen=True)
class Gap:
    start: dt.datetime
    end: dt.datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def coverage_gaps(*, start: dt.datetime | None = None, days: int = 7) -> list[Gap]:
    """Every interval in [start, start+days) with no primary clinician on duty."""
    start = start or timezone.now()
    end = start + dt.timedelta(days=days)
    shifts = Shift.objects.filter(tier=Tier.PRIMARY, start__lt=end, end__gt=start, clinician__is_active=True).order_by("start")
    gaps: list[Gap] = []
    cursor = start
    for shift in shifts:
        if shift.start > cursor:
            gaps.append(Gap(cursor, min(shift.start, end)))
        cursor = max(cursor, shift.end)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append(Gap(cursor, end))
    return gaps
