"""Forum domain errors; api/errors.py lists their codes."""

from config.exceptions import Conflict, PermissionDenied, ServiceError, ValidationFailed


class BoardAgeRestricted(PermissionDenied):
    code = "board_age_restricted"
    default_detail = "This board is for a different age group."


class EditWindowClosed(PermissionDenied):
    code = "edit_window_closed"
    default_detail = "Posts can only be edited for a short time after posting."


class PostDeleted(Conflict):
    code = "post_deleted"
    default_detail = "That post has been deleted."


class PostNotPublished(ServiceError):
    code = "post_not_published"
    status = 409
    default_detail = "That post is not published."


class InvalidReaction(ValidationFailed):
    default_detail = "Unknown reaction; use hug, me_too or helpful."
