"""Permission-checked fetches for moderation objects. One condition per line."""

from __future__ import annotations

from accounts.models import Role, User
from config.exceptions import NotFound, WrongRole

from .models import Appeal, QueueItem, Sanction, WatchedWord

MODERATING_ROLES = frozenset({Role.MODERATOR, Role.SUPERVISOR, Role.ADMIN})
METRICS_ROLES = frozenset({Role.MODERATOR, Role.SUPERVISOR, Role.ADMIN})


def require_moderator(user: User) -> None:
    if user.role not in MODERATING_ROLES:
        raise WrongRole("Only the moderation team can do that.")


def access_item_for_moderator(user: User, item_id: int) -> QueueItem:
    require_moderator(user)
    item = QueueItem.objects.select_related("post__thread__board", "post__author").filter(pk=item_id).first()
    if item is None:
        raise NotFound("No such queue item.")
    return item


def access_sanction_for_user(user: User, sanction_id: int) -> Sanction:
    sanction = Sanction.objects.filter(pk=sanction_id).first()
    if sanction is None:
        raise NotFound("No such sanction.")
    if sanction.user_id == user.id:
        return sanction
    if user.role in MODERATING_ROLES:
        return sanction
    raise NotFound("No such sanction.")


def access_appeal_for_moderator(user: User, appeal_id: int) -> Appeal:
    require_moderator(user)
    appeal = Appeal.objects.filter(pk=appeal_id).first()
    if appeal is None:
        raise NotFound("No such appeal.")
    return appeal


def access_watched_word_for_moderator(user: User, word_id: int) -> WatchedWord:
    require_moderator(user)
    word = WatchedWord.objects.filter(pk=word_id).first()
    if word is None:
        raise NotFound("No such watched word.")
    return word


def access_metrics_for_supervisor(user: User) -> None:
    if user.role not in METRICS_ROLES:
        raise WrongRole("Only the moderation team and supervisors can see queue metrics.")
