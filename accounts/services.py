"""Account services: registration, staff provisioning, login, logout."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.counters import counter_incr
from config.realtime import close_user_sockets_on_commit

from .exceptions import (
    AgeOutOfRange,
    AuthenticationFailed,
    HandleTaken,
    InvalidPassword,
    LoginLocked,
)
from .handles import handle_check
from .models import STAFF_ROLES, AuthToken, Role, User
from .tokens import token_issue, token_revoke

MIN_AGE = getattr(settings, "MIN_AGE", 10)
MAX_AGE = getattr(settings, "MAX_AGE", 25)


def _password_check(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidPassword(" ".join(exc.messages)) from exc


def user_register(*, handle: str, password: str, birth_year: int, birth_month: int) -> User:
    """Register a young person. No real name, no email: a handle and month/year of birth."""
    handle = handle_check(handle)
    if not 1 <= birth_month <= 12:
        raise AgeOutOfRange("Birth month must be between 1 and 12.")
    user = User(handle=handle, role=Role.YOUNG_PERSON, birth_year=birth_year, birth_month=birth_month)
    age = user.age_on(timezone.localdate())
    if age is None or not MIN_AGE <= age <= MAX_AGE:
        raise AgeOutOfRange(
            f"This service is for people aged {MIN_AGE} to {MAX_AGE}. "
            "If you need help now, call Samaritans free on 116 123."
        )
    _password_check(password, user)
    user.set_password(password)
    if User.objects.filter(handle__iexact=handle).exists():
        raise HandleTaken()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # lost a race for the same handle
        raise HandleTaken() from exc
    return user


def user_provision(*, role: str, handle: str, password: str, display_name: str = "") -> tuple[User, bool]:
    """Create or update a user (operators provisioning staff). Idempotent: returns (user, created)."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(Role.values)}")
    user = User.objects.filter(handle__iexact=handle).first()
    created = user is None
    if user is None:
        user = User(handle=handle)
    user.role = role
    user.display_name = display_name or user.display_name or (handle if role in STAFF_ROLES else "")
    user.is_staff = role == Role.ADMIN
    user.is_superuser = role == Role.ADMIN
    user.is_active = True
    user.set_password(password)
    user.save()
    return user, created


# --- Login with brute-force protection ------------------------------------------------
# Failures are counted per (handle, address), per handle and per address. The pair
# locks quickly; the handle-wide lock is short, so an attacker elsewhere cannot keep a
# young person out of their account for long.
PAIR_LIMIT, HANDLE_LIMIT, ADDR_LIMIT = 5, 20, 50
WINDOW_S, HANDLE_LOCK_S = 15 * 60, 5 * 60


def _keys(handle: str, address: str) -> dict[str, str]:
    # The handle is whatever was typed: hashed, so a key is always short and plain (memcached
    # refuses spaces, control characters and keys over 250 bytes) and a cache dump does not
    # list the handles people tried.
    h = hashlib.blake2b((handle or "").strip().lower().encode(), digest_size=16).hexdigest()
    return {"pair": f"login:pair:{h}:{address}", "handle": f"login:handle:{h}", "addr": f"login:addr:{address}"}


def auth_login(*, handle: str, password: str, address: str = "") -> tuple[User, str]:
    """Check credentials and issue a token. Returns (user, token key)."""
    keys = _keys(handle, address)
    if (
        (cache.get(keys["pair"]) or 0) >= PAIR_LIMIT
        or (cache.get(keys["handle"]) or 0) >= HANDLE_LIMIT
        or (cache.get(keys["addr"]) or 0) >= ADDR_LIMIT
    ):
        raise LoginLocked()
    user = User.objects.filter(handle__iexact=(handle or "").strip()).first()
    if user is None or not user.is_active or not user.check_password(password or ""):
        if user is None:
            User().set_password(password or "")  # same cost either way: no handle oracle by timing
        counter_incr(keys["pair"], WINDOW_S)
        counter_incr(keys["handle"], HANDLE_LOCK_S)
        counter_incr(keys["addr"], WINDOW_S)
        raise AuthenticationFailed()
    cache.delete(keys["pair"])
    _token, key = token_issue(user=user)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return user, key


def auth_logout(*, user: User, token: AuthToken | None) -> None:
    """Revoke the token used (if any) and close the user's open sockets."""
    with transaction.atomic():
        if token is not None:
            token_revoke(token=token)
        close_user_sockets_on_commit(user.id, reason="logged_out")


def user_deactivate(*, user: User) -> None:
    """Deactivate and revoke every token; open sockets close at once."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
        AuthToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        close_user_sockets_on_commit(user.id, reason="deactivated")


def birth_year_range(today: dt.date | None = None) -> tuple[int, int]:
    today = today or timezone.localdate()
    return today.year - MAX_AGE - 1, today.year - MIN_AGE
