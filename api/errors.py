"""One error format for REST and websocket: `{"error": {"code": ..., "detail": ...}}`.

Domain exceptions (config.exceptions.ServiceError and subclasses in each app's
exceptions.py) carry their own stable code; DRF's exceptions are mapped here.
The websocket protocol uses the same codes in `{"type": "error", "code", "detail", "ref"}`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from config.exceptions import ServiceError

logger = logging.getLogger(__name__)

# Every code a client can see. Keep in sync with docs/protocol.md.
ERROR_CODES = {
    "validation_error": "The input is not valid; `detail` says what to change.",
    "invalid_json": "The body or frame is not valid JSON.",
    "invalid_frame": "The frame is JSON but not an object with a string `type`.",
    "unknown_type": "The frame `type` is not part of the protocol.",
    "frame_too_large": "The frame is larger than the 64 KiB limit.",
    "body_too_long": "The message body is longer than the 4,000 character limit.",
    "binary_not_supported": "Binary frames are not accepted; send JSON text.",
    "rate_limited": "Too many frames or requests; wait and retry.",
    "throttled": "Too many requests; wait and retry.",
    "not_authenticated": "Log in first (token or session).",
    "authentication_failed": "The credentials or token are not valid.",
    "login_locked": "Too many failed logins; wait a few minutes.",
    "permission_denied": "You are not allowed to do that.",
    "wrong_role": "Your role cannot do that.",
    "not_participant": "You are not part of that conversation.",
    "not_found": "No such object (or not visible to you).",
    "method_not_allowed": "That HTTP method is not allowed here.",
    "conflict": "The object changed meanwhile; reload and retry.",
    "session_closed": "The chat session has ended; no more messages can be sent to it.",
    "not_available": "Counsellors must set their status to available before taking a request.",
    "at_capacity": "The counsellor already has as many live sessions as their capacity allows.",
    "queue_empty": "Nobody is waiting in the queue.",
    "board_age_restricted": "That forum board is for a different age group.",
    "edit_window_closed": "Posts can only be edited for a short time after posting.",
    "post_deleted": "That post has been deleted.",
    "post_not_published": "That post is not published (yet).",
    "post_blocked": "The post contains words that are not allowed; change it and retry.",
    "posting_muted": "A moderation decision stops you posting for a while; it can be appealed.",
    "account_suspended": "Forum access is suspended; the decision can be appealed.",
    "item_claimed": "Another moderator holds this queue item; wait for the lease to end.",
    "claim_required": "Claim the queue item (again) before deciding.",
    "version_conflict": "The queue item changed since you loaded it; reload and retry.",
    "item_closed": "The queue item is already decided or closed.",
    "appeal_exists": "A sanction can be appealed once.",
    "appeal_closed": "The appeal has already been decided.",
    "server_error": "Something went wrong on our side; it has been logged.",
}


def error_body(code: str, detail: Any) -> dict[str, Any]:
    return {"error": {"code": code, "detail": detail}}


def _drf_code(exc: drf.APIException) -> str:
    if isinstance(exc, drf.NotAuthenticated):
        return "not_authenticated"
    if isinstance(exc, drf.AuthenticationFailed):
        return "authentication_failed"
    if isinstance(exc, drf.PermissionDenied):
        return "permission_denied"
    if isinstance(exc, drf.NotFound):
        return "not_found"
    if isinstance(exc, drf.MethodNotAllowed):
        return "method_not_allowed"
    if isinstance(exc, drf.Throttled):
        return "throttled"
    if isinstance(exc, drf.ParseError):
        return "invalid_json"
    if isinstance(exc, drf.ValidationError):
        return "validation_error"
    return str(exc.default_code) if exc.default_code else "error"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: every error leaves in the one format."""
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.detail), status=exc.status)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        detail = exc.detail
        if isinstance(exc, drf.ValidationError):
            detail = exc.detail  # field -> messages, so a client can point at the field
        elif isinstance(detail, dict | list):
            detail = str(detail)
        else:
            detail = str(detail)
        return Response(error_body(_drf_code(exc), detail), status=exc.status_code, headers=headers)
    logger.exception("unhandled error in %s", context.get("view").__class__.__name__ if context.get("view") else "?")
    return Response(error_body("server_error", ERROR_CODES["server_error"]), status=500)


def ws_error(code: str, detail: Any = None, ref: Any = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "detail": detail or ERROR_CODES.get(code, code), "ref": ref}


def ws_error_from(exc: ServiceError, ref: Any = None) -> dict[str, Any]:
    return ws_error(exc.code, exc.detail, ref)


# Plain Django views (404/500 outside DRF) answer in the same format.
def json_404(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body("not_found", ERROR_CODES["not_found"]), status=404)


def json_500(request) -> JsonResponse:
    return JsonResponse(error_body("server_error", ERROR_CODES["server_error"]), status=500)


def json_403(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body("permission_denied", ERROR_CODES["permission_denied"]), status=403)


def json_400(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body("validation_error", "Bad request."), status=400)
