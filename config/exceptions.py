"""Base class for domain errors raised by services.

Each app subclasses it in `<app>/exceptions.py`; `api/errors.py` turns any of them
into the one error format shared by REST and the websocket protocol:
`{"error": {"code": ..., "detail": ...}}` (REST) / `{"type": "error", "code", "detail", "ref"}` (ws).
"""

from __future__ import annotations


class ServiceError(Exception):
    code: str = "error"
    status: int = 400
    default_detail: str = "The request could not be completed."

    def __init__(self, detail: str | None = None, *, code: str | None = None, status: int | None = None) -> None:
        self.detail = detail or self.default_detail
        if code:
            self.code = code
        if status:
            self.status = status
        super().__init__(self.detail)


class ValidationFailed(ServiceError):
    code = "validation_error"
    status = 400
    default_detail = "The input is not valid."


class NotFound(ServiceError):
    code = "not_found"
    status = 404
    default_detail = "Not found."


class PermissionDenied(ServiceError):
    code = "permission_denied"
    status = 403
    default_detail = "You do not have permission to do that."


class WrongRole(PermissionDenied):
    code = "wrong_role"
    default_detail = "Your role cannot do that."


class Conflict(ServiceError):
    code = "conflict"
    status = 409
    default_detail = "The object changed; reload and try again."
