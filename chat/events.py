"""Every chat event pushed to sockets, one builder per type (schemas: docs/asyncapi.yaml).

Called only from services; every push goes through config.realtime after commit, to
`user.<id>` groups of live participants (a message sent on the event loop: to `conv.<id>`,
see push_message_new_committed), or `role.counsellor` / `role.supervisor` for queue and
overview events. Pushes are hints: clients resync with `sync`.
Risk (triage) appears only in payloads built with staff=True, sent to staff only.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Role, User
from config.realtime import (
    conversation_group,
    groups_join_on_commit,
    groups_leave_on_commit,
    role_group,
    send_copies_now,
    send_on_commit,
    send_to_users_on_commit,
    user_group,
)

from .models import Message, Participant, Session, Transfer

STAFF_OVERVIEW_GROUPS = (role_group(Role.COUNSELLOR), role_group(Role.SUPERVISOR))
QUEUE_SNAPSHOT_LIMIT = 50


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def user_brief(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "name": user.public_name, "role": user.role}


# --- payload builders --------------------------------------------------------------
def message_dict(message: Message, *, staff: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "conversation": message.conversation_id,
        "seq": message.seq,
        "id": message.id,
        "sender": message.sender_id,
        "sender_role": message.sender_role or None,
        "sender_name": message.sender.public_name if message.sender_id else None,
        "kind": message.kind,
        "body": message.body,
        "sent_at": _iso(message.sent_at),
        "client_msg_id": str(message.client_msg_id) if message.client_msg_id else None,
    }
    if staff and message.assessment_id:
        data["risk"] = message.assessment.risk_payload()
    return data


def message_new_payload(message: Message, *, staff: bool) -> dict[str, Any]:
    return {"type": "message.new", **message_dict(message, staff=staff)}


def message_ack_payload(message: Message) -> dict[str, Any]:
    return {
        "type": "message.ack",
        "client_msg_id": str(message.client_msg_id),
        "conversation": message.conversation_id,
        "seq": message.seq,
        "id": message.id,
        "sent_at": _iso(message.sent_at),
    }


def session_dict(session: Session, *, staff: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "session": session.id,
        "conversation": session.conversation_id,
        "state": session.state,
        "topic": session.topic,
        "requested_at": _iso(session.requested_at),
        "assigned_at": _iso(session.assigned_at),
        "ended_at": _iso(session.ended_at),
        "end_reason": session.end_reason or None,
        "counsellor": user_brief(session.counsellor),
        "outside_hours": session.outside_hours,
    }
    if staff:
        data["young_person"] = {"id": session.young_person_id, "handle": session.young_person.handle}
        data["risk_level"] = session.risk_level
    return data


def queue_item(session: Session, position: int, eta_s: int) -> dict[str, Any]:
    return {
        "session": session.id,
        "conversation": session.conversation_id,
        "position": position,
        "eta_s": eta_s,
        "topic": session.topic,
        "risk_level": session.risk_level,
        "requested_at": _iso(session.requested_at),
        "young_person": {"id": session.young_person_id, "handle": session.young_person.handle},
    }


def session_position_payload(session: Session, position: int, eta_s: int) -> dict[str, Any]:
    return {"type": "session.position", "session": session.id, "conversation": session.conversation_id,
            "position": position, "eta_s": eta_s}


def queue_updated_payload(items: list[dict[str, Any]], waiting: int) -> dict[str, Any]:
    return {"type": "queue.updated", "waiting": waiting, "queue": items[:QUEUE_SNAPSHOT_LIMIT]}


def session_assigned_payload(session: Session, *, staff: bool) -> dict[str, Any]:
    return {"type": "session.assigned", **session_dict(session, staff=staff)}


def session_transferred_payload(session: Session, transfer: Transfer, *, staff: bool) -> dict[str, Any]:
    data = {
        "type": "session.transferred",
        **session_dict(session, staff=staff),
        "from": user_brief(transfer.from_user),
        "to": user_brief(transfer.to_user),
    }
    if staff:
        data["note"] = transfer.note
    return data


def session_ended_payload(session: Session, *, staff: bool) -> dict[str, Any]:
    data = {"type": "session.ended", **session_dict(session, staff=staff), "ended_by": session.ended_by_id}
    if not staff:
        data["feedback_requested"] = session.state == "ended" and session.assigned_at is not None
    return data


def typing_payload(conversation_id: int, user: User, state: bool) -> dict[str, Any]:
    return {"type": "typing", "conversation": conversation_id, "user": user.id, "state": state}


def read_payload(conversation_id: int, user: User, seq: int) -> dict[str, Any]:
    return {"type": "read", "conversation": conversation_id, "user": user.id, "seq": seq}


def staff_status_payload(user: User, status: str, capacity: int, active: int) -> dict[str, Any]:
    return {"type": "counsellor.status", "user": user_brief(user), "status": status, "capacity": capacity, "active": active}


# --- pushes (after commit) ------------------------------------------------------------
def _split(participants: list[Participant]) -> tuple[list[int], list[int]]:
    young = [p.user_id for p in participants if p.role == Role.YOUNG_PERSON]
    staff = [p.user_id for p in participants if p.role != Role.YOUNG_PERSON]
    return young, staff


def push_message_new(message: Message, participants: list[Participant]) -> None:
    """To live participants, after commit; staff copies carry the risk assessment."""
    for user_ids, payload in _message_new_copies(message, participants):
        send_to_users_on_commit(user_ids, payload)


def push_message_new_committed(message: Message, participants: list[Participant]) -> None:
    """push_message_new for a message whose transaction the caller has already committed
    (the send path on the event loop, services.message_send_on_loop): one push to the
    conversation's group carrying both copies (realtime.send_copies_now). The sockets of
    live participants are in that group (joined on connect and when their user joins the
    conversation, services._join); pushes made in the transaction that adds a participant
    (the request's opening message, the assignment's system message) take the user groups
    (push_message_new), as the join reaches the sockets only after that commit."""
    send_copies_now(conversation_group(message.conversation_id), _message_new_copies(message, participants))


def _message_new_copies(message: Message, participants: list[Participant]) -> list[tuple[list[int], dict[str, Any]]]:
    """The other side's copy comes first: the publishes go out one after another, each a
    Redis round trip (~0.5 ms), and the sender already has its ack; its own copy is for its
    other sockets."""
    young, staff = _split(participants)
    copies = [(young, False), (staff, True)]
    if message.sender_role == Role.YOUNG_PERSON:
        copies.reverse()
    return [(user_ids, message_new_payload(message, staff=for_staff)) for user_ids, for_staff in copies if user_ids]


def join_conversation(user_ids: list[int], conversation_id: int) -> None:
    """The users' sockets join the conversation's group once this transaction commits,
    before the pushes that follow it (push_message_new_committed's route)."""
    groups_join_on_commit(user_ids, [conversation_group(conversation_id)])


def leave_conversation(user_ids: list[int], conversation_id: int) -> None:
    groups_leave_on_commit(user_ids, [conversation_group(conversation_id)])


def push_session_assigned(session: Session) -> None:
    send_to_users_on_commit([session.young_person_id], session_assigned_payload(session, staff=False))
    staff_groups = [user_group(session.counsellor_id), role_group(Role.SUPERVISOR)]
    send_on_commit(staff_groups, session_assigned_payload(session, staff=True))


def push_session_transferred(session: Session, transfer: Transfer) -> None:
    send_to_users_on_commit([session.young_person_id], session_transferred_payload(session, transfer, staff=False))
    staff_groups = [user_group(transfer.from_user_id), user_group(transfer.to_user_id), role_group(Role.SUPERVISOR)]
    send_on_commit(staff_groups, session_transferred_payload(session, transfer, staff=True))


def push_session_ended(session: Session, counsellor_ids: list[int]) -> None:
    send_to_users_on_commit([session.young_person_id], session_ended_payload(session, staff=False))
    staff_groups = [user_group(uid) for uid in counsellor_ids] + [role_group(Role.SUPERVISOR)]
    send_on_commit(staff_groups, session_ended_payload(session, staff=True))


def push_typing(conversation_id: int, user: User, state: bool, recipient_ids: list[int]) -> None:
    send_to_users_on_commit(recipient_ids, typing_payload(conversation_id, user, state))


def push_read(conversation_id: int, user: User, seq: int, recipient_ids: list[int]) -> None:
    send_to_users_on_commit(recipient_ids, read_payload(conversation_id, user, seq))


def push_staff_status(user: User, status: str, capacity: int, active: int) -> None:
    send_on_commit([role_group(Role.SUPERVISOR)], staff_status_payload(user, status, capacity, active))


def push_queue_changed() -> None:
    """After commit: every waiting young person gets their position and estimate; staff
    get the queue snapshot. One query for the queue, one (cached) for the estimate."""
    transaction.on_commit(_queue_positions_send)


def _queue_positions_send() -> None:
    from config.realtime import send_now

    from .selectors import queue_estimate, queue_list

    queue = queue_list()
    estimate = queue_estimate()
    items = []
    for position, session in enumerate(queue, start=1):
        eta = estimate.eta_s(position)
        send_now([user_group(session.young_person_id)], session_position_payload(session, position, eta))
        items.append(queue_item(session, position, eta))
    send_now(STAFF_OVERVIEW_GROUPS, queue_updated_payload(items, len(queue)))
