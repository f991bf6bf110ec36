"""The clinician's side over the stable interfaces: websocket frames and REST."""

import pytest
from channels.db import database_sync_to_async

from accounts.models import Role, Tier
from tests.conftest import ws_open, ws_receive_until
from triage.models import EscalationAudit

pytestmark = pytest.mark.django_db(transaction=True)


async def test_live_delivery_acknowledge_first_wins(rota, crisis, token_for):
    primary, backup = rota[Tier.PRIMARY], rota[Tier.BACKUP]
    ws_primary = await ws_open(await database_sync_to_async(token_for)(primary))
    ws_backup = await ws_open(await database_sync_to_async(token_for)(backup))
    listing = await ws_receive_until(ws_primary, "escalation.list")
    assert listing["escalations"] == [] and listing["nobody_on_duty"] is False
    await ws_receive_until(ws_backup, "escalation.list")

    escalation = await database_sync_to_async(crisis)()
    new = await ws_receive_until(ws_primary, "escalation.new")
    assert new["escalation"]["id"] == escalation.id
    assert new["escalation"]["state"] == "open" and new["escalation"]["evidence"]

    await ws_primary.send_json_to({"type": "escalation.acknowledge", "escalation": escalation.id, "ref": "a1"})
    state = await ws_receive_until(ws_primary, "escalation.state")
    assert state["ref"] == "a1" and state["escalation"]["owner"]["id"] == primary.id
    seen = await ws_receive_until(ws_backup, "escalation.acknowledged")
    assert seen["escalation"]["owner"]["handle"] == primary.handle  # others see who owns it

    await ws_backup.send_json_to({"type": "escalation.acknowledge", "escalation": escalation.id, "ref": "b1"})
    err = await ws_receive_until(ws_backup, "error")
    assert err["code"] == "conflict" and err["ref"] == "b1"

    await ws_primary.send_json_to({"type": "escalation.resolve", "escalation": escalation.id, "ref": "r0"})
    assert (await ws_receive_until(ws_primary, "error"))["code"] == "validation_error"
    await ws_primary.send_json_to({"type": "escalation.resolve", "escalation": escalation.id, "outcome": "safety_plan", "note": "ok", "ref": "r1"})
    resolved = await ws_receive_until(ws_primary, "escalation.state")
    assert resolved["escalation"]["state"] == "resolved"
    await ws_primary.disconnect()
    await ws_backup.disconnect()


async def test_reconnecting_clinician_gets_open_escalations(rota, crisis, token_for):
    escalation = await database_sync_to_async(crisis)()
    ws = await ws_open(await database_sync_to_async(token_for)(rota[Tier.MANAGER]))
    listing = await ws_receive_until(ws, "escalation.list")
    assert [e["id"] for e in listing["escalations"]] == [escalation.id]
    await ws.disconnect()


async def test_young_person_cannot_use_escalation_frames(make_user, token_for, crisis):
    escalation = await database_sync_to_async(crisis)()
    young = await database_sync_to_async(make_user)()
    ws = await ws_open(await database_sync_to_async(token_for)(young))
    await ws.send_json_to({"type": "escalation.acknowledge", "escalation": escalation.id})
    assert (await ws_receive_until(ws, "error"))["code"] == "wrong_role"
    await ws.disconnect()


def test_rest_flow_and_audit(rota, crisis, client_for, make_user):
    escalation = crisis()
    primary, backup = rota[Tier.PRIMARY], rota[Tier.BACKUP]
    doc = client_for(primary)
    listed = doc.get("/api/v1/escalations/").json()
    assert [e["id"] for e in listed["results"]] == [escalation.id]
    detail = doc.get(f"/api/v1/escalations/{escalation.id}/")
    assert detail.status_code == 200 and "context" in detail.json()
    assert doc.post(f"/api/v1/escalations/{escalation.id}/acknowledge/").json()["state"] == "acknowledged"
    other = client_for(backup).post(f"/api/v1/escalations/{escalation.id}/acknowledge/")
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
    assert doc.post(f"/api/v1/escalations/{escalation.id}/notes/", {"body": "called her back"}, format="json").status_code == 201
    handed = doc.post(f"/api/v1/escalations/{escalation.id}/handover/", {"to": backup.id, "note": "end of shift"}, format="json")
    assert handed.json()["owner"]["id"] == backup.id
    missing = client_for(backup).post(f"/api/v1/escalations/{escalation.id}/resolve/", {}, format="json")
    assert missing.status_code == 400 and "outcome" in missing.json()["error"]["detail"]
    done = client_for(backup).post(
        f"/api/v1/escalations/{escalation.id}/resolve/", {"outcome": "safeguarding_referral", "note": "referred"}, format="json"
    )
    assert done.json()["state"] == "resolved"

    assert doc.get(f"/api/v1/escalations/{escalation.id}/audit/").json()["error"]["code"] == "wrong_role"
    supervisor = client_for(make_user(Role.SUPERVISOR))
    trail = supervisor.get(f"/api/v1/escalations/{escalation.id}/audit/").json()
    actions = [row["action"] for row in trail]
    for expected in ("created", "notified", "viewed", "acknowledged", "note", "handed_over", "resolved"):
        assert expected in actions
    assert EscalationAudit.objects.filter(escalation=escalation, action="viewed", actor=primary).exists()


def test_rest_is_for_staff_only(crisis, client_for, make_user):
    escalation = crisis()
    young = client_for(make_user())
    assert young.get("/api/v1/escalations/").json()["error"]["code"] == "wrong_role"
    assert young.get(f"/api/v1/escalations/{escalation.id}/").status_code == 403
    counsellor = client_for(make_user(Role.COUNSELLOR))
    assert counsellor.post(f"/api/v1/escalations/{escalation.id}/acknowledge/").status_code == 403


def test_rota_rest(make_user, client_for):
    supervisor = client_for(make_user(Role.SUPERVISOR))
    make_user(Role.CLINICIAN, handle="dr_rest")
    created = supervisor.post(
        "/api/v1/rota/shifts/",
        {"clinician": "dr_rest", "tier": "primary", "start": "2030-05-01T08:00:00Z", "end": "2030-05-01T20:00:00Z"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert supervisor.get("/api/v1/rota/shifts/").json()[0]["clinician"] == "dr_rest"
    assert supervisor.get("/api/v1/rota/on-duty/").json()["nobody_on_duty"] is True
    gaps = supervisor.get("/api/v1/rota/coverage/").json()["gaps"]
    assert len(gaps) == 1  # the whole next week: nobody is on before 2030
    clinician = client_for(make_user(Role.CLINICIAN))
    assert clinician.post("/api/v1/rota/shifts/", {}, format="json").json()["error"]["code"] == "wrong_role"
    assert supervisor.delete(f"/api/v1/rota/shifts/{created.json()['id']}/").status_code == 204


def test_open_list_puts_unacknowledged_first(rota, crisis, client_for):
    first, second = crisis(), crisis()
    from triage import escalations as svc

    svc.escalation_acknowledge(user=rota[Tier.PRIMARY], escalation_id=first.id)
    listed = client_for(rota[Tier.BACKUP]).get("/api/v1/escalations/").json()["results"]
    assert [e["id"] for e in listed] == [second.id, first.id]
