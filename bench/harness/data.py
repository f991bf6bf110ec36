"""Users, tokens and active sessions created directly in the bench database through the
product's services (session_request, counsellor_status_set, session_accept), before any
load starts. Runs in the harness process (Django set up with the stack's settings)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass
class Pair:
    conversation: int
    session: int
    yp_id: int
    yp_token: str
    co_id: int
    co_token: str


def _user(handle: str, role: str):
    from accounts.models import Role, User

    extra = {"birth_year": 2008, "birth_month": 1} if role == Role.YOUNG_PERSON else {"display_name": handle}
    user = User(handle=handle, role=role, **extra)
    user.set_unusable_password()  # tokens only: no password hashing cost in setup
    user.save()
    return user


def sessions_create(prefix: str, n: int) -> list[Pair]:
    """n active sessions, each with its own young person and its own counsellor (so 2n
    sockets carry the conversation), set up exactly as the websocket handlers would."""
    from django.db import connection

    from accounts.models import Role
    from accounts.tokens import token_issue
    from chat import services

    def one(i: int) -> Pair:
        yp = _user(f"{prefix}y{i}", Role.YOUNG_PERSON)
        co = _user(f"{prefix}c{i}", Role.COUNSELLOR)
        result = services.session_request(young_person=yp, topic="bench", body="")
        services.counsellor_status_set(user=co, status="available", capacity=1)
        session = services.session_accept(counsellor=co, session_id=result.session.id)
        return Pair(session.conversation_id, session.id, yp.id, token_issue(user=yp)[1], co.id, token_issue(user=co)[1])

    def chunk(idx: list[int]) -> list[Pair]:
        try:
            return [one(i) for i in idx]
        finally:
            connection.close()

    started = time.monotonic()
    # Mostly waiting on PostgreSQL commits: a few threads, each with its own connection.
    with ThreadPoolExecutor(8) as pool:
        pairs = [p for part in pool.map(chunk, [list(range(k, n, 8)) for k in range(8)]) for p in part]
    pairs.sort(key=lambda p: p.session)
    print(f"  setup: {n} sessions in {time.monotonic() - started:.1f}s", flush=True)
    return pairs


def users_create(prefix: str, n: int, role: str) -> list[tuple[int, str]]:
    from accounts.tokens import token_issue

    out = []
    for i in range(n):
        u = _user(f"{prefix}{i}", role)
        out.append((u.id, token_issue(user=u)[1]))
    return out


def forum_thread_create(prefix: str) -> tuple[int, int]:
    """A post-moderated board (published at once, moderated after) and one thread."""
    from accounts.models import Role
    from forums.models import Board
    from forums.services import thread_create

    board = Board.objects.create(slug=f"{prefix}board", name=f"Bench {prefix}", policy="post")
    author = _user(f"{prefix}op", Role.YOUNG_PERSON)
    thread = thread_create(user=author, board=board, title="Exam stress thread", body="How is everyone coping with exams?")
    return board.id, thread.id
