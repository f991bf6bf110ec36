"""Shared fixtures for the forum and moderation suites (imported by their conftests)."""

from __future__ import annotations

import pytest

from accounts.models import Role
from forums.models import Board

TOXIC_WORDS = ("idiot", "loser")


def fake_assess_full(texts):
    """The model layer, mocked: inline assessment plus a toxicity score keyed on words."""
    from dataclasses import replace

    from triage import engine

    out = []
    for text in texts:
        inline = engine.assess_inline(text)
        toxic = any(w in text.lower() for w in TOXIC_WORDS)
        tox = {k: (0.95 if toxic and k in ("toxicity", "insult") else 0.01) for k in engine.TOXICITY_KEYS}
        action = inline.action
        if toxic and action == "allow":
            action = "review"
        out.append(replace(inline, toxicity=tox, action=action))
    return out


@pytest.fixture(autouse=True)
def _mock_model_layer(monkeypatch):
    from triage import engine

    monkeypatch.setattr(engine, "assess_full", fake_assess_full)


@pytest.fixture
def make_board(db):
    counter = iter(range(1, 10**6))

    def make(policy: str = "pre", min_age: int | None = None, max_age: int | None = None) -> Board:
        n = next(counter)
        return Board.objects.create(slug=f"b{n}-{policy}", name=f"Board {n}", policy=policy, min_age=min_age, max_age=max_age)

    return make


@pytest.fixture
def moderator(make_user):
    return make_user(Role.MODERATOR)


@pytest.fixture
def post_thread(client_for):
    """POST a thread as `user`; returns the response JSON (asserts 201)."""

    def post(user, board, body="Exams are stressing me out, any tips?", title="Exam stress"):
        resp = client_for(user).post(f"/api/v1/forums/boards/{board.id}/threads/", {"title": title, "body": body}, format="json")
        assert resp.status_code == 201, resp.json()
        return resp.json()

    return post


@pytest.fixture
def decide(client_for):
    def run(moderator, item_id, decision, **extra):
        client = client_for(moderator)
        claim = client.post(f"/api/v1/moderation/items/{item_id}/claim/")
        assert claim.status_code == 200, claim.json()
        body = {"decision": decision, "version": claim.json()["version"], **extra}
        return client.post(f"/api/v1/moderation/items/{item_id}/decide/", body, format="json")

    return run
