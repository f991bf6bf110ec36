"""The REST mirror: request, list, transcript pages, send, feedback, notes, audit."""

from __future__ import annotations

import uuid

import pytest
import yaml

from accounts.models import Role
from chat.models import TranscriptAccess

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def people(make_user, client_for):
    users = {
        "yp": make_user(Role.YOUNG_PERSON),
        "co": make_user(Role.COUNSELLOR),
        "sup": make_user(Role.SUPERVISOR),
        "other_yp": make_user(Role.YOUNG_PERSON),
        "other_co": make_user(Role.COUNSELLOR),
    }
    return {name: (user, client_for(user)) for name, user in users.items()}


def _assigned(people):
    yp, co = people["yp"][1], people["co"][1]
    created = yp.post("/api/v1/chat/sessions/", {"topic": "friends", "body": "I fell out with my friends"}, format="json")
    assert created.status_code == 201, created.json()
    assert co.post("/api/v1/chat/status/", {"status": "available"}, format="json").status_code == 200
    accepted = co.post("/api/v1/chat/sessions/accept/", {}, format="json")
    assert accepted.status_code == 200, accepted.json()
    return created.json()


def test_request_list_transcript_send_end_feedback_notes(people):
    yp, co, sup = people["yp"][1], people["co"][1], people["sup"][1]
    session = _assigned(people)
    sid, conv = session["session"], session["conversation"]
    again = yp.post("/api/v1/chat/sessions/", {"body": "hello?"}, format="json")
    assert again.status_code == 200 and again.json()["session"] == sid and again.json()["resumed"], again.json()

    mine = yp.get("/api/v1/chat/sessions/").json()["results"]
    assert [s["session"] for s in mine] == [sid] and mine[0]["state"] == "active" and "risk_level" not in mine[0]
    assert co.get(f"/api/v1/chat/sessions/{sid}/").json()["risk_level"] == "none"

    cmid = str(uuid.uuid4())
    sent = yp.post(f"/api/v1/chat/conversations/{conv}/messages/", {"client_msg_id": cmid, "body": "thanks"}, format="json")
    assert sent.status_code == 201
    retry = yp.post(f"/api/v1/chat/conversations/{conv}/messages/", {"client_msg_id": cmid, "body": "thanks"}, format="json")
    assert retry.status_code == 200 and retry.json()["seq"] == sent.json()["seq"] and retry.json()["duplicate"]
    for i in range(3):
        co.post(f"/api/v1/chat/conversations/{conv}/messages/", {"client_msg_id": str(uuid.uuid4()), "body": f"c{i}"}, format="json")

    page1 = yp.get(f"/api/v1/chat/conversations/{conv}/messages/?after_seq=0&limit=2").json()
    assert [m["seq"] for m in page1["results"]] == [1, 2] and page1["has_more"] and page1["next_after_seq"] == 2
    page2 = yp.get(f"/api/v1/chat/conversations/{conv}/messages/?after_seq=2&limit=100").json()
    assert [m["seq"] for m in page2["results"]] == list(range(3, page2["last_seq"] + 1)) and not page2["has_more"]
    assert all("risk" not in m for m in page1["results"] + page2["results"])
    staff_view = co.get(f"/api/v1/chat/conversations/{conv}/messages/").json()["results"]
    assert "risk" in staff_view[0]

    note = co.post(f"/api/v1/chat/sessions/{sid}/notes/", {"body": "Friendship conflict"}, format="json")
    assert note.status_code == 201
    assert [n["body"] for n in sup.get(f"/api/v1/chat/sessions/{sid}/notes/").json()["results"]] == ["Friendship conflict"]
    assert yp.get(f"/api/v1/chat/sessions/{sid}/notes/").json()["error"]["code"] == "not_participant"

    early = yp.post(f"/api/v1/chat/sessions/{sid}/feedback/", {"rating": 4}, format="json")
    assert early.status_code == 400
    ended = yp.post(f"/api/v1/chat/sessions/{sid}/end/", {"reason": "feel better"}, format="json")
    assert ended.json()["state"] == "ended" and ended.json()["end_reason"] == "feel better"
    bad = yp.post(f"/api/v1/chat/sessions/{sid}/feedback/", {"rating": 9}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
    fb = yp.post(f"/api/v1/chat/sessions/{sid}/feedback/", {"rating": 4, "comment": "kind"}, format="json")
    assert fb.status_code == 201
    assert yp.post(f"/api/v1/chat/sessions/{sid}/feedback/", {"rating": 4}, format="json").status_code == 409


def test_supervisor_reads_are_audited_and_others_are_refused(people):
    session = _assigned(people)
    sid, conv = session["session"], session["conversation"]
    other_yp, other_co, sup = people["other_yp"][1], people["other_co"][1], people["sup"][1]
    for client in (other_yp, other_co):
        resp = client.get(f"/api/v1/chat/conversations/{conv}/messages/")
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "not_participant"
        resp = client.post(f"/api/v1/chat/conversations/{conv}/messages/", {"client_msg_id": str(uuid.uuid4()), "body": "x"}, format="json")
        assert resp.json()["error"]["code"] == "not_participant"
        assert client.get(f"/api/v1/chat/sessions/{sid}/").json()["error"]["code"] == "not_participant"
        assert client.post(f"/api/v1/chat/sessions/{sid}/end/", {}, format="json").json()["error"]["code"] == "not_participant"
    assert other_yp.post(f"/api/v1/chat/sessions/{sid}/feedback/", {"rating": 1}, format="json").status_code == 403
    assert other_co.post(f"/api/v1/chat/sessions/{sid}/notes/", {"body": "x"}, format="json").status_code == 403
    assert other_yp.get("/api/v1/chat/queue/").json()["error"]["code"] == "wrong_role"
    assert people["co"][1].post("/api/v1/chat/sessions/", {"body": "x"}, format="json").json()["error"]["code"] == "wrong_role"
    assert other_yp.get("/api/v1/chat/sessions/999999/").json()["error"]["code"] == "not_participant"

    assert sup.get(f"/api/v1/chat/conversations/{conv}/messages/").status_code == 200
    assert TranscriptAccess.objects.filter(actor=people["sup"][0], conversation_id=conv, via="rest").count() == 1
    overview = sup.get("/api/v1/chat/sessions/?all=1&state=active").json()["results"]
    assert [s["session"] for s in overview] == [sid]


def test_rest_errors_body_too_long_and_rate_limited(people, settings):
    settings.CHAT_MESSAGE_RATE = 3  # the request's opening message counts: two more fit
    settings.CHAT_MESSAGE_RATE_WINDOW_S = 3600  # sliding window: the sends all fall in it
    session = _assigned(people)
    yp = people["yp"][1]
    url = f"/api/v1/chat/conversations/{session['conversation']}/messages/"
    long = yp.post(url, {"client_msg_id": str(uuid.uuid4()), "body": "y" * 4001}, format="json")
    assert long.status_code == 400 and long.json()["error"]["code"] == "body_too_long"
    codes = [yp.post(url, {"client_msg_id": str(uuid.uuid4()), "body": "hi"}, format="json").status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    too_long = yp.post("/api/v1/chat/sessions/", {"body": "z" * 4001}, format="json")
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "body_too_long"


def test_queue_and_asyncapi_document(people, api):
    people["yp"][1].post("/api/v1/chat/sessions/", {"body": "hi"}, format="json")
    queue = people["co"][1].get("/api/v1/chat/queue/").json()
    assert queue["waiting"] == 1 and queue["queue"][0]["position"] == 1
    resp = api.get("/api/v1/asyncapi.yaml")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/yaml")
    doc = yaml.safe_load(resp.content)
    assert doc["asyncapi"].startswith("3.")
    names = {m["payload"]["properties"]["type"]["const"] for m in doc["components"]["messages"].values()}
    assert {"message.send", "message.ack", "message.new", "sync", "sync.result", "error", "session.request",
            "session.queued", "session.position", "session.assigned", "session.transferred", "session.end",
            "session.ended", "typing", "read"} <= names
    from api import wsproto

    wsproto.load_handlers()
    chat_types = {t for t, route in wsproto._ROUTES.items() if route.handler.__module__ == "chat.ws"}
    assert chat_types <= names, chat_types - names


def test_openapi_schema_still_builds(api, people):
    resp = people["co"][1].get("/api/v1/schema/")
    assert resp.status_code == 200
    assert b"/api/v1/chat/sessions/" in resp.content
