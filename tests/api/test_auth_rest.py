"""REST auth contract: register, login, token (Token and Bearer), logout, /me, errors."""

import pytest

from accounts.models import Role

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/login/"


def register(api, **over):
    body = {"handle": "quiet_otter", "password": "long-enough-pw", "birth_year": 2009, "birth_month": 6, **over}
    return api.post(REGISTER, body, format="json")


def test_register_then_login_and_me(api):
    resp = register(api)
    assert resp.status_code == 201, resp.json()
    assert resp.json()["role"] == "young_person" and "password" not in resp.json()
    login = api.post(LOGIN, {"handle": "Quiet_Otter", "password": "long-enough-pw"}, format="json")
    assert login.status_code == 200
    token = login.json()["token"]
    for scheme in ("Token", "Bearer"):
        api.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
        me = api.get("/api/v1/me/")
        assert me.status_code == 200 and me.json()["handle"] == "quiet_otter"
        assert me.json()["role"] == "young_person"


@pytest.mark.parametrize(
    "handle, fragment",
    [
        ("jay07700900123", "phone number"),
        ("call_0770_090_0123", "phone number"),
        ("me@example.com", "email"),
        ("admin", "reserved"),
        ("the.moderator", "reserved"),
        ("snap_jaydenx", "social"),
        ("x", "3-24"),
        ("bad handle!", "3-24"),
    ],
)
def test_identifying_or_reserved_handles_are_rejected(api, handle, fragment):
    resp = register(api, handle=handle)
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"]["code"] == "invalid_handle"
    assert fragment in body["error"]["detail"]


def test_duplicate_handle_is_case_insensitive(api):
    assert register(api).status_code == 201
    resp = register(api, handle="QUIET_OTTER")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "handle_taken"


@pytest.mark.parametrize("year", [1990, 2024])
def test_age_outside_service_range_is_refused(api, year):
    resp = register(api, birth_year=year)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "age_out_of_range"


def test_weak_password_and_missing_fields(api):
    resp = register(api, password="123")
    assert resp.json()["error"]["code"] == "invalid_password"
    resp = api.post(REGISTER, {"handle": "abc_def"}, format="json")
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == "validation_error" and "password" in err["detail"]


def test_wrong_password_and_unknown_handle_look_the_same(api, make_user):
    make_user(handle="known_one")
    a = api.post(LOGIN, {"handle": "known_one", "password": "wrong-password"}, format="json")
    b = api.post(LOGIN, {"handle": "nobody_here", "password": "wrong-password"}, format="json")
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()
    assert a.json()["error"]["code"] == "authentication_failed"


def test_login_brute_force_is_locked_per_handle_and_address(api, make_user):
    make_user(handle="target_one", password="right-password-1")
    for _ in range(5):
        api.post(LOGIN, {"handle": "target_one", "password": "nope-nope"}, format="json")
    locked = api.post(LOGIN, {"handle": "target_one", "password": "right-password-1"}, format="json")
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "login_locked"
    # Someone else at another address is not locked out by it.
    other = api.post(LOGIN, {"handle": "target_one", "password": "right-password-1"}, format="json", REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 200


def test_login_counters_use_plain_short_cache_keys_whatever_the_handle(api, make_user):
    """The handle is typed by anyone: the lock-out counters' cache keys never carry it raw
    (memcached refuses spaces, control characters and keys over 250 bytes; a cache dump
    would list the handles people tried). Case and padding still count as the same handle."""
    import re

    from accounts.services import _keys

    for handle in ("Target One \x00\x17 \U000ca251" * 20, "target_one"):
        for key in _keys(handle, "2001:db8::1").values():
            assert len(key) <= 250 and re.fullmatch(r"[\x21-\x7e]+", key) and "target" not in key.lower(), key
    assert _keys("  Target_One ", "a") == _keys("target_one", "a")
    weird = api.post(LOGIN, {"handle": "no such \x07 handle " * 30, "password": "x"}, format="json")
    assert weird.status_code in (400, 401), weird.content


def test_logout_revokes_the_token(api, make_user):
    make_user(handle="leaving_soon", password="pass-word-1234")
    token = api.post(LOGIN, {"handle": "leaving_soon", "password": "pass-word-1234"}, format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.post("/api/v1/auth/logout/").status_code == 204
    resp = api.get("/api/v1/me/")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "authentication_failed"


def test_deactivated_user_token_stops_working(client_for, make_user):
    user = make_user()
    client = client_for(user)
    user.is_active = False
    user.save()
    assert client.get("/api/v1/me/").status_code == 401


@pytest.mark.parametrize("role", Role.values)
def test_every_role_can_read_me(client_for, make_user, role):
    user = make_user(role)
    resp = client_for(user).get("/api/v1/me/")
    assert resp.status_code == 200
    assert resp.json()["role"] == role


def test_errors_share_one_format(api):
    unauth = api.get("/api/v1/me/")
    assert unauth.status_code == 401 and set(unauth.json()["error"]) == {"code", "detail"}
    bad_json = api.post(LOGIN, data="{nope", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    wrong_method = api.get(LOGIN)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    missing = api.get("/api/v1/no-such-route/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad_token = api.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer 123")
    assert bad_token.json()["error"]["code"] == "authentication_failed"


def test_throttling_gives_explicit_error(api, settings):
    from rest_framework.settings import api_settings

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": "100/min", "user": "100/min", "auth": "2/min"}}
    api_settings.reload()
    from rest_framework.throttling import ScopedRateThrottle

    ScopedRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        codes = [api.post(LOGIN, {"handle": "a_b_c", "password": "x"}, format="json").status_code for _ in range(3)]
        assert codes[-1] == 429
        resp = api.post(LOGIN, {"handle": "a_b_c", "password": "x"}, format="json")
        assert resp.json()["error"]["code"] == "throttled" and "Retry-After" in resp.headers
    finally:
        ScopedRateThrottle.THROTTLE_RATES = {"anon": "10000/min", "user": "10000/min", "auth": "10000/min"}


def test_schema_and_docs_are_served(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/auth/login/" in paths and "/api/v1/me/" in paths
    docs = api.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    assert b"cdn.jsdelivr" not in docs.content  # no third-party requests


def test_browsable_api_is_off_outside_development(api):
    resp = api.get("/api/v1/me/", HTTP_ACCEPT="text/html")
    assert resp["Content-Type"].startswith("application/json")
