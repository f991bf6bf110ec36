"""S7: the authorisation matrix.

Every actor (tests/security/authz_expectations.py: ACTORS) x every REST operation (from
the project's own OpenAPI schema) and every websocket frame type (api.wsproto), with
path ids and frame fields pointing at *young's* objects, so every other actor is
guessing someone else's ids. Each cell is classified:

- REST: DENIED for 401/403/404 (404 hides existence), a failure for 5xx, ALLOWED for
  anything else (2xx, and 400/409/422: the request got past authorisation);
- websocket: DENIED for an error frame whose code is in DENIED_WS_CODES, ALLOWED for any
  other reply, other error codes, or silence (a `ping` after the frame marks its end:
  a socket handles frames in order).

The assertion that matters: zero unexpected allows (and no leak of young's data into a
list answered to someone else, and no existence oracle: a REST denial for someone else's
id must read exactly like the one for an id that does not exist). Expected allows that were denied are printed only.

Isolation: REST builds one world, and each cell runs in a savepoint that is rolled back,
so no call can change what a later one sees. Websocket handlers run on other threads
(other connections), so each frame type gets a fresh world, and within it the actors
expected to be denied go first.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role, Shift, Tier, User
from accounts.tokens import token_issue
from tests.conftest import ws_open
from tests.security.authz_expectations import ACTORS, DENIED_WS_CODES, REST, WS, RestCase, WsCase

ROLE_OF = {
    "young": Role.YOUNG_PERSON, "other_young": Role.YOUNG_PERSON, "counsellor": Role.COUNSELLOR,
    "other_counsellor": Role.COUNSELLOR, "moderator": Role.MODERATOR, "clinician": Role.CLINICIAN,
    "supervisor": Role.SUPERVISOR, "admin": Role.ADMIN,
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_worlds = itertools.count(1)
GHOST_ID = 2_000_000_000  # an id no fixture object has


# --- the operations, from the routes ---------------------------------------------------------
def rest_operations() -> set[tuple[str, str]]:
    """Every operation in the OpenAPI schema, plus any DRF view the URL conf routes that
    the schema leaves out (the schema views themselves, or an `exclude=True`)."""
    from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    ops = {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops if m in HTTP_METHODS}
    ops |= {(method.upper(), path) for path, _regex, method, _view in EndpointEnumerator().get_api_endpoints()}
    return ops


def ws_operations() -> set[str]:
    from api.wsproto import registered_types

    return set(registered_types())


def test_every_route_and_frame_has_an_expectation():
    ops = rest_operations()
    missing = sorted(ops - set(REST))
    stale = sorted(set(REST) - ops)
    frames = ws_operations()
    missing_ws = sorted(frames - set(WS))
    stale_ws = sorted(set(WS) - frames)
    problems = [f"REST operation without an expectation: {m} {p}" for m, p in missing]
    problems += [f"stale REST expectation (no such operation): {m} {p}" for m, p in stale]
    problems += [f"websocket frame type without an expectation: {t}" for t in missing_ws]
    problems += [f"stale websocket expectation (no such frame type): {t}" for t in stale_ws]
    problems += [f"empty expectation list: {k}" for k, cases in [*REST.items(), *WS.items()] if not cases]
    assert not problems, "add who may do it to tests/security/authz_expectations.py:\n" + "\n".join(problems)


# --- the fixture world --------------------------------------------------------------------------
def _marker(name: str) -> str:
    return f"s7{name}{uuid.uuid4().hex[:12]}"


def build_world() -> dict[str, Any]:
    """young's objects, and one user per actor. Everything young owns, young made."""
    from chat import services as chat
    from forums.models import Board, Notification, Post, PostState, Reaction, Thread
    from moderation.models import Appeal, QueueItem, Sanction, WatchedWord
    from triage.escalations import escalation_acknowledge
    from triage.models import Escalation

    n = next(_worlds)
    tag = uuid.uuid4().hex[:6]
    today = timezone.localdate()
    users: dict[str, User] = {}
    for actor, role in ROLE_OF.items():
        extra = {"birth_year": today.year - 15, "birth_month": 1} if role == Role.YOUNG_PERSON else {"display_name": actor}
        user = User(handle=f"s7{n}{tag}{actor.replace('_', '')}"[:32], role=role, **extra)
        user.set_unusable_password()
        user.save()
        users[actor] = user
    young, moderator, clinician = users["young"], users["moderator"], users["clinician"]
    now = timezone.now()
    w: dict[str, Any] = {"users": users, "reaction_kind": "hug", "clinician_handle": clinician.handle}
    w.update({f"{actor}_id": user.id for actor, user in users.items()})
    for name in ("session", "held_post", "held_thread", "held_first", "deleted_post", "notification", "sanction"):
        w[f"{name}_marker"] = _marker(name)

    # Forums: a board for 13-17s; young's published thread with a held reply and a deleted
    # reply; young's held thread; young's reaction; a notification for young.
    board = Board.objects.create(slug=f"s7-{n}-{tag}", name="Exams", policy="pre", min_age=13, max_age=17)
    thread = Thread.objects.create(board=board, author=young, title="Exam stress", published_count=1)
    post = Post.objects.create(thread=thread, author=young, body="Exams are stressing me out", is_first=True,
                               state=PostState.PUBLISHED, published_at=now)
    held_post = Post.objects.create(thread=thread, author=young, body=f"my address is {w['held_post_marker']}",
                                    state=PostState.HELD)
    deleted_post = Post.objects.create(thread=thread, author=young, body=f"regret this {w['deleted_post_marker']}",
                                       state=PostState.PUBLISHED, published_at=now, deleted_at=now)
    held_thread = Thread.objects.create(board=board, author=young, title=f"Held {w['held_thread_marker']}")
    Post.objects.create(thread=held_thread, author=young, body=f"waiting {w['held_first_marker']}", is_first=True, state=PostState.HELD)
    reaction = Reaction.objects.create(post=post, user=young, kind="hug")
    notification = Notification.objects.create(user=young, kind="reply", data={"title": w["notification_marker"]})
    w.update(board=board.id, thread=thread.id, post=post.id, held_post=held_post.id, deleted_post=deleted_post.id,
             held_thread=held_thread.id, reaction=reaction.id, notification=notification.id)

    # Moderation: a care item about the held reply; a warning on young (appealable) and a
    # second one already appealed; a watched word.
    item = QueueItem.objects.create(queue="care", post=held_post, reasons=["report:worried"], risk_rank=2)
    sanction = Sanction.objects.create(user=young, kind="warning", reason="bullying", message=w["sanction_marker"],
                                       issued_by=moderator, item=item)
    appealed = Sanction.objects.create(user=young, kind="warning", reason="spam", message="second", issued_by=moderator)
    appeal = Appeal.objects.create(sanction=appealed, user=young, text="it was a joke")
    word = WatchedWord.objects.create(phrase=f"s7 word {tag}", action="hold", created_by=moderator)
    w.update(item=item.id, item_version=item.version, sanction=sanction.id, appeal=appeal.id, word=word.id)

    # Rota: the clinician is the primary on duty.
    shift = Shift.objects.create(clinician=clinician, tier=Tier.PRIMARY, start=now - dt.timedelta(hours=1),
                                 end=now + dt.timedelta(hours=8))
    w.update(shift=shift.id, shift_start=(now + dt.timedelta(hours=2)).isoformat(),
             shift_end=(now + dt.timedelta(hours=4)).isoformat())

    # Chat: young's live session with the counsellor; two crisis messages (two
    # escalations: one open, one acknowledged by the clinician); a reply; a case note.
    requested = chat.session_request(young_person=young, topic=f"exams {w['session_marker']}", body="I've been feeling low")
    for actor in ("counsellor", "other_counsellor"):
        chat.counsellor_status_set(user=users[actor], status="available")
    session = chat.session_accept(counsellor=users["counsellor"], session_id=requested.session.id)
    for actor, body in (("young", "I have taken 20 paracetamol"), ("young", "I want to kill myself tonight"),
                        ("counsellor", "I'm here with you")):
        chat.message_send(sender=users[actor], conversation_id=session.conversation_id, client_msg_id=uuid.uuid4(), body=body)
    chat.note_add(session=session, author=users["counsellor"], body="risk discussed")
    escalations = list(Escalation.objects.filter(young_person=young).order_by("id"))
    assert len(escalations) >= 2, "the crisis messages should each open an escalation"
    escalation_acknowledge(user=clinician, escalation_id=escalations[-1].id)
    w.update(session=session.id, conversation=session.conversation_id, escalation=escalations[0].id,
             escalation_owned=escalations[-1].id)
    return w


def _order(allow: frozenset[str]) -> list[str]:
    """Expected-denied actors first, then the expected-allowed ones."""
    return [a for a in ACTORS if a not in allow] + [a for a in ACTORS if a in allow]


class Tally:
    def __init__(self, part: str) -> None:
        self.part = part
        self.cells = 0
        self.unexpected_allows: list[str] = []
        self.unexpected_denials: list[str] = []
        self.failures: list[str] = []
        self.oracles: list[str] = []  # existence oracles: denial differs for real vs unknown ids

    def record(self, where: str, actor: str, allowed: bool, expected: bool, detail: str) -> None:
        self.cells += 1
        if allowed and not expected:
            self.unexpected_allows.append(f"{where} as {actor}: {detail}")
        elif expected and not allowed:
            self.unexpected_denials.append(f"{where} as {actor}: {detail}")

    def report(self) -> None:
        print(f"\nS7 {self.part}: {self.cells} cells, {len(self.unexpected_allows)} unexpected allows, "
              f"{len(self.unexpected_denials)} expected allows denied")
        for line in self.unexpected_denials:
            print(f"  expected allow denied: {line}")
        for line in self.unexpected_allows:
            print(f"  UNEXPECTED ALLOW: {line}")
        for line in self.oracles:
            print(f"  EXISTENCE ORACLE: {line}")
        for line in self.failures:
            print(f"  FAILURE: {line}")

    def assert_clean(self) -> None:
        problems = self.unexpected_allows + self.oracles + self.failures
        assert not problems, f"S7 {self.part}:\n" + "\n".join(problems)


# --- REST -------------------------------------------------------------------------------------
def _url(path: str, case: RestCase, w: dict[str, Any]) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in case.params:
            raise AssertionError(f"{path}: no fixture value for path parameter {{{name}}} (add it to params)")
        return str(w[case.params[name]])

    return re.sub(r"\{(\w+)\}", fill, path)


def _error_code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _call(method: str, url: str, case: RestCase, w: dict[str, Any], actor: str):
    client = APIClient()
    if actor != "anonymous":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=w['users'][actor])[1]}")
    if method == "GET":
        return client.get(url, case.query)
    body = case.body(w) if case.body else None
    if case.query:
        url += "?" + "&".join(f"{k}={v}" for k, v in case.query.items())
    return getattr(client, method.lower())(url, body, format="json")


@pytest.mark.django_db
def test_rest_authorisation_matrix():
    started = time.monotonic()
    w = build_world()
    tally = Tally("REST")
    for (method, path), cases in sorted(REST.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        for case in cases:
            where = f"{method} {path}" + (f" [{case.label}]" if case.label else "")
            url = _url(path, case, w)
            ghost_url = _url(path, case, {**w, **{k: GHOST_ID for k in case.params.values() if isinstance(w[k], int)}})
            seen_by: set[str] = set()
            for actor in _order(case.allow):
                expected = actor in case.allow
                with transaction.atomic():
                    response = _call(method, url, case, w, actor)
                    problem = case.check(w, actor) if case.check else None
                    transaction.set_rollback(True)
                status = response.status_code
                text = response.content.decode(errors="replace")
                if status >= 500:
                    tally.failures.append(f"{where} as {actor}: {status} {text[:200]}")
                    continue
                allowed = status not in (401, 403, 404)
                tally.record(where, actor, allowed, expected, f"{status} {text[:160]}")
                if not allowed and ghost_url != url and actor not in case.knows:
                    # Guessing ids must not tell "exists, not yours" from "does not exist".
                    with transaction.atomic():
                        ghost = _call(method, ghost_url, case, w, actor)
                        transaction.set_rollback(True)
                    if (ghost.status_code, _error_code(ghost)) != (status, _error_code(response)):
                        tally.oracles.append(f"{where} as {actor}: someone else's id answers {status} "
                                             f"{_error_code(response)}, an unknown id {ghost.status_code} {_error_code(ghost)}")
                if problem:
                    tally.unexpected_allows.append(f"{where} as {actor}: {problem}")
                for leak in case.leaks:
                    if w[leak.marker] in text:
                        seen_by.add(leak.marker)
                        if actor not in leak.sees:
                            tally.unexpected_allows.append(f"{where} as {actor}: response leaks {leak.marker}")
            for leak in case.leaks:
                if leak.marker not in seen_by:
                    tally.failures.append(f"{where}: {leak.marker} seen by nobody, so the leak rule proves nothing")
    tally.report()
    print(f"  REST time {time.monotonic() - started:.1f}s")
    tally.assert_clean()


# --- websocket ------------------------------------------------------------------------------------
async def _ws_cell(frame_type: str, case: WsCase, w: dict[str, Any], actor: str) -> tuple[bool, str]:
    token = None
    if actor != "anonymous":
        token = await database_sync_to_async(lambda: token_issue(user=w["users"][actor])[1])()
    comm = await ws_open(token)
    try:
        ref = f"s7-{uuid.uuid4().hex[:8]}"
        await comm.send_json_to({**case.frame(w), "type": frame_type, "ref": ref})
        await comm.send_json_to({"type": "ping", "ref": f"{ref}-end"})
        reply = None
        deadline = time.monotonic() + 10
        while True:
            frame = await comm.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
            if frame.get("ref") == ref and reply is None:
                reply = frame
            if frame.get("type") == "pong" and frame.get("ref") == f"{ref}-end":
                break
    finally:
        await comm.disconnect()
    if reply is None:
        return True, "no reply (accepted)"
    if reply.get("type") == "error":
        code = reply.get("code")
        if code == "server_error":
            raise AssertionError(f"{frame_type} as {actor}: server_error")
        return code not in DENIED_WS_CODES, f"error {code}"
    return True, str(reply.get("type"))


@pytest.mark.django_db(transaction=True)
async def test_websocket_authorisation_matrix():
    started = time.monotonic()
    tally = Tally("websocket")
    for frame_type, cases in sorted(WS.items()):
        for case in cases:
            where = f"ws {frame_type}" + (f" [{case.label}]" if case.label else "")
            w = await database_sync_to_async(build_world)()
            for actor in _order(case.allow):
                try:
                    allowed, detail = await _ws_cell(frame_type, case, w, actor)
                except AssertionError as exc:
                    tally.failures.append(f"{where} as {actor}: {exc}")
                    continue
                tally.record(where, actor, allowed, actor in case.allow, detail)
    tally.report()
    print(f"  websocket time {time.monotonic() - started:.1f}s")
    tally.assert_clean()
