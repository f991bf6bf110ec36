"""S7: who SHOULD be allowed to do what, for every REST operation and websocket frame.

The test (tests/security/test_authz_matrix.py) enumerates the REST operations from the
project's OpenAPI schema and the frame types from api.wsproto.registered_types(); every
one of them must have an entry here, and every entry here must still exist. A new
endpoint without an entry fails the test: decide who may use it, then add it.

Actors (one fixture world per operation, see the test):
- young: owns the objects (chat session, posts, notification, sanctions; the crisis
  messages behind the escalations);
- other_young: another young person in the same age band, guessing young's ids;
- counsellor: young's counsellor in the live session; other_counsellor: not in it;
- moderator, clinician (owns `escalation_owned` and is on the rota), supervisor, admin;
- anonymous: no credentials.

What the expectations say (what a service like this should allow, not what the code
happens to do):
- young people see only their own chats, notifications and sanctions; peers in their
  age band read published forum content and never held posts;
- counsellors: only sessions they take part in (notes included); the queue and their
  own availability; no escalations, no moderation;
- supervisors: every chat read (transcripts audited), notes, live overview, observing;
  no writing into a chat they are not part of;
- moderators / supervisors / admins: the moderation API; clinicians / supervisors /
  admins: escalations (audit trail: supervisors and admins); the rota is readable by
  the staff who escalate or are escalated to, and written by supervisors and admins.

Cells are `allow` sets: any actor not in the set must be DENIED (401/403/404, or a ws
error code in DENIED_WS_CODES), and (REST, path ids) denied exactly as for an id that does
not exist, unless the case says the actor `knows` the object anyway. `leak` rules say whose responses may contain a marker
string from someone else's object (list endpoints must filter, not just answer).
`check` runs after the call, before rollback, to prove nothing of young's changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACTORS = (
    "young", "other_young", "counsellor", "other_counsellor", "moderator", "clinician", "supervisor", "admin",
    "anonymous",
)
ALL = frozenset(ACTORS)
LOGGED_IN = ALL - {"anonymous"}
YOUNG = frozenset({"young"})
YOUNGS = frozenset({"young", "other_young"})
CHAT_PAIR = frozenset({"young", "counsellor"})
COUNSELLORS = frozenset({"counsellor", "other_counsellor"})
COUNSELLING = COUNSELLORS | {"supervisor"}
SESSION_STAFF = frozenset({"counsellor", "supervisor"})
MODERATING = frozenset({"moderator", "supervisor", "admin"})
ESCALATION = frozenset({"clinician", "supervisor", "admin"})
SUPERVISING = frozenset({"supervisor", "admin"})
ROTA_READERS = COUNSELLORS | ESCALATION
OWNER_OR_MOD = YOUNG | MODERATING  # held posts: their author and the moderation team

# A websocket error with one of these codes is a denial (the REST twins are 401/403/404).
DENIED_WS_CODES = frozenset({
    "not_authenticated", "authentication_failed", "wrong_role", "permission_denied", "not_participant", "not_found",
    "board_age_restricted",
})

W = dict[str, Any]  # the fixture world: ids, handles and users by key


@dataclass(frozen=True)
class Leak:
    marker: str  # world key of a unique string inside young's object
    sees: frozenset[str]  # actors whose responses may contain it


@dataclass(frozen=True)
class RestCase:
    allow: frozenset[str]
    label: str = ""
    params: dict[str, str] = field(default_factory=dict)  # path parameter -> world key
    body: Callable[[W], dict] | None = None
    query: dict[str, str] = field(default_factory=dict)
    leaks: tuple[Leak, ...] = ()
    # (world, actor) -> problem or None; runs inside the rolled-back savepoint after the call
    check: Callable[[W, str], str | None] | None = None
    # Actors who may learn that the object exists although the call is denied them (they
    # can read it elsewhere); for everyone else a denial must look like an unknown id.
    knows: frozenset[str] = frozenset()


@dataclass(frozen=True)
class WsCase:
    allow: frozenset[str]
    frame: Callable[[W], dict]
    label: str = ""


def _cmid() -> str:
    return str(uuid.uuid4())


def _young_notification_unread(w: W, actor: str) -> str | None:
    from forums.models import Notification

    if actor == "young":
        return None
    if Notification.objects.get(pk=w["notification"]).read_at is not None:
        return "marked young's notification as read"
    return None


def _young_reaction_kept(w: W, actor: str) -> str | None:
    from forums.models import Reaction

    if actor == "young":
        return None
    if not Reaction.objects.filter(pk=w["reaction"]).exists():
        return "removed young's reaction"
    return None


SESSION = {"session_id": "session"}
CONVERSATION = {"conversation_id": "conversation"}
ESC_OPEN = {"escalation_id": "escalation"}
ESC_OWNED = {"escalation_id": "escalation_owned"}
PUBLISHED_POST = {"post_id": "post"}
HELD_POST = {"post_id": "held_post"}
DELETED_POST = {"post_id": "deleted_post"}
PUBLISHED_THREAD = {"thread_id": "thread"}
HELD_THREAD = {"thread_id": "held_thread"}
HELD_REPLY_SEEN = Leak("held_post_marker", OWNER_OR_MOD)
HELD_THREAD_SEEN = Leak("held_thread_marker", OWNER_OR_MOD)

V1 = "/api/v1"

REST: dict[tuple[str, str], list[RestCase]] = {
    # --- public and identity -------------------------------------------------------------
    ("GET", f"{V1}/asyncapi.yaml"): [RestCase(ALL)],
    # Not in the schema itself (found through the URL conf): the API description is public.
    ("GET", f"{V1}/schema/"): [RestCase(ALL)],
    ("GET", f"{V1}/docs/"): [RestCase(ALL)],
    ("GET", f"{V1}/redoc/"): [RestCase(ALL)],
    ("POST", f"{V1}/auth/login/"): [RestCase(ALL, body=lambda w: {})],
    ("POST", f"{V1}/auth/register/"): [RestCase(ALL, body=lambda w: {})],
    ("POST", f"{V1}/auth/logout/"): [RestCase(LOGGED_IN)],
    ("GET", f"{V1}/me/"): [RestCase(LOGGED_IN)],
    # --- chat -----------------------------------------------------------------------------
    ("GET", f"{V1}/chat/sessions/"): [
        RestCase(LOGGED_IN, "own", leaks=(Leak("session_marker", CHAT_PAIR),)),
        RestCase(LOGGED_IN, "all=1", query={"all": "1"}, leaks=(Leak("session_marker", CHAT_PAIR | {"supervisor"}),)),
    ],
    ("POST", f"{V1}/chat/sessions/"): [RestCase(YOUNGS, body=lambda w: {"topic": "exams"})],
    ("GET", f"{V1}/chat/sessions/{{session_id}}/"): [RestCase(CHAT_PAIR | {"supervisor"}, params=SESSION)],
    ("POST", f"{V1}/chat/sessions/{{session_id}}/end/"): [RestCase(CHAT_PAIR, params=SESSION, body=lambda w: {})],
    ("POST", f"{V1}/chat/sessions/{{session_id}}/feedback/"): [
        RestCase(YOUNG, params=SESSION, body=lambda w: {"rating": 5}),
    ],
    ("GET", f"{V1}/chat/sessions/{{session_id}}/notes/"): [RestCase(SESSION_STAFF, params=SESSION)],
    ("POST", f"{V1}/chat/sessions/{{session_id}}/notes/"): [
        RestCase(SESSION_STAFF, params=SESSION, body=lambda w: {"body": "handover: check in tomorrow"}),
    ],
    ("POST", f"{V1}/chat/sessions/accept/"): [RestCase(COUNSELLORS, body=lambda w: {"session": w["session"]})],
    ("POST", f"{V1}/chat/status/"): [RestCase(COUNSELLING, body=lambda w: {"status": "away"})],
    ("GET", f"{V1}/chat/queue/"): [RestCase(COUNSELLING)],
    ("GET", f"{V1}/chat/conversations/{{conversation_id}}/messages/"): [
        RestCase(CHAT_PAIR | {"supervisor"}, params=CONVERSATION),
    ],
    ("POST", f"{V1}/chat/conversations/{{conversation_id}}/messages/"): [
        RestCase(CHAT_PAIR, params=CONVERSATION, body=lambda w: {"client_msg_id": _cmid(), "body": "are you there?"}),
    ],
    # --- escalations and rota ---------------------------------------------------------------
    ("GET", f"{V1}/escalations/"): [RestCase(ESCALATION)],
    ("GET", f"{V1}/escalations/{{escalation_id}}/"): [RestCase(ESCALATION, params=ESC_OPEN)],
    ("POST", f"{V1}/escalations/{{escalation_id}}/acknowledge/"): [RestCase(ESCALATION, params=ESC_OPEN)],
    ("POST", f"{V1}/escalations/{{escalation_id}}/notes/"): [
        RestCase(ESCALATION, params=ESC_OPEN, body=lambda w: {"body": "called the school"}),
    ],
    ("POST", f"{V1}/escalations/{{escalation_id}}/handover/"): [
        RestCase(ESCALATION, params=ESC_OWNED, body=lambda w: {"to": w["clinician_id"], "note": "over to you"}),
    ],
    ("POST", f"{V1}/escalations/{{escalation_id}}/resolve/"): [
        RestCase(ESCALATION, params=ESC_OWNED, body=lambda w: {"outcome": "safety_plan"}),
    ],
    ("GET", f"{V1}/escalations/{{escalation_id}}/audit/"): [RestCase(SUPERVISING, params=ESC_OPEN)],
    ("GET", f"{V1}/rota/shifts/"): [RestCase(ROTA_READERS)],
    ("POST", f"{V1}/rota/shifts/"): [
        RestCase(SUPERVISING, body=lambda w: {"clinician": w["clinician_handle"], "tier": "backup",
                                              "start": w["shift_start"], "end": w["shift_end"]}),
    ],
    ("DELETE", f"{V1}/rota/shifts/{{shift_id}}/"): [RestCase(SUPERVISING, params={"shift_id": "shift"})],
    ("GET", f"{V1}/rota/on-duty/"): [RestCase(ROTA_READERS)],
    ("GET", f"{V1}/rota/coverage/"): [RestCase(ROTA_READERS)],
    # --- forums -------------------------------------------------------------------------------
    ("GET", f"{V1}/forums/boards/"): [RestCase(LOGGED_IN)],
    ("GET", f"{V1}/forums/boards/{{board_id}}/threads/"): [
        RestCase(LOGGED_IN, params={"board_id": "board"}, leaks=(HELD_THREAD_SEEN,)),
    ],
    ("POST", f"{V1}/forums/boards/{{board_id}}/threads/"): [
        RestCase(LOGGED_IN, params={"board_id": "board"}, body=lambda w: {"title": "Revision tips", "body": "What helps you?"}),
    ],
    ("GET", f"{V1}/forums/threads/{{thread_id}}/"): [
        RestCase(LOGGED_IN, "published", params=PUBLISHED_THREAD),
        RestCase(OWNER_OR_MOD, "held", params=HELD_THREAD, leaks=(HELD_THREAD_SEEN,)),
    ],
    ("GET", f"{V1}/forums/threads/{{thread_id}}/posts/"): [
        RestCase(LOGGED_IN, "published", params=PUBLISHED_THREAD, leaks=(HELD_REPLY_SEEN,)),
        RestCase(OWNER_OR_MOD, "held", params=HELD_THREAD, leaks=(Leak("held_first_marker", OWNER_OR_MOD),)),
    ],
    ("POST", f"{V1}/forums/threads/{{thread_id}}/posts/"): [
        RestCase(LOGGED_IN, "published", params=PUBLISHED_THREAD, body=lambda w: {"body": "Same here, hang in there"}),
        RestCase(OWNER_OR_MOD, "held", params=HELD_THREAD, body=lambda w: {"body": "Same here, hang in there"}),
    ],
    ("GET", f"{V1}/forums/posts/{{post_id}}/"): [
        RestCase(LOGGED_IN, "published", params=PUBLISHED_POST),
        RestCase(OWNER_OR_MOD, "held", params=HELD_POST, leaks=(HELD_REPLY_SEEN,)),
        # A deleted post answers as a tombstone: its words only to the moderation team.
        RestCase(LOGGED_IN, "deleted", params=DELETED_POST, leaks=(Leak("deleted_post_marker", MODERATING),)),
    ],
    ("PATCH", f"{V1}/forums/posts/{{post_id}}/"): [
        RestCase(YOUNG, "published", params=PUBLISHED_POST, body=lambda w: {"body": "edited"}, knows=LOGGED_IN),
        RestCase(YOUNG, "held", params=HELD_POST, body=lambda w: {"body": "edited"}, knows=OWNER_OR_MOD),
    ],
    ("DELETE", f"{V1}/forums/posts/{{post_id}}/"): [
        RestCase(YOUNG, "published", params=PUBLISHED_POST, knows=LOGGED_IN),
        RestCase(YOUNG, "held", params=HELD_POST, knows=OWNER_OR_MOD),
    ],
    ("POST", f"{V1}/forums/posts/{{post_id}}/reactions/"): [
        RestCase(LOGGED_IN, "published", params=PUBLISHED_POST, body=lambda w: {"kind": "hug"}),
        RestCase(OWNER_OR_MOD, "held", params=HELD_POST, body=lambda w: {"kind": "hug"}),
    ],
    ("DELETE", f"{V1}/forums/posts/{{post_id}}/reactions/{{kind}}/"): [
        RestCase(LOGGED_IN, "published", params={**PUBLISHED_POST, "kind": "reaction_kind"}, check=_young_reaction_kept),
        RestCase(OWNER_OR_MOD, "held", params={**HELD_POST, "kind": "reaction_kind"}),
    ],
    ("GET", f"{V1}/forums/notifications/"): [RestCase(LOGGED_IN, leaks=(Leak("notification_marker", YOUNG),))],
    ("POST", f"{V1}/forums/notifications/read/"): [
        RestCase(LOGGED_IN, body=lambda w: {"ids": [w["notification"]]}, check=_young_notification_unread),
    ],
    # --- moderation -----------------------------------------------------------------------------
    ("GET", f"{V1}/moderation/items/"): [RestCase(MODERATING)],
    ("GET", f"{V1}/moderation/items/{{item_id}}/"): [RestCase(MODERATING, params={"item_id": "item"})],
    ("POST", f"{V1}/moderation/items/{{item_id}}/claim/"): [RestCase(MODERATING, params={"item_id": "item"})],
    ("POST", f"{V1}/moderation/items/{{item_id}}/release/"): [RestCase(MODERATING, params={"item_id": "item"})],
    ("POST", f"{V1}/moderation/items/{{item_id}}/decide/"): [
        RestCase(MODERATING, params={"item_id": "item"}, body=lambda w: {"decision": "approve", "version": w["item_version"]}),
    ],
    ("POST", f"{V1}/moderation/reports/"): [
        RestCase(LOGGED_IN, "published", body=lambda w: {"post_id": w["post"], "reason": "spam"}),
        RestCase(OWNER_OR_MOD, "held", body=lambda w: {"post_id": w["held_post"], "reason": "spam"}),
    ],
    ("GET", f"{V1}/moderation/sanctions/"): [
        RestCase(LOGGED_IN, leaks=(Leak("sanction_marker", YOUNG | MODERATING),)),
    ],
    ("POST", f"{V1}/moderation/sanctions/{{sanction_id}}/appeal/"): [
        RestCase(YOUNG, params={"sanction_id": "sanction"}, body=lambda w: {"text": "I was quoting a song"}),
    ],
    ("GET", f"{V1}/moderation/appeals/"): [RestCase(MODERATING)],
    ("POST", f"{V1}/moderation/appeals/{{appeal_id}}/decide/"): [
        RestCase(MODERATING, params={"appeal_id": "appeal"}, body=lambda w: {"outcome": "upheld"}),
    ],
    ("GET", f"{V1}/moderation/watched-words/"): [RestCase(MODERATING)],
    ("POST", f"{V1}/moderation/watched-words/"): [
        RestCase(MODERATING, body=lambda w: {"phrase": "s7 zebra phrase", "action": "hold"}),
    ],
    ("PATCH", f"{V1}/moderation/watched-words/{{word_id}}/"): [
        RestCase(MODERATING, params={"word_id": "word"}, body=lambda w: {"action": "flag"}),
    ],
    ("DELETE", f"{V1}/moderation/watched-words/{{word_id}}/"): [RestCase(MODERATING, params={"word_id": "word"})],
    ("GET", f"{V1}/moderation/metrics/"): [RestCase(MODERATING)],
    ("GET", f"{V1}/moderation/audit/"): [RestCase(MODERATING)],
}

WS: dict[str, list[WsCase]] = {
    # chat
    "session.request": [WsCase(YOUNGS, lambda w: {"topic": "exams", "body": ""})],
    "session.cancel": [WsCase(YOUNG, lambda w: {"session": w["session"]})],
    "session.end": [WsCase(CHAT_PAIR, lambda w: {"session": w["session"], "reason": "done"})],
    "session.accept": [WsCase(COUNSELLORS, lambda w: {"session": w["session"]})],
    "session.transfer": [WsCase(frozenset({"counsellor"}), lambda w: {"session": w["session"], "to": w["other_counsellor_id"]})],
    "session.observe": [WsCase(frozenset({"supervisor"}), lambda w: {"session": w["session"], "on": True})],
    "sessions.live": [WsCase(frozenset({"supervisor"}), lambda w: {})],
    "counsellor.status": [WsCase(COUNSELLING, lambda w: {"status": "away"})],
    "queue.list": [WsCase(COUNSELLING, lambda w: {})],
    "message.send": [WsCase(CHAT_PAIR, lambda w: {"conversation": w["conversation"], "client_msg_id": _cmid(), "body": "hi"})],
    "sync": [WsCase(CHAT_PAIR | {"supervisor"}, lambda w: {"conversation": w["conversation"], "after_seq": 0})],
    "typing": [WsCase(CHAT_PAIR, lambda w: {"conversation": w["conversation"], "state": True})],
    "read": [WsCase(CHAT_PAIR, lambda w: {"conversation": w["conversation"], "seq": 1})],
    "read.receipts": [WsCase(YOUNGS, lambda w: {"enabled": False})],
    "note.add": [WsCase(SESSION_STAFF, lambda w: {"session": w["session"], "body": "note"})],
    "feedback.send": [WsCase(YOUNG, lambda w: {"session": w["session"], "rating": 4})],
    # escalations
    "escalation.list": [WsCase(ESCALATION, lambda w: {})],
    "escalation.received": [WsCase(ESCALATION, lambda w: {"escalations": [w["escalation"]]})],
    "escalation.acknowledge": [WsCase(ESCALATION, lambda w: {"escalation": w["escalation"]})],
    "escalation.note": [WsCase(ESCALATION, lambda w: {"escalation": w["escalation"], "body": "called back"})],
    "escalation.handover": [WsCase(ESCALATION, lambda w: {"escalation": w["escalation_owned"], "to": w["clinician_id"]})],
    "escalation.resolve": [WsCase(ESCALATION, lambda w: {"escalation": w["escalation_owned"], "outcome": "safety_plan"})],
    # forums and moderation
    "forum.subscribe": [
        WsCase(LOGGED_IN, lambda w: {"thread_id": w["thread"]}, "published thread"),
        WsCase(OWNER_OR_MOD, lambda w: {"thread_id": w["held_thread"]}, "held thread"),
        WsCase(LOGGED_IN, lambda w: {"board_id": w["board"]}, "board"),
    ],
    "forum.unsubscribe": [
        WsCase(LOGGED_IN, lambda w: {"thread_id": w["thread"]}, "published thread"),
        WsCase(OWNER_OR_MOD, lambda w: {"thread_id": w["held_thread"]}, "held thread"),
    ],
    "moderation.snapshot": [WsCase(MODERATING, lambda w: {})],
}
