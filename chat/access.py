"""Permission-checked fetches: the only way transport obtains chat objects.

Checked on every frame and request, not once per socket: a counsellor transferred
out of a conversation loses the live feed at the next frame. Unknown ids and other
people's ids fail the same way, so ids reveal nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from accounts.models import Role, User
from config.sql import loaded_instance

from .exceptions import NotParticipant
from .models import Conversation, Participant, ParticipantRole, Session

STAFF_CHAT_ROLES = (Role.COUNSELLOR, Role.SUPERVISOR)


@dataclass(frozen=True)
class ReadGrant:
    conversation: Conversation
    participant: Participant | None
    # True when a supervisor reads a conversation they are not part of: audited.
    oversight: bool


_SENDER_SQL = (
    f"SELECT id, role FROM {Participant._meta.db_table} "  # noqa: S608 - table name from model metadata
    "WHERE conversation_id = %s AND user_id = %s AND left_at IS NULL LIMIT 1"
)


def access_conversation_for_sender(*, user: User, conversation_id: int) -> Participant:
    """The caller's live participation (may type, mark read). Sending is authorised by
    chat.services.message_send itself, by the same rule, in the statement that takes the
    conversation lock: one round trip less per message, and no gap between check and write."""
    # Hand-written: checked on every chat frame, and compiling the ORM query cost ~10% of
    # the server's CPU per message (docs/benchmarks.md).
    with connection.cursor() as cursor:
        cursor.execute(_SENDER_SQL, [conversation_id, user.id])
        row = cursor.fetchone()
    participant = None
    if row is not None:
        participant = loaded_instance(Participant, id=row[0], conversation_id=conversation_id, user_id=user.id,
                                      role=row[1])
    return participant_may_write(participant)


def participant_may_write(participant: Participant | None) -> Participant:
    """The rule for writing (send, type, mark read): a live participation that is not an
    observer's. Also applied by chat.services.message_send to the rows it reads under the
    conversation lock."""
    if participant is None:
        raise NotParticipant()
    if participant.role == ParticipantRole.OBSERVER:
        raise NotParticipant("Observing supervisors can read but not write.")
    return participant


def access_conversation_for_reader(*, user: User, conversation_id: int) -> ReadGrant:
    """Young person: their own; counsellor: any they took part in; supervisor: any (audited)."""
    participant = Participant.objects.select_related("conversation").filter(conversation_id=conversation_id, user_id=user.id).first()
    if participant is not None and participant.role == ParticipantRole.OBSERVER:
        return ReadGrant(participant.conversation, participant, oversight=True)
    if participant is not None:
        return ReadGrant(participant.conversation, participant, oversight=False)
    if user.role != Role.SUPERVISOR:
        raise NotParticipant()
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise NotParticipant()
    return ReadGrant(conversation, None, oversight=True)


def access_session_for_participant(*, user: User, session_id: int) -> Session:
    """A session the caller is live in: its young person or its current counsellor."""
    session = Session.objects.filter(pk=session_id).first()
    if session is None:
        raise NotParticipant()  # unknown and not-yours look the same
    if session.young_person_id == user.id:
        return session
    if session.counsellor_id == user.id:
        return session
    raise NotParticipant()


def access_session_for_young_person(*, user: User, session_id: int) -> Session:
    session = Session.objects.filter(pk=session_id).first()
    if session is None:
        raise NotParticipant()  # unknown and not-yours look the same
    if session.young_person_id != user.id:
        raise NotParticipant()
    return session


def access_session_for_staff(*, user: User, session_id: int) -> Session:
    """Case notes and handover: counsellors who took part, and supervisors."""
    session = Session.objects.filter(pk=session_id).first()
    if session is None:
        raise NotParticipant()  # unknown and not-yours look the same
    if user.role == Role.SUPERVISOR:
        return session
    if user.role != Role.COUNSELLOR:
        raise NotParticipant()
    if not Participant.objects.filter(conversation_id=session.conversation_id, user_id=user.id).exists():
        raise NotParticipant()
    return session


def access_session_for_reader(*, user: User, session_id: int) -> Session:
    """Session details: anyone who took part, and supervisors."""
    session = Session.objects.filter(pk=session_id).first()
    if session is None:
        raise NotParticipant()  # unknown and not-yours look the same
    if session.young_person_id == user.id:
        return session
    if user.role == Role.SUPERVISOR:
        return session
    if Participant.objects.filter(conversation_id=session.conversation_id, user_id=user.id).exists():
        return session
    raise NotParticipant()


def access_session_for_supervisor(*, user: User, session_id: int) -> Session:
    session = Session.objects.filter(pk=session_id).first()
    if user.role != Role.SUPERVISOR:
        raise NotParticipant()
    if session is None:
        raise NotParticipant()  # unknown and not-yours look the same
    return session
