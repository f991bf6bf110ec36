"""Websocket frame handlers for counselling chat (protocol: docs/protocol.md).

Each handler validates the frame, obtains objects through chat.access (authorisation
on every frame), calls one service and returns frames for this socket. State changes
that everyone must see (assigned, transferred, ended) arrive through the user's own
`user.<id>` group, so handlers do not echo them.
"""

from __future__ import annotations

from typing import Any

from accounts.models import Role
from api.wsproto import FrameInvalid, WsResult, field_int, field_str, ws_handler, ws_on_connect
from config.realtime import conversation_group

from . import events, services
from .access import (
    access_conversation_for_reader,
    access_conversation_for_sender,
    access_session_for_participant,
    access_session_for_staff,
    access_session_for_supervisor,
    access_session_for_young_person,
)
from .models import SessionState
from .selectors import (
    active_session_count,
    conversations_live_for,
    counsellor_status_of,
    queue_estimate,
    queue_list,
    session_open_for,
    sessions_for_user,
)

YOUNG = [Role.YOUNG_PERSON]
COUNSELLING = [Role.COUNSELLOR, Role.SUPERVISOR]
IN_CHAT = [Role.YOUNG_PERSON, Role.COUNSELLOR, Role.SUPERVISOR]


def _ref(frame: dict[str, Any]) -> Any:
    return frame.get("ref")


def _bool(frame: dict[str, Any], name: str, default: bool | None = None) -> bool:
    value = frame.get(name, default)
    if not isinstance(value, bool):
        raise FrameInvalid(f"`{name}` must be true or false.")
    return value


@ws_handler("session.request", roles=YOUNG)
def session_request(user, frame):
    result = services.session_request(
        young_person=user,
        topic=field_str(frame, "topic", required=False, max_len=services.TOPIC_MAX_CHARS) or "",
        body=_body(frame, required=False) or "",
        client_msg_id=field_str(frame, "client_msg_id", required=False, max_len=64),
    )
    reply = {"type": "session.queued" if result.session.state == SessionState.QUEUED else "session.state",
             **result.as_payload(), "ref": _ref(frame)}
    # This socket joins now; the user's other sockets through the service's groups.join.
    return WsResult(replies=[reply], join=[conversation_group(result.session.conversation_id)])


def _body(frame: dict[str, Any], *, required: bool = True) -> str | None:
    # Length is the service's to judge (explicit `body_too_long`), not field_str's.
    return field_str(frame, "body", required=required, max_len=10**9)


@ws_handler("session.cancel", roles=YOUNG)
def session_cancel(user, frame):
    session = access_session_for_young_person(user=user, session_id=field_int(frame, "session"))
    return _end(user, session, "cancelled", frame)


@ws_handler("session.end", roles=IN_CHAT)
def session_end(user, frame):
    session = access_session_for_participant(user=user, session_id=field_int(frame, "session"))
    reason = field_str(frame, "reason", required=False, max_len=services.REASON_MAX_CHARS) or ""
    return _end(user, session, reason, frame)


def _end(user, session, reason: str, frame):
    already = session.state in (SessionState.ENDED, SessionState.CANCELLED)
    session = services.session_end(session=session, user=user, reason=reason)
    if already:  # nothing changed, so nothing was pushed: answer this socket directly
        return events.session_ended_payload(session, staff=user.role != Role.YOUNG_PERSON) | {"ref": _ref(frame)}
    return None


@ws_handler("counsellor.status", roles=COUNSELLING)
def counsellor_status(user, frame):
    status = field_str(frame, "status", max_len=16)
    capacity = field_int(frame, "capacity", required=False)
    row = services.counsellor_status_set(user=user, status=status, capacity=capacity)
    return {**events.staff_status_payload(user, row.status, row.capacity, active_session_count(counsellor_id=user.id)),
            "ref": _ref(frame)}


@ws_handler("session.accept", roles=[Role.COUNSELLOR])
def session_accept(user, frame):
    services.session_accept(counsellor=user, session_id=field_int(frame, "session", required=False))
    return None  # session.assigned arrives through user.<id>


@ws_handler("session.transfer", roles=COUNSELLING)
def session_transfer(user, frame):
    session = access_session_for_participant(user=user, session_id=field_int(frame, "session"))
    services.session_transfer(
        session=session, from_user=user, to_user_id=field_int(frame, "to"),
        note=field_str(frame, "note", required=False, max_len=services.NOTE_MAX_CHARS) or "",
    )
    return None  # session.transferred arrives through user.<id>


async def message_send_on_loop(user, frame):
    # The common case without the thread hop; None: message_send below takes the frame.
    result = await services.message_send_on_loop(sender=user, **_message_fields(frame))
    return None if result is None else _message_ack(result, frame)


@ws_handler("message.send", roles=IN_CHAT, on_loop=message_send_on_loop)
def message_send(user, frame):
    # No access_* fetch: the service authorises the sender under the conversation lock.
    return _message_ack(services.message_send(sender=user, **_message_fields(frame)), frame)


def _message_fields(frame: dict[str, Any]) -> dict[str, Any]:
    return {"conversation_id": field_int(frame, "conversation"),
            "client_msg_id": field_str(frame, "client_msg_id", max_len=64), "body": _body(frame)}


def _message_ack(result: services.SendResult, frame: dict[str, Any]) -> dict[str, Any]:
    return {**events.message_ack_payload(result.message), "duplicate": not result.created, "ref": _ref(frame)}


@ws_handler("sync", roles=IN_CHAT)
def sync(user, frame):
    grant = access_conversation_for_reader(user=user, conversation_id=field_int(frame, "conversation"))
    page = services.transcript_read(
        user=user, grant=grant, after_seq=field_int(frame, "after_seq", required=False) or 0,
        limit=field_int(frame, "limit", required=False) or 200, via="ws",
    )
    staff = user.role != Role.YOUNG_PERSON
    return {
        "type": "sync.result",
        "conversation": page.conversation_id,
        "after_seq": page.after_seq,
        "messages": [events.message_dict(m, staff=staff) for m in page.messages],
        "last_seq": page.last_seq,
        "has_more": page.has_more,
        "last_read_seq": page.last_read_seq,
        "ref": _ref(frame),
    }


@ws_handler("typing", roles=IN_CHAT)
def typing(user, frame):
    participant = access_conversation_for_sender(user=user, conversation_id=field_int(frame, "conversation"))
    participant.user = user
    services.typing_notify(participant=participant, state=_bool(frame, "state", True))
    return None


@ws_handler("read", roles=IN_CHAT)
def read(user, frame):
    participant = access_conversation_for_sender(user=user, conversation_id=field_int(frame, "conversation"))
    participant.user = user
    seq = services.read_mark(participant=participant, seq=field_int(frame, "seq"))
    return {"type": "read.ok", "conversation": participant.conversation_id, "seq": seq, "ref": _ref(frame)}


@ws_handler("read.receipts", roles=YOUNG)
def read_receipts(user, frame):
    enabled = services.read_receipts_set(user=user, enabled=_bool(frame, "enabled"))
    return {"type": "read.receipts", "enabled": enabled, "ref": _ref(frame)}


@ws_handler("note.add", roles=COUNSELLING)
def note_add(user, frame):
    session = access_session_for_staff(user=user, session_id=field_int(frame, "session"))
    note = services.note_add(session=session, author=user, body=field_str(frame, "body", max_len=services.NOTE_MAX_CHARS))
    return {"type": "note.added", "session": session.id, "id": note.id, "created_at": note.created_at.isoformat(),
            "ref": _ref(frame)}


@ws_handler("feedback.send", roles=YOUNG)
def feedback_send(user, frame):
    session = access_session_for_young_person(user=user, session_id=field_int(frame, "session"))
    feedback = services.feedback_submit(
        session=session, rating=frame.get("rating"), comment=field_str(frame, "comment", required=False, max_len=2000) or ""
    )
    return {"type": "feedback.ok", "session": session.id, "id": feedback.id, "ref": _ref(frame)}


@ws_handler("queue.list", roles=COUNSELLING)
def queue_snapshot(user, frame):
    return {**_queue_payload(), "type": "queue.snapshot", "ref": _ref(frame)}


def _queue_payload() -> dict[str, Any]:
    estimate = queue_estimate()
    queue = queue_list()
    items = [events.queue_item(s, i, estimate.eta_s(i)) for i, s in enumerate(queue, start=1)]
    return events.queue_updated_payload(items, len(queue))


@ws_handler("sessions.live", roles=[Role.SUPERVISOR])
def sessions_live(user, frame):
    live = sessions_for_user(user=user, state=SessionState.ACTIVE, everyone=True)
    return {"type": "sessions.live", "sessions": [events.session_dict(s, staff=True) for s in live], "ref": _ref(frame)}


@ws_handler("session.observe", roles=[Role.SUPERVISOR])
def session_observe(user, frame):
    session = access_session_for_supervisor(user=user, session_id=field_int(frame, "session"))
    on = services.session_observe(session=session, supervisor=user, on=_bool(frame, "on", True))
    reply = {"type": "session.observing", "session": session.id, "conversation": session.conversation_id, "on": on,
             "ref": _ref(frame)}
    return WsResult(replies=[reply], join=[conversation_group(session.conversation_id)] if on else [])


@ws_on_connect
def chat_state_on_connect(user):
    """Quick exit, then back on any device: tell the client where it was. The socket joins
    the groups of the conversations its user is live in first (realtime.send_copies_now)."""
    if user.role == Role.YOUNG_PERSON:
        session = session_open_for(young_person_id=user.id)
        if session is None:
            return {"type": "chat.state", "session": None}
        status = services.session_status(session=session)
        payload = status.as_payload()
        payload["counsellor"] = events.user_brief(session.counsellor)
        return WsResult(replies=[{"type": "chat.state", **payload}], join=[conversation_group(session.conversation_id)])
    if user.role in COUNSELLING:
        mine = sessions_for_user(user=user, state=SessionState.ACTIVE)
        row = counsellor_status_of(user_id=user.id)
        state = {
            "type": "chat.state",
            "status": row.status if row else "away",
            "capacity": row.capacity if row else None,
            "sessions": [events.session_dict(s, staff=True) for s in mine if s.counsellor_id == user.id],
            "waiting": len(queue_list()),
        }
        live = conversations_live_for(user_id=user.id)
        return WsResult(replies=[state], join=[conversation_group(c) for c in live])
    return None
