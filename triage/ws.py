"""Websocket frames for duty clinicians: acknowledge, note, hand over, resolve, list."""

from __future__ import annotations

from api.wsproto import FrameInvalid, WsResult, field_int, field_str, ws_handler, ws_on_connect

from . import escalations as svc

STAFF = svc.ESCALATION_ROLES


def _state(escalation, frame) -> dict:
    return {"type": "escalation.state", "escalation": svc.escalation_snapshot(escalation), "ref": frame.get("ref")}


@ws_handler("escalation.acknowledge", roles=STAFF)
def acknowledge(user, frame):
    return _state(svc.escalation_acknowledge(user=user, escalation_id=field_int(frame, "escalation")), frame)


@ws_handler("escalation.note", roles=STAFF)
def note(user, frame):
    escalation_id = field_int(frame, "escalation")
    entry = svc.escalation_note_add(user=user, escalation_id=escalation_id, body=field_str(frame, "body"))
    return {"type": "escalation.note.ok", "escalation": escalation_id, "note": entry.id, "ref": frame.get("ref")}


@ws_handler("escalation.handover", roles=STAFF)
def handover(user, frame):
    escalation = svc.escalation_handover(
        user=user,
        escalation_id=field_int(frame, "escalation"),
        to_user_id=field_int(frame, "to"),
        note=field_str(frame, "note", required=False) or "",
    )
    return _state(escalation, frame)


@ws_handler("escalation.resolve", roles=STAFF)
def resolve(user, frame):
    escalation = svc.escalation_resolve(
        user=user,
        escalation_id=field_int(frame, "escalation"),
        outcome=field_str(frame, "outcome", max_len=64),
        note=field_str(frame, "note", required=False) or "",
    )
    return _state(escalation, frame)


@ws_handler("escalation.received", roles=STAFF)
def received(user, frame):
    """Delivery receipt: the client has shown these escalations (stops redelivery)."""
    ids = frame.get("escalations")
    if ids is None:
        ids = [field_int(frame, "escalation")]
    if not isinstance(ids, list):
        raise FrameInvalid("`escalations` must be a list of ids.")
    svc.escalation_mark_received(user=user, escalation_ids=ids)
    return None


@ws_handler("escalation.list", roles=STAFF)
def list_open(user, frame):
    return _list_frame(user, ref=frame.get("ref"))


def _list_frame(user, ref=None) -> dict:
    return {
        "type": "escalation.list",
        "escalations": [svc.escalation_snapshot(e) for e in svc.escalation_list_open(user=user)],
        "nobody_on_duty": svc.nobody_on_duty(),
        "ref": ref,
    }


@ws_on_connect
def send_open_escalations(user):
    """A clinician who (re)connects sees every open escalation at once: a push lost while
    they were away never hides one."""
    if user.role not in STAFF:
        return None
    return WsResult(replies=[_list_frame(user)])
