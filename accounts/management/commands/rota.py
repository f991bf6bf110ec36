"""`manage.py rota add|list|now|coverage` — the duty rota for operators.

    rota add --clinician H --start ISO --end ISO --tier primary|backup|manager
    rota list [--days 7]      rota now      rota coverage [--days 7]
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Shift, Tier, User
from accounts.rota import coverage_gaps, on_duty, shift_add
from config.exceptions import ServiceError


def _when(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"not an ISO 8601 date-time: {value!r}")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)  # the service's TIME_ZONE, as operators expect
    return parsed


class Command(BaseCommand):
    help = "Manage the duty rota of clinicians."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a shift")
        add.add_argument("--clinician", required=True, help="the clinician's handle")
        add.add_argument("--start", required=True)
        add.add_argument("--end", required=True)
        add.add_argument("--tier", required=True, choices=Tier.values)
        lst = sub.add_parser("list", help="Shifts in the next days")
        lst.add_argument("--days", type=int, default=7)
        sub.add_parser("now", help="Who is on duty now")
        cov = sub.add_parser("coverage", help="Gaps without a primary in the next days")
        cov.add_argument("--days", type=int, default=7)

    def handle(self, *args, **opts):
        action = opts["action"]
        if action == "add":
            clinician = User.objects.filter(handle__iexact=opts["clinician"]).first()
            if clinician is None:
                raise CommandError(f"no user with handle {opts['clinician']!r}")
            try:
                shift = shift_add(clinician=clinician, start=_when(opts["start"]), end=_when(opts["end"]), tier=opts["tier"])
            except ServiceError as exc:
                raise CommandError(exc.detail) from exc
            self.stdout.write(f"added shift {shift.id}: {clinician.handle} {shift.tier} {shift.start.isoformat()} → {shift.end.isoformat()}")
        elif action == "list":
            now = timezone.now()
            for s in Shift.objects.select_related("clinician").filter(end__gt=now, start__lt=now + dt.timedelta(days=opts["days"])):
                self.stdout.write(f"{s.id}\t{s.clinician.handle}\t{s.tier}\t{s.start.isoformat()}\t{s.end.isoformat()}")
        elif action == "now":
            pairs = on_duty()
            if not pairs:
                self.stdout.write("nobody is on duty")
            for user, tier in pairs:
                self.stdout.write(f"{tier}\t{user.handle}\t{user.display_name}")
        else:
            gaps = coverage_gaps(days=opts["days"])
            if not gaps:
                self.stdout.write(f"a primary is on duty throughout the next {opts['days']} days")
            for gap in gaps:
                self.stdout.write(f"GAP {gap.start.isoformat()} → {gap.end.isoformat()} ({gap.hours:.1f} h without a primary)")
