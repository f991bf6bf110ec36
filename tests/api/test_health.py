import pytest


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_dependency(client):
    resp = client.get("/readyz")
    body = resp.json()
    assert set(body["checks"]) == {"database", "channel_layer", "broker", "workers"}
    assert resp.status_code == 200, body


@pytest.mark.real
def test_readyz_on_real_services_sees_a_worker(client, celery_worker, settings):
    body = client.get("/readyz").json()
    assert body["checks"]["database"]["vendor"] == "postgresql"
    expected = {"pubsub": "PubSubChannelLayer", "core": "RedisChannelLayer"}[settings.CHANNEL_LAYER]
    assert body["checks"]["channel_layer"]["backend"] == expected
    assert body["checks"]["workers"]["count"] >= 1
    assert body["status"] == "ready"


@pytest.mark.real
def test_readyz_without_a_worker_is_not_ready(client, settings):
    from config.celery import app

    app.conf.task_always_eager = False
    try:
        resp = client.get("/readyz")
    finally:
        app.conf.task_always_eager = True
    assert resp.status_code == 503
    assert resp.json()["checks"]["workers"]["ok"] is False
