import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, Shift, Tier
from triage.services import assessment_record

CRISIS = "I have taken 20 paracetamol"
_ids = iter(range(10_000, 10**9))


@pytest.fixture
def rota(make_user):
    """Primary, backup and manager on duty now, for a day."""
    now = timezone.now()
    people = {}
    for tier in Tier.values:
        user = make_user(Role.CLINICIAN, handle=f"dr_{tier}")
        Shift.objects.create(clinician=user, tier=tier, start=now - dt.timedelta(hours=1), end=now + dt.timedelta(hours=23))
        people[tier] = user
    return people


@pytest.fixture
def crisis(make_user):
    """Record a crisis message (as chat does, inside its transaction); returns the escalation."""

    def make(text: str = CRISIS, *, author=None, source_type: str = "chat_message"):
        author = author or make_user()
        with transaction.atomic():
            assessment = assessment_record(
                source_type=source_type, source_id=next(_ids), author_id=author.id, text=text, conversation_id=None
            )
        return assessment.escalations.first()

    return make
