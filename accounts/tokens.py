"""Token issue, lookup and revocation. Keys are random; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from .models import AuthToken, User

KEY_BYTES = 20  # 40 hex chars: valid in an Authorization header and a websocket subprotocol


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_issue(*, user: User) -> tuple[AuthToken, str]:
    key = secrets.token_hex(KEY_BYTES)
    token = AuthToken.objects.create(user=user, key_hash=_hash(key), prefix=key[:8])
    return token, key


def token_lookup(*, key: str) -> AuthToken | None:
    """The active token for `key` with its user, or None. Inactive users count as no user."""
    if not key or len(key) > 128:
        return None
    token = (
        AuthToken.objects.select_related("user")
        .filter(key_hash=_hash(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is not None:
        # Coarse last-use stamp: at most one write a minute per token.
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            AuthToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_is_valid(*, token_id: int) -> bool:
    return AuthToken.objects.filter(pk=token_id, revoked_at__isnull=True, user__is_active=True).exists()


def token_revoke(*, token: AuthToken) -> None:
    AuthToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
