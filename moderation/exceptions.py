"""Moderation domain errors; api/errors.py lists their codes."""

from config.exceptions import Conflict, PermissionDenied, ValidationFailed


class PostBlocked(ValidationFailed):
    code = "post_blocked"
    default_detail = "Your post contains words that aren't allowed here. Please change it and try again."


class PostingMuted(PermissionDenied):
    code = "posting_muted"
    default_detail = "You can't post for a while after a moderation decision. You can appeal it."


class AccountSuspended(PermissionDenied):
    code = "account_suspended"
    default_detail = "Your forum access is suspended. You can appeal the decision."


class ItemClaimed(Conflict):
    code = "item_claimed"
    default_detail = "Another moderator is working on this item."


class ClaimRequired(Conflict):
    code = "claim_required"
    default_detail = "Claim the item before deciding; your claim may have expired."


class VersionConflict(Conflict):
    code = "version_conflict"
    default_detail = "The item changed since you loaded it; reload and try again."


class ItemClosed(Conflict):
    code = "item_closed"
    default_detail = "This item has already been decided or closed."


class AppealExists(Conflict):
    code = "appeal_exists"
    default_detail = "A sanction can be appealed once, and this one has been."


class AppealClosed(Conflict):
    code = "appeal_closed"
    default_detail = "This appeal has already been decided."
