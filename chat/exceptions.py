"""Chat domain errors; each carries a stable code from api/errors.py ERROR_CODES."""

from __future__ import annotations

from config.exceptions import Conflict, NotFound, PermissionDenied, ServiceError, ValidationFailed


class NotParticipant(PermissionDenied):
    code = "not_participant"
    default_detail = "You are not part of that conversation."


class BodyTooLong(ServiceError):
    code = "body_too_long"
    status = 400
    default_detail = "The message body is longer than the 4,000 character limit."


class RateLimited(ServiceError):
    code = "rate_limited"
    status = 429
    default_detail = "You are sending messages too quickly; wait a moment and retry (unsent messages are not lost)."


class SessionClosed(ServiceError):
    code = "session_closed"
    status = 409
    default_detail = "This chat has ended."


class NotAvailable(ServiceError):
    code = "not_available"
    status = 409
    default_detail = "Set your status to available first."


class AtCapacity(ServiceError):
    code = "at_capacity"
    status = 409
    default_detail = "You are at your session capacity."


class QueueEmpty(ServiceError):
    code = "queue_empty"
    status = 404
    default_detail = "Nobody is waiting right now."


class SessionNotFound(NotFound):
    default_detail = "No such session (or not visible to you)."


class AlreadyTaken(Conflict):
    default_detail = "That request was already taken or cancelled."


class InvalidInput(ValidationFailed):
    pass
