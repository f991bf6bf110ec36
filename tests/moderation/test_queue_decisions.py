"""Moderation queue: care routing, claims, versions, decisions, reports, sanctions, appeals."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from forums.models import Notification, Post
from moderation.models import Appeal, AuditEntry, QueueItem, Report, Sanction
from triage.models import Escalation

pytestmark = pytest.mark.django_db(transaction=True)

RISKY = "I want to kill myself tonight, you idiot"


@pytest.mark.parametrize("policy", ["pre", "auto", "post"])
def test_risky_post_goes_to_care_never_public_with_offer_and_escalation(policy, make_user, client_for, make_board, post_thread, moderator):
    author, reader = make_user(), make_user()
    thread = post_thread(author, make_board(policy), body=RISKY)
    post_id = thread["first_post"]["id"]
    assert thread["first_post"]["state"] == "held"
    items = QueueItem.objects.filter(post_id=post_id)
    # Risk overrides toxicity: care only, never the sanction queue as "toxic".
    assert [i.queue for i in items] == ["care"] and items[0].risk_rank == 3
    assert "risk:suicidal_ideation" in items[0].reasons
    assert Escalation.objects.filter(source_type="forum_post", source_id=post_id, level="high").exists()
    offer = Notification.objects.get(user=author, kind="care_offer").data
    assert offer["action"] == "session.request" and offer["resources"][1]["name"] == "Samaritans"
    assert client_for(reader).get(f"/api/v1/forums/threads/{thread['id']}/").status_code == 404
    care = client_for(moderator).get("/api/v1/moderation/items/?queue=care").json()["results"]
    assert care[0]["id"] == items[0].id and care[0]["post"]["body"] == RISKY


def test_queue_order_is_risk_first_then_oldest(make_user, client_for, make_board, post_thread, moderator):
    board = make_board("pre")
    post_thread(make_user(), board, body="ok")
    post_thread(make_user(), board, body="i self harm sometimes")
    post_thread(make_user(), board, body="I want to kill myself tonight")
    post_thread(make_user(), board, body="also ok")
    care = client_for(moderator).get("/api/v1/moderation/items/?queue=care").json()["results"]
    assert [i["risk_rank"] for i in care] == [3, 2]
    sanction = client_for(moderator).get("/api/v1/moderation/items/?queue=sanction").json()["results"]
    assert [i["post"]["body"] for i in sanction] == ["ok", "also ok"]
    assert client_for(make_user()).get("/api/v1/moderation/items/").json()["error"]["code"] == "wrong_role"


def test_claim_lease_expiry_and_version_conflict(make_user, client_for, make_board, post_thread, moderator, make_user_mod=None):
    from accounts.models import Role
    from moderation.services import claims_expire

    other = make_user(Role.MODERATOR)
    thread = post_thread(make_user(), make_board("pre"))
    item = QueueItem.objects.get(post_id=thread["first_post"]["id"])
    a, b = client_for(moderator), client_for(other)
    claim = a.post(f"/api/v1/moderation/items/{item.id}/claim/").json()
    assert claim["state"] == "claimed" and claim["claimed_by"] == moderator.id
    taken = b.post(f"/api/v1/moderation/items/{item.id}/claim/")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "item_claimed"
    not_mine = b.post(f"/api/v1/moderation/items/{item.id}/decide/", {"decision": "approve", "version": claim["version"]}, format="json")
    assert not_mine.json()["error"]["code"] == "claim_required"
    # The lease runs out: the sweeper frees the item and another moderator takes it.
    QueueItem.objects.filter(pk=item.id).update(claim_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert claims_expire() == 1
    assert QueueItem.objects.get(pk=item.id).state == "open"
    claim_b = b.post(f"/api/v1/moderation/items/{item.id}/claim/").json()
    stale = a.post(f"/api/v1/moderation/items/{item.id}/decide/", {"decision": "reject", "reason": "spam", "version": claim["version"]}, format="json")
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"
    ok = b.post(f"/api/v1/moderation/items/{item.id}/decide/", {"decision": "approve", "version": claim_b["version"]}, format="json")
    assert ok.status_code == 200 and ok.json()["state"] == "decided"
    again = b.post(f"/api/v1/moderation/items/{item.id}/decide/", {"decision": "approve", "version": ok.json()["version"]}, format="json")
    assert again.json()["error"]["code"] == "item_closed"
    assert Post.objects.get(pk=item.post_id).state == "published"
    actions = list(AuditEntry.objects.filter(item_id=item.id).values_list("action", flat=True))
    assert actions == ["item.claimed", "item.claim_expired", "item.claimed", "item.decided"]


def test_expired_claim_can_be_taken_without_the_sweeper(make_user, client_for, make_board, post_thread, moderator):
    from accounts.models import Role

    other = make_user(Role.MODERATOR)
    item = QueueItem.objects.get(post_id=post_thread(make_user(), make_board("pre"))["first_post"]["id"])
    client_for(moderator).post(f"/api/v1/moderation/items/{item.id}/claim/")
    QueueItem.objects.filter(pk=item.id).update(claim_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client_for(other).post(f"/api/v1/moderation/items/{item.id}/claim/").json()["claimed_by"] == other.id


def test_approve_notifies_author(make_user, client_for, make_board, post_thread, moderator, decide):
    author = make_user()
    thread = post_thread(author, make_board("pre"))
    item = QueueItem.objects.get(post_id=thread["first_post"]["id"])
    assert decide(moderator, item.id, "approve").status_code == 200
    assert client_for(make_user()).get(f"/api/v1/forums/threads/{thread['id']}/").json()["first_post"]["state"] == "published"
    assert Notification.objects.filter(user=author, kind="post_approved").exists()


def test_approve_with_redaction(make_user, client_for, make_board, post_thread, moderator, decide):
    thread = post_thread(make_user(), make_board("auto"), body="email me at sam@example.com please")
    item = QueueItem.objects.get(post_id=thread["first_post"]["id"])
    assert decide(moderator, item.id, "approve_edited").status_code == 200
    post = Post.objects.get(pk=item.post_id)
    assert post.state == "published" and "sam@example.com" not in post.body and "[EMAIL]" in post.body


def test_reject_with_reason_and_kind_message(make_user, client_for, make_board, post_thread, moderator, decide):
    author = make_user()
    thread = post_thread(author, make_board("post"), body="buy cheap followers now loser")
    item = QueueItem.objects.get(post_id=thread["first_post"]["id"])
    bad = decide(moderator, item.id, "reject", reason="nope")
    assert bad.status_code == 400
    resp = client_for(moderator).post(f"/api/v1/moderation/items/{item.id}/decide/", {"decision": "reject", "reason": "spam", "version": QueueItem.objects.get(pk=item.id).version}, format="json")
    assert resp.status_code == 200
    mine = client_for(author).get(f"/api/v1/forums/posts/{item.post_id}/").json()
    assert mine["state"] == "rejected" and mine["reject_reason"] == "spam" and "spam" in mine["reject_message"]
    assert Notification.objects.get(user=author, kind="post_rejected").data["reason"] == "spam"
    assert client_for(make_user()).get(f"/api/v1/forums/threads/{thread['id']}/").status_code == 404


def test_escalate_to_clinician(make_user, make_board, post_thread, moderator, decide):
    thread = post_thread(make_user(), make_board("pre"), body="things at home are bad and I don't feel safe")
    item = QueueItem.objects.filter(post_id=thread["first_post"]["id"]).first()
    assert decide(moderator, item.id, "escalate").status_code == 200
    assert Escalation.objects.filter(source_type="forum_post", source_id=item.post_id).exists()
    assert Post.objects.get(pk=item.post_id).state == "held"


def test_report_merge_and_worried_goes_to_care(make_user, client_for, make_board, post_thread, moderator):
    thread = post_thread(make_user(), make_board("auto"), body="honestly nobody likes you")
    post_id = thread["first_post"]["id"]
    r1, r2 = make_user(), make_user()
    for reporter in (r1, r2, r1):
        resp = client_for(reporter).post("/api/v1/moderation/reports/", {"post_id": post_id, "reason": "bullying", "note": "mean"}, format="json")
        assert resp.status_code == 201
    items = QueueItem.objects.filter(post_id=post_id, queue="sanction")
    assert items.count() == 1 and items[0].report_count == 2 and Report.objects.filter(post_id=post_id).count() == 2
    assert items[0].reasons == ["report:bullying"]
    worried = client_for(make_user()).post("/api/v1/moderation/reports/", {"post_id": post_id, "reason": "worried"}, format="json")
    assert worried.status_code == 201
    assert QueueItem.objects.get(post_id=post_id, queue="care").report_count == 1
    assert Post.objects.get(pk=post_id).state == "held"
    bad = client_for(r1).post("/api/v1/moderation/reports/", {"post_id": post_id, "reason": "meh"}, format="json")
    assert bad.status_code == 400


def test_mute_blocks_posting_and_one_appeal_overturns(make_user, client_for, make_board, post_thread, moderator, decide):
    board = make_board("post")
    author = make_user()
    thread = post_thread(author, board, body="you idiot")
    item = QueueItem.objects.get(post_id=thread["first_post"]["id"])
    assert decide(moderator, item.id, "mute", reason="bullying", hours=2).status_code == 200
    sanction = Sanction.objects.get(user=author)
    assert sanction.kind == "mute" and sanction.ends_at > timezone.now()
    blocked = client_for(author).post(f"/api/v1/forums/boards/{board.id}/threads/", {"title": "t", "body": "b"}, format="json")
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "posting_muted"
    mine = client_for(author).get("/api/v1/moderation/sanctions/").json()["results"]
    assert [s["id"] for s in mine] == [sanction.id]
    assert client_for(make_user()).post(f"/api/v1/moderation/sanctions/{sanction.id}/appeal/", {"text": "x"}, format="json").status_code == 404
    appeal = client_for(author).post(f"/api/v1/moderation/sanctions/{sanction.id}/appeal/", {"text": "I was joking with my friend"}, format="json")
    assert appeal.status_code == 201
    twice = client_for(author).post(f"/api/v1/moderation/sanctions/{sanction.id}/appeal/", {"text": "again"}, format="json")
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "appeal_exists"
    pending = client_for(moderator).get("/api/v1/moderation/appeals/").json()["results"]
    assert [a["id"] for a in pending] == [appeal.json()["id"]]
    done = client_for(moderator).post(f"/api/v1/moderation/appeals/{appeal.json()['id']}/decide/", {"outcome": "overturned", "note": "fair"}, format="json")
    assert done.status_code == 200 and Appeal.objects.get().state == "overturned"
    post_thread(author, board, body="sorry everyone")
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"sanction.issued", "appeal.filed", "appeal.decided", "item.decided"} <= actions
    with pytest.raises(RuntimeError):
        AuditEntry.objects.first().save()


def test_suspension_blocks_posting_and_reacting(make_user, client_for, make_board, post_thread, moderator, decide):
    board = make_board("post")
    author = make_user()
    thread = post_thread(author, board, body="you loser")
    item = QueueItem.objects.get(post_id=thread["first_post"]["id"])
    assert decide(moderator, item.id, "suspend", reason="bullying").status_code == 200
    resp = client_for(author).post(f"/api/v1/forums/threads/{thread['id']}/posts/", {"body": "b"}, format="json")
    assert resp.status_code in (403, 404)
    other = post_thread(make_user(), board, body="hi")
    react = client_for(author).post(f"/api/v1/forums/posts/{other['first_post']['id']}/reactions/", {"kind": "hug"}, format="json")
    assert react.json()["error"]["code"] == "account_suspended"


def test_watched_words_block_replace_hold_flag(make_user, client_for, make_board, post_thread, moderator):
    mod = client_for(moderator)
    for phrase, action, extra in [("badword", "block", {}), ("darn", "replace", {"replacement": "d**n"}), ("meetup", "hold", {}), ("snapchat", "flag", {})]:
        assert mod.post("/api/v1/moderation/watched-words/", {"phrase": phrase, "action": action, **extra}, format="json").status_code == 201
    assert mod.post("/api/v1/moderation/watched-words/", {"phrase": "BADWORD", "action": "flag"}, format="json").status_code == 400
    author = make_user()
    board = make_board("post")
    blocked = client_for(author).post(f"/api/v1/forums/boards/{board.id}/threads/", {"title": "t", "body": "a BadWord here"}, format="json")
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == "post_blocked"
    replaced = post_thread(author, board, body="oh darn it")
    assert replaced["first_post"]["body"] == "oh d**n it" and replaced["first_post"]["state"] == "published"
    held = post_thread(author, board, body="anyone want a meetup")
    assert held["first_post"]["state"] == "held"
    assert "watched_word:hold" in QueueItem.objects.get(post_id=held["first_post"]["id"]).reasons
    flagged = post_thread(author, board, body="add me on snapchat")
    assert flagged["first_post"]["state"] == "published"
    assert "watched_word:flag" in QueueItem.objects.get(post_id=flagged["first_post"]["id"]).reasons
    word_id = mod.get("/api/v1/moderation/watched-words/").json()["results"][0]["id"]
    assert mod.delete(f"/api/v1/moderation/watched-words/{word_id}/").status_code == 204
    assert client_for(author).post("/api/v1/moderation/watched-words/", {"phrase": "x", "action": "flag"}, format="json").status_code == 403


def test_edit_closes_stale_sanction_item_and_deleting_keeps_care(make_user, client_for, make_board, post_thread):
    author = make_user()
    board = make_board("auto")
    thread = post_thread(author, board, body="you idiot")
    post_id = thread["first_post"]["id"]
    client_for(author).patch(f"/api/v1/forums/posts/{post_id}/", {"body": "sorry, I want to die"}, format="json")
    states = dict(QueueItem.objects.filter(post_id=post_id).values_list("queue", "state"))
    assert states == {"sanction": "closed", "care": "open"}
    client_for(author).delete(f"/api/v1/forums/posts/{post_id}/")
    assert QueueItem.objects.get(post_id=post_id, queue="care").state == "open"


def test_metrics_for_supervisors(make_user, client_for, make_board, post_thread, moderator, decide):
    from accounts.models import Role

    board = make_board("pre")
    ids = [QueueItem.objects.get(post_id=post_thread(make_user(), board)["first_post"]["id"]).id for _ in range(3)]
    post_thread(make_user(), board, body="I want to kill myself tonight")
    QueueItem.objects.filter(pk=ids[0]).update(created_at=timezone.now() - dt.timedelta(hours=2))
    decide(moderator, ids[1], "approve")
    metrics = client_for(make_user(Role.SUPERVISOR)).get("/api/v1/moderation/metrics/").json()
    assert metrics["queues"]["sanction"]["length"] == 2 and metrics["queues"]["care"]["length"] == 1
    assert metrics["queues"]["sanction"]["past_target"] == 1
    assert metrics["queues"]["sanction"]["time_to_decision_s"]["p50"] is not None
    assert client_for(make_user()).get("/api/v1/moderation/metrics/").status_code == 403
