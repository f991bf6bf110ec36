"""Forums over REST: boards, threads, replies, policies, edits, deletes, reactions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from forums.models import Notification, Post
from forums.selectors import triage_source_post
from moderation.models import CheckState, PostCheck, QueueItem

pytestmark = pytest.mark.django_db(transaction=True)


def test_boards_list_policy_and_age_bands(make_user, client_for, make_board, post_thread):
    open_board = make_board("auto")
    teens = make_board("pre", min_age=10, max_age=13)
    adults = make_board("pre", min_age=18, max_age=25)
    young = make_user(birth_year=timezone.now().year - 12, birth_month=1)
    resp = client_for(young).get("/api/v1/forums/boards/")
    by_id = {b["id"]: b for b in resp.json()["results"]}
    assert by_id[open_board.id]["policy"] == "auto"
    assert teens.id in by_id and adults.id not in by_id
    refused = client_for(young).post(f"/api/v1/forums/boards/{adults.id}/threads/", {"title": "t", "body": "b"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "board_age_restricted"
    post_thread(young, teens)


def test_pre_board_holds_every_post_visible_to_author_and_moderators(make_user, client_for, make_board, post_thread, moderator):
    board = make_board("pre")
    author, other = make_user(), make_user()
    thread = post_thread(author, board)
    assert thread["first_post"]["state"] == "held" and thread["first_post"]["waiting"] is True
    assert client_for(other).get(f"/api/v1/forums/threads/{thread['id']}/").status_code == 404
    assert client_for(other).get(f"/api/v1/forums/boards/{board.id}/threads/").json()["results"] == []
    mine = client_for(author).get(f"/api/v1/forums/threads/{thread['id']}/posts/").json()["results"]
    assert [p["waiting"] for p in mine] == [True]
    items = client_for(moderator).get("/api/v1/moderation/items/?queue=sanction").json()["results"]
    assert items[0]["reasons"] == ["pre_moderation"] and items[0]["post"]["id"] == thread["first_post"]["id"]


def test_auto_board_publishes_clean_and_holds_personal_details(make_user, client_for, make_board, post_thread, moderator):
    board = make_board("auto")
    author, reader = make_user(), make_user()
    clean = post_thread(author, board)
    assert clean["first_post"]["state"] == "published"
    listed = client_for(reader).get(f"/api/v1/forums/boards/{board.id}/threads/").json()["results"]
    assert [t["id"] for t in listed] == [clean["id"]]
    pii = post_thread(author, board, body="text me on 07700 900123 if you want to talk")
    assert pii["first_post"]["state"] == "held"
    item = QueueItem.objects.get(post_id=pii["first_post"]["id"])
    assert item.queue == "sanction" and "personal_details" in item.reasons
    assert item.pii[0]["type"] == "phone" and "07700 900123" not in item.redaction_suggestion


def test_post_board_publishes_first_and_reviews_toxic_after(make_user, make_board, post_thread):
    board = make_board("post")
    thread = post_thread(make_user(), board, body="you are such an idiot")
    assert thread["first_post"]["state"] == "published"
    item = QueueItem.objects.get(post_id=thread["first_post"]["id"])
    assert item.queue == "sanction" and "toxicity:insult" in item.reasons


def test_pipeline_down_posts_wait_held_then_sweeper_delivers(make_user, client_for, make_board, monkeypatch):
    from moderation import services, tasks

    board = make_board("auto")
    author = make_user()

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.assess_post, "delay", broker_down)
    resp = client_for(author).post(f"/api/v1/forums/boards/{board.id}/threads/", {"title": "t", "body": "hello all"}, format="json")
    assert resp.status_code == 201 and resp.json()["first_post"]["state"] == "held"
    check = PostCheck.objects.get(post_id=resp.json()["first_post"]["id"])
    assert check.state == CheckState.PENDING and check.attempts == 1
    monkeypatch.undo()
    from tests.forums.helpers import fake_assess_full
    from triage import engine

    monkeypatch.setattr(engine, "assess_full", fake_assess_full)
    assert services.checks_sweep(older_than_s=0) == 1
    check.refresh_from_db()
    assert check.state == CheckState.DONE and Post.objects.get(pk=check.post_id).state == "published"
    assert services.checks_sweep(older_than_s=0) == 0
    assert services.post_assess(post_id=check.post_id) == "noop"  # idempotent


def test_sweeper_routes_to_a_person_after_max_attempts(make_user, make_board, post_thread, monkeypatch, settings):
    from moderation import services, tasks

    settings.MODERATION_MAX_ATTEMPTS = 1
    monkeypatch.setattr(tasks.assess_post, "delay", lambda *a: (_ for _ in ()).throw(ConnectionError()))
    thread = post_thread(make_user(), make_board("auto"))
    services.checks_sweep(older_than_s=0)
    item = QueueItem.objects.get(post_id=thread["first_post"]["id"])
    assert "not_fully_checked" in item.reasons
    assert Post.objects.get(pk=thread["first_post"]["id"]).state == "held"


def test_replies_pagination_reactions_and_reply_notification(make_user, client_for, make_board, post_thread):
    board = make_board("auto")
    author, replier = make_user(), make_user()
    thread = post_thread(author, board)
    for i in range(3):
        resp = client_for(replier).post(f"/api/v1/forums/threads/{thread['id']}/posts/", {"body": f"me too {i}"}, format="json")
        assert resp.status_code == 201 and resp.json()["state"] == "published"
    page = client_for(author).get(f"/api/v1/forums/threads/{thread['id']}/posts/?limit=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    post_id = page["results"][1]["id"]
    r = client_for(author).post(f"/api/v1/forums/posts/{post_id}/reactions/", {"kind": "hug"}, format="json")
    assert r.status_code == 201 and r.json()["reactions"]["hug"] == 1 and r.json()["my_reactions"] == ["hug"]
    assert client_for(author).post(f"/api/v1/forums/posts/{post_id}/reactions/", {"kind": "hug"}, format="json").status_code == 200
    assert client_for(author).post(f"/api/v1/forums/posts/{post_id}/reactions/", {"kind": "angry"}, format="json").status_code == 400
    assert client_for(author).delete(f"/api/v1/forums/posts/{post_id}/reactions/hug/").status_code == 204
    notes = client_for(author).get("/api/v1/forums/notifications/?unread=1").json()["results"]
    assert [n["kind"] for n in notes] == ["reply"] * 3 and notes[0]["thread_id"] == thread["id"]
    assert client_for(author).post("/api/v1/forums/notifications/read/", {}, format="json").json()["marked"] == 3
    assert thread["reply_count"] == 0
    assert client_for(author).get(f"/api/v1/forums/threads/{thread['id']}/").json()["reply_count"] == 3


def test_edit_is_remoderated_and_window_closes(make_user, client_for, make_board, post_thread, settings):
    board = make_board("auto")
    author = make_user()
    thread = post_thread(author, board)
    post_id = thread["first_post"]["id"]
    edited = client_for(author).patch(f"/api/v1/forums/posts/{post_id}/", {"body": "my email is sam@example.com"}, format="json")
    assert edited.status_code == 200 and edited.json()["state"] == "held" and edited.json()["revision"] == 2
    assert PostCheck.objects.filter(post_id=post_id).count() == 2
    other = make_user()
    assert client_for(other).get(f"/api/v1/forums/posts/{post_id}/").status_code == 404
    assert client_for(other).patch(f"/api/v1/forums/posts/{post_id}/", {"body": "x"}, format="json").status_code == 404
    Post.objects.filter(pk=post_id).update(created_at=timezone.now() - dt.timedelta(hours=2))
    late = client_for(author).patch(f"/api/v1/forums/posts/{post_id}/", {"body": "hi"}, format="json")
    assert late.status_code == 403 and late.json()["error"]["code"] == "edit_window_closed"


def test_soft_delete_hides_body_and_keeps_row(make_user, client_for, make_board, post_thread):
    board = make_board("auto")
    author, reader = make_user(), make_user()
    thread = post_thread(author, board)
    reply = client_for(author).post(f"/api/v1/forums/threads/{thread['id']}/posts/", {"body": "second"}, format="json").json()
    assert client_for(author).delete(f"/api/v1/forums/posts/{reply['id']}/").status_code == 204
    posts = client_for(reader).get(f"/api/v1/forums/threads/{thread['id']}/posts/").json()["results"]
    assert posts[1]["deleted"] is True and posts[1]["body"] == ""
    assert Post.objects.get(pk=reply["id"]).body == "second"


def test_triage_source_post_gives_previous_published_posts(make_user, client_for, make_board, post_thread):
    board = make_board("auto")
    author = make_user()
    thread = post_thread(author, board, body="first")
    ids = [client_for(author).post(f"/api/v1/forums/threads/{thread['id']}/posts/", {"body": f"p{i}"}, format="json").json()["id"] for i in range(6)]
    info = triage_source_post(ids[-1])
    assert info.text == "p5" and info.thread_id == thread["id"] and info.author_id == author.id
    assert [c["body"] for c in info.context] == ["p0", "p1", "p2", "p3", "p4"]
    assert set(info.context[0]) == {"sender", "role", "body", "sent_at"}
    assert triage_source_post(ids[-1], context=False).context == []  # the model layer reads only the text
    from triage.services import source_texts

    assert source_texts(source_type="forum_post", source_ids=ids[:2]) == {ids[0]: "p0", ids[1]: "p1"}
    assert Notification.objects.count() == 0  # own replies notify nobody
